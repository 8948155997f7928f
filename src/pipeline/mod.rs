//! The parallel pipeline: capture → dispatch → workers → merge.
//!
//! The dispatcher runs on the thread that reads the capture. It decodes each
//! frame's headers far enough to pick a worker ([`Sharder`]: by host, so
//! passive DNS and per-host timing stay whole), reassembles IP fragments
//! (a datagram's later fragments carry no ports, and fragments are rare),
//! and copies the frame into that worker's open [`Batch`]. Full batches
//! travel over a bounded crossbeam channel per worker and come back through
//! one return channel for reuse, so the steady state allocates nothing per
//! packet and a slow worker slows the reader instead of growing a queue.
//!
//! Each worker owns an [`Engine`] — its shard of the flow table, TCP
//! reassembly, passive DNS and host table — and shares nothing. Event lines
//! are serialised by the workers and written by one writer thread. At the
//! end the workers' host tables and counters are merged; with the hosts
//! disjoint the merge is exact, so N workers report what one does.

mod batch;
mod shard;
mod worker;

pub use batch::{BATCH_BYTES, BATCH_ITEMS, Batch, Entry, Role};
pub use shard::Sharder;

use crate::analyze::{Counters, Engine, EngineStats, Limits, carries_dns_answer};
use crate::capture::Frame;
use crate::decode::defrag::Defragmenter;
use crate::decode::{self, Decoded, Transport, ipproto};
use crate::feeds::Intel;
use crate::hosts::HostTable;
use crossbeam_channel::{Receiver, Sender, bounded};
use ipnet::IpNet;
use std::io::{self, Write};
use std::sync::Arc;
use std::thread::JoinHandle;
use worker::WorkerResult;

/// Batches waiting in each worker's queue at most.
const QUEUE_DEPTH: usize = 8;
/// Event chunks waiting for the writer at most.
const EVENT_QUEUE: usize = 64;

/// What the pipeline found, merged over the workers.
pub struct Merged {
    /// Every counter, dispatcher and workers added up.
    pub stats: EngineStats,
    /// The hosts of all workers.
    pub hosts: HostTable,
    /// Event lines written, or the first write error (with `--events`).
    pub events: Option<io::Result<u64>>,
}

/// The dispatcher and its workers.
pub struct Pipeline {
    sharder: Sharder,
    defrag: Defragmenter,
    /// Frames the dispatcher kept (fragments, non-IP, malformed, non-TCP/UDP).
    counters: Counters,
    open: Vec<Batch>,
    queues: Vec<Sender<Batch>>,
    spent: Receiver<Batch>,
    /// The latest frame time so far.
    clock: crate::capture::Timestamp,
    batches: usize,
    max_batches: usize,
    workers: Vec<JoinHandle<WorkerResult>>,
    writer: Option<JoinHandle<io::Result<()>>>,
    host_limits: crate::hosts::HostLimits,
}

/// Divides a cap between workers, keeping at least one unit each.
fn share(total: usize, workers: usize) -> usize {
    (total / workers).max(1)
}

/// Each worker's limits: the global caps divided between the workers, so
/// the process as a whole stays within them — except passive DNS, which
/// every worker holds whole (each learns every answer; see [`Role`]).
fn worker_limits(l: &Limits, workers: usize) -> Limits {
    let mut w = l.clone();
    w.flows.max_flows = share(l.flows.max_flows, workers);
    w.hosts.max_hosts = share(l.hosts.max_hosts, workers);
    w.stream_memory = share(l.stream_memory, workers);
    w
}

fn write_events(chunks: Receiver<Vec<u8>>, mut out: Box<dyn Write + Send>) -> io::Result<()> {
    let mut error = None;
    for chunk in chunks {
        if error.is_none()
            && let Err(e) = out.write_all(&chunk)
        {
            error = Some(e);
        }
    }
    match error {
        Some(e) => Err(e),
        None => out.flush(),
    }
}

/// The two ports of a transport header at the start of `payload`.
fn ports(proto: u8, payload: &[u8]) -> (u16, u16) {
    if proto != ipproto::TCP && proto != ipproto::UDP {
        return (0, 0);
    }
    (
        crate::bytes::be16(payload, 0).unwrap_or(0),
        crate::bytes::be16(payload, 2).unwrap_or(0),
    )
}

impl Pipeline {
    /// Starts `workers` workers (at least one) and, with `events`, the
    /// writer of the event log.
    pub fn new(
        intel: Arc<Intel>,
        internal: Vec<IpNet>,
        limits: &Limits,
        workers: usize,
        events: Option<Box<dyn Write + Send>>,
    ) -> io::Result<Self> {
        let n = workers.max(1);
        let (spent_tx, spent) = bounded(n * (QUEUE_DEPTH + 2));
        let (event_tx, writer) = match events {
            Some(out) => {
                let (tx, rx) = bounded(EVENT_QUEUE);
                let h = std::thread::Builder::new()
                    .name("phonehome-events".into())
                    .spawn(move || write_events(rx, out))?;
                (Some(tx), Some(h))
            }
            None => (None, None),
        };
        let wl = worker_limits(limits, n);
        let mut queues = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, rx) = bounded(QUEUE_DEPTH);
            let engine = Engine::new(Arc::clone(&intel), internal.clone(), &wl);
            let (spent_tx, event_tx) = (spent_tx.clone(), event_tx.clone());
            let h = std::thread::Builder::new()
                .name(format!("phonehome-worker-{i}"))
                .spawn(move || worker::run(engine, rx, spent_tx, event_tx))?;
            queues.push(tx);
            handles.push(h);
        }
        Ok(Pipeline {
            sharder: Sharder::new(internal, n),
            defrag: Defragmenter::new(limits.defrag),
            counters: Counters::default(),
            open: (0..n).map(|_| Batch::new()).collect(),
            queues,
            spent,
            clock: crate::capture::Timestamp(i64::MIN),
            batches: n,
            max_batches: n * (QUEUE_DEPTH + 2) + n,
            workers: handles,
            writer,
            host_limits: limits.hosts,
        })
    }

    /// Hands one frame to its worker.
    pub fn push(&mut self, frame: &Frame<'_>) {
        self.clock = self.clock.max(frame.ts);
        let clock = self.clock;
        match decode::decode(frame.linktype, frame.data) {
            Decoded::Packet(p) => {
                let (sport, dport) = match p.transport {
                    Transport::Tcp(t) => (t.sport, t.dport),
                    Transport::Udp(u) => (u.sport, u.dport),
                    Transport::Other(_) => {
                        // Nothing downstream looks at other protocols.
                        self.counters.count(frame);
                        if p.truncated {
                            self.counters.truncated += 1;
                        }
                        return;
                    }
                };
                let w = self.sharder.worker((p.src, sport), (p.dst, dport));
                let answer = matches!(p.transport, Transport::Udp(u)
                    if carries_dns_answer(u.sport, u.dport, u.payload));
                if answer {
                    for (i, b) in self.open.iter_mut().enumerate() {
                        let role = if i == w { Role::Home } else { Role::DnsAnswer };
                        b.push_frame(frame, clock, role);
                    }
                    self.send_full();
                } else {
                    if let Some(b) = self.open.get_mut(w) {
                        b.push_frame(frame, clock, Role::Home);
                    }
                    if self.open.get(w).is_some_and(Batch::is_full) {
                        self.send(w);
                    }
                }
            }
            Decoded::Fragment(f) => {
                self.counters.count(frame);
                let Pipeline {
                    defrag,
                    sharder,
                    open,
                    ..
                } = self;
                if let Some(r) = defrag.push(frame.ts, &f) {
                    let (sport, dport) = ports(r.proto, r.payload);
                    let w = sharder.worker((r.src, sport), (r.dst, dport));
                    let answer = r.proto == ipproto::UDP
                        && carries_dns_answer(sport, dport, r.payload.get(8..).unwrap_or_default());
                    for (i, b) in open.iter_mut().enumerate() {
                        if i == w {
                            b.push_datagram(&r, frame.ts, clock, Role::Home);
                        } else if answer {
                            b.push_datagram(&r, frame.ts, clock, Role::DnsAnswer);
                        }
                    }
                    self.send_full();
                }
            }
            Decoded::NotIp => {
                self.counters.count(frame);
                self.counters.non_ip += 1;
            }
            Decoded::UnsupportedLink(lt) => {
                self.counters.count(frame);
                *self.counters.unsupported_link.entry(lt).or_default() += 1;
            }
            Decoded::Malformed(_) => {
                self.counters.count(frame);
                self.counters.malformed += 1;
            }
        }
    }

    /// Sends the batches that are full.
    fn send_full(&mut self) {
        for w in 0..self.open.len() {
            if self.open.get(w).is_some_and(Batch::is_full) {
                self.send(w);
            }
        }
    }

    /// A batch to fill: a spent one if any is back, a new one while under
    /// the budget, else the next one a worker returns.
    fn fresh(&mut self) -> Batch {
        if let Ok(b) = self.spent.try_recv() {
            return b;
        }
        if self.batches < self.max_batches {
            self.batches += 1;
            return Batch::new();
        }
        self.spent.recv().unwrap_or_default()
    }

    fn send(&mut self, w: usize) {
        let fresh = self.fresh();
        let (Some(slot), Some(queue)) = (self.open.get_mut(w), self.queues.get(w)) else {
            return;
        };
        let full = std::mem::replace(slot, fresh);
        // A worker only goes away by panicking; finish() reports that.
        let _ = queue.send(full);
    }

    /// Sends every partly filled batch now (live capture on a quiet link).
    pub fn flush(&mut self) {
        for w in 0..self.open.len() {
            if self.open.get(w).is_some_and(|b| !b.is_empty()) {
                self.send(w);
            }
        }
    }

    /// Ends the input: the workers finish their conversations, and their
    /// results are merged.
    pub fn finish(mut self) -> Merged {
        self.flush();
        self.queues.clear();
        let mut stats = EngineStats {
            counters: std::mem::take(&mut self.counters),
            defrag: self.defrag.stats(),
            ..EngineStats::default()
        };
        let mut hosts = HostTable::new(self.host_limits);
        let mut events = 0;
        for h in self.workers.drain(..) {
            let r = match h.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            stats.merge(&r.stats);
            events += r.events;
            hosts.merge(r.hosts);
        }
        let events = self.writer.take().map(|w| match w.join() {
            Ok(r) => r.map(|()| events),
            Err(panic) => std::panic::resume_unwind(panic),
        });
        Merged {
            stats,
            hosts,
            events,
        }
    }
}
