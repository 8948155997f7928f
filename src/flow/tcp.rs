//! TCP reassembly for one direction of a connection: puts segments in
//! sequence order, drops retransmitted bytes, holds a bounded number of
//! out-of-order segments, and turns a hole that never fills into an explicit
//! gap for the application parser. Only directions whose parser still wants
//! bytes do any of this; the rest of the connection costs a few counters.

use super::stream::{AppStream, Observation, Pipeline, Scratch};
use crate::decode::{TcpSegment, tcpflags};

/// Out-of-order segments held per direction.
const MAX_HELD_SEGMENTS: usize = 32;
/// Out-of-order bytes held per direction.
const MAX_HELD_BYTES: usize = 128 * 1024;
/// A segment further ahead than this is not waited for: the bytes before it
/// are declared lost.
const MAX_AHEAD: u32 = 1 << 20;

/// Bytes buffered by all streams of a worker, against a hard cap.
#[derive(Debug, Clone, Copy)]
pub struct MemBudget {
    /// Bytes in use.
    pub used: usize,
    /// The cap.
    pub cap: usize,
    /// Times the cap refused to buffer (the stream was given up).
    pub refusals: u64,
}

impl MemBudget {
    /// A budget of `cap` bytes.
    pub fn new(cap: usize) -> Self {
        MemBudget {
            used: 0,
            cap,
            refusals: 0,
        }
    }
}

#[derive(Debug)]
struct Held {
    seq: u32,
    data: Vec<u8>,
}

/// One direction of a TCP connection.
#[derive(Debug)]
pub struct TcpDirection {
    next: u32,
    known: bool,
    held: Vec<Held>,
    held_bytes: usize,
    /// The application parser of this direction.
    pub app: AppStream,
}

/// Where the caller's borrowed parsing context goes.
pub struct Sink<'s> {
    /// HEAD requests awaiting a response.
    pub pipeline: &'s mut Pipeline,
    /// Reusable parse buffers.
    pub scratch: &'s mut Scratch,
    /// The worker's memory budget.
    pub budget: &'s mut MemBudget,
    /// Receives observations.
    pub emit: &'s mut dyn FnMut(Observation<'_>),
}

impl TcpDirection {
    /// A direction whose bytes go to `app`.
    pub fn new(app: AppStream) -> Self {
        TcpDirection {
            next: 0,
            known: false,
            held: Vec::new(),
            held_bytes: 0,
            app,
        }
    }

    /// Bytes this direction holds (stream buffer and out-of-order segments).
    pub fn memory(&self) -> usize {
        self.app.buffered() + self.held.iter().map(|h| h.data.capacity()).sum::<usize>()
    }

    /// Frees everything this direction holds and stops parsing it.
    pub fn release(&mut self, budget: &mut MemBudget) {
        budget.used = budget.used.saturating_sub(self.memory());
        self.held = Vec::new();
        self.held_bytes = 0;
        self.app.stop();
    }

    /// Processes one segment sent in this direction.
    pub fn segment(&mut self, seg: &TcpSegment<'_>, sink: &mut Sink<'_>) {
        let mut seq = seg.seq;
        if seg.flags & tcpflags::SYN != 0 {
            seq = seq.wrapping_add(1);
            self.next = seq;
            self.known = true;
        }
        if seg.wire_len == 0 {
            return;
        }
        if !self.known {
            self.next = seq;
            self.known = true;
        }
        if !self.app.wants_data() {
            if seq == self.next {
                self.next = seq.wrapping_add(seg.wire_len);
            }
            return;
        }
        let before = self.memory();
        let ahead = seq.wrapping_sub(self.next);
        if ahead == 0 || ahead > u32::MAX / 2 {
            // In order, or starting before `next` (a retransmission that may
            // carry new bytes at its end).
            let behind = if ahead == 0 {
                0
            } else {
                self.next.wrapping_sub(seq)
            };
            if behind < seg.wire_len {
                self.deliver(seq, seg.payload, seg.wire_len, sink);
                self.drain(sink);
            }
        } else if ahead < MAX_AHEAD
            && self.held.len() < MAX_HELD_SEGMENTS
            && self.held_bytes + seg.payload.len() <= MAX_HELD_BYTES
            && sink.budget.used + seg.payload.len() <= sink.budget.cap
        {
            self.held_bytes += seg.payload.len();
            self.held.push(Held {
                seq,
                data: seg.payload.to_vec(),
            });
        } else {
            // The hole will not be filled in time: skip to this segment.
            self.app.gap();
            self.next = seq;
            self.deliver(seq, seg.payload, seg.wire_len, sink);
            self.drain(sink);
        }
        self.account(before, sink.budget);
        if sink.budget.used > sink.budget.cap {
            // Over the worker's cap: this direction gives up its buffers.
            self.release(sink.budget);
            sink.budget.refusals += 1;
        }
    }

    /// Delivers the bytes of a segment from `next` on; a segment cut by the
    /// snap length leaves a gap behind it.
    fn deliver(&mut self, seq: u32, payload: &[u8], wire_len: u32, sink: &mut Sink<'_>) {
        let skip = self.next.wrapping_sub(seq) as usize;
        if let Some(fresh) = payload.get(skip..) {
            self.app
                .push(fresh, sink.pipeline, sink.scratch, &mut *sink.emit);
        }
        if (payload.len() as u64) < u64::from(wire_len) {
            self.app.gap();
        }
        self.next = seq.wrapping_add(wire_len);
    }

    /// Delivers held segments that have become contiguous.
    fn drain(&mut self, sink: &mut Sink<'_>) {
        while let Some(i) = self.held.iter().position(|h| {
            h.seq.wrapping_sub(self.next) == 0 || h.seq.wrapping_sub(self.next) > u32::MAX / 2
        }) {
            let h = self.held.swap_remove(i);
            self.held_bytes -= h.data.len();
            let len = h.data.len() as u32;
            let behind = self.next.wrapping_sub(h.seq);
            if behind < len {
                self.deliver(h.seq, &h.data, len, sink);
            }
            if !self.app.wants_data() {
                self.held.clear();
                self.held_bytes = 0;
                return;
            }
        }
    }

    /// Gives up on held data (the connection ended or went idle): delivers
    /// what is held in sequence order with gaps between.
    pub fn flush(&mut self, sink: &mut Sink<'_>) {
        let before = self.memory();
        while !self.held.is_empty() && self.app.wants_data() {
            self.held.sort_by_key(|h| h.seq.wrapping_sub(self.next));
            let first = self.held.remove(0);
            self.held_bytes -= first.data.len();
            self.app.gap();
            self.next = first.seq;
            let len = first.data.len() as u32;
            self.deliver(first.seq, &first.data, len, sink);
            self.drain(sink);
        }
        self.held = Vec::new();
        self.held_bytes = 0;
        self.account(before, sink.budget);
    }

    fn account(&self, before: usize, budget: &mut MemBudget) {
        let after = self.memory();
        budget.used = (budget.used + after).saturating_sub(before);
    }
}

/// Both directions of a connection's streams, out of line (see
/// [`TcpState`]); kept boxed when spare, so that handing one to a new
/// connection moves a pointer, not 160 bytes.
pub type Streams = Box<[TcpDirection; 2]>;

/// A TCP connection's reassembly state. Until the first byte of payload in
/// either direction it is only where each direction's bytes will start
/// (inline, 12 bytes); then both directions' streams, out of line (160
/// bytes). A SYN flood or a scan, whose connections never carry a byte,
/// thus costs no stream state and keeps flow slots small (256 B instead of
/// 400), which also packs the table of a busy link into fewer cache lines.
#[derive(Debug)]
pub enum TcpState {
    /// No payload yet: per direction ([`super::Dir`] as index), the
    /// sequence number after its SYN, if one was seen.
    Opening {
        /// Where each direction's bytes start.
        next: [u32; 2],
        /// Whether `next` is known (a SYN was seen).
        known: [bool; 2],
    },
    /// Both directions' streams.
    Streams(Streams),
}

impl TcpState {
    /// A connection that has carried no payload yet.
    pub fn opening() -> Self {
        TcpState::Opening {
            next: [0; 2],
            known: [false; 2],
        }
    }

    /// Both directions' streams, once the connection has carried payload.
    pub fn streams(&self) -> Option<&[TcpDirection; 2]> {
        match self {
            TcpState::Streams(d) => Some(d),
            TcpState::Opening { .. } => None,
        }
    }

    /// [`TcpState::streams`], mutable.
    pub fn streams_mut(&mut self) -> Option<&mut [TcpDirection; 2]> {
        match self {
            TcpState::Streams(d) => Some(d),
            TcpState::Opening { .. } => None,
        }
    }

    /// Bytes both directions hold.
    pub fn memory(&self) -> usize {
        self.streams()
            .map_or(0, |d| d.iter().map(TcpDirection::memory).sum())
    }

    /// Whether direction `dir` would take bytes (a connection that carried
    /// none yet would).
    pub fn wants_data(&self, dir: usize) -> bool {
        match self {
            TcpState::Opening { .. } => true,
            TcpState::Streams(d) => d.get(dir).is_some_and(|d| d.app.wants_data()),
        }
    }

    /// Takes a segment sent in direction `dir` (0: to the server): a
    /// segment without payload before any is only looked at for its SYN;
    /// the first with payload makes the streams (their parsers from
    /// `apps`, their memory from `spare` if it has some). Returns the
    /// streams, to which the caller then hands the segment.
    pub fn take_segment(
        &mut self,
        dir: usize,
        seg: &TcpSegment<'_>,
        apps: impl FnOnce() -> [AppStream; 2],
        spare: &mut Vec<Streams>,
    ) -> Option<&mut [TcpDirection; 2]> {
        if let TcpState::Opening { next, known } = self {
            if seg.wire_len == 0 {
                if seg.flags & tcpflags::SYN != 0
                    && let (Some(n), Some(k)) = (next.get_mut(dir), known.get_mut(dir))
                {
                    *n = seg.seq.wrapping_add(1);
                    *k = true;
                }
                return None;
            }
            let [a, b] = apps();
            let mut dirs = [TcpDirection::new(a), TcpDirection::new(b)];
            for (d, (&n, &k)) in dirs.iter_mut().zip(next.iter().zip(known.iter())) {
                d.next = n;
                d.known = k;
            }
            let streams = match spare.pop() {
                Some(mut s) => {
                    *s = dirs;
                    s
                }
                None => Box::new(dirs),
            };
            *self = TcpState::Streams(streams);
        }
        self.streams_mut()
    }
}
