//! The parallel pipeline: capture → dispatch → workers → merge.
//!
//! The dispatcher runs on the thread that reads the capture. It decodes each
//! frame's headers far enough to pick a worker ([`Sharder`]: by host, so
//! passive DNS and per-host timing stay whole), reassembles IP fragments
//! (a datagram's later fragments carry no ports, and fragments are rare),
//! and puts the decoded headers and a copy of the payload into that
//! worker's open [`Batch`] (workers never decode a frame again). Full
//! batches travel over a bounded crossbeam channel per worker and come back
//! through one return channel for reuse, so the steady state allocates
//! nothing per packet and a slow worker slows the reader instead of growing
//! a queue. Without event lines, a DNS message that no worker would do more
//! with than count it (no rule's name, a resolver that is no evidence) is
//! counted by the dispatcher instead of handed over.
//!
//! Offline with two threads, one shard of the hosts is flexible
//! (`flex.rs`): its batches are analysed by whichever thread is free — the
//! reader when its hand-over would block, the worker when its queue is
//! empty — so both stay busy whatever the traffic mix (on two cores a
//! reader that only dispatched would leave a core idle).
//!
//! Each worker owns an [`Engine`] — its shard of the flow table, TCP
//! reassembly, passive DNS and host table — and shares nothing. Event lines
//! are serialised by the workers and written by one writer thread. At the
//! end the workers' host tables and counters are merged; with the hosts
//! disjoint the merge is exact, so N workers report what one does.

mod batch;
mod flex;
mod shard;
mod worker;

pub use batch::{BATCH_BYTES, BATCH_ITEMS, Batch, Entry, FrameFacts, Role};
pub use shard::Sharder;

use crate::alerts::{Alert, AlertSink};
use crate::analyze::{Counters, Engine, EngineStats, Limits, carries_dns_answer};
use crate::capture::Frame;
use crate::decode::defrag::Defragmenter;
use crate::decode::{self, Decoded, Transport, ipproto};
use crate::feeds::Intel;
use crate::hosts::HostTable;
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use flex::{Flex, Ran};
use ipnet::IpNet;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use worker::WorkerResult;

/// Batches waiting in each worker's queue at most (offline: a full queue
/// makes the reader wait; 32 rather than 8 absorbs bursts of costly
/// packets, measured −4 % wall time with 2 threads).
const QUEUE_DEPTH: usize = 32;
/// Batches waiting in each worker's queue at most in live capture, where a
/// full queue loses packets instead of slowing the reader (32 × 256 packets
/// absorb a burst of ~8k packets per worker).
pub const LIVE_QUEUE_DEPTH: usize = 32;
/// Event chunks waiting for the writer at most.
const EVENT_QUEUE: usize = 64;

/// A worker's ends of the event-log and alert writers' queues.
type WriterEnds = (Option<Sender<Vec<u8>>>, Option<Sender<Vec<Alert>>>);

/// What the pipeline found, merged over the workers.
pub struct Merged {
    /// Every counter, dispatcher and workers added up.
    pub stats: EngineStats,
    /// The hosts of all workers.
    pub hosts: HostTable,
    /// Event lines written, or the first write error (with `--events`).
    pub events: Option<io::Result<u64>>,
    /// Alerts written, or the first write error (with alerts).
    pub alerts: Option<io::Result<u64>>,
}

/// What a dispatcher does when a worker's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Wait for the worker (offline: a slow worker slows the reader).
    Wait,
    /// Drop the batch and count its packets (live: the capture thread must
    /// never block, or the kernel drops instead, blind to hosts).
    Drop,
}

/// A copy of one worker's state, for a report while the capture runs.
pub struct Snapshot {
    /// Its counters.
    pub stats: EngineStats,
    /// Its hosts.
    pub hosts: HostTable,
}

/// A message to a worker.
pub(crate) enum Msg {
    /// Packets to analyse.
    Batch(Batch),
    /// Send back a copy of the state.
    Snapshot(Sender<Snapshot>),
    /// Wall time passed (quiet link): end idle conversations, and forget
    /// contacts idle since the given time (if any).
    Tick(crate::capture::Timestamp, Option<crate::capture::Timestamp>),
    /// Hosts known from an earlier run (merged into the worker's table).
    Seed(HostTable),
    /// New feeds (SIGHUP).
    Reload(Arc<Intel>),
}

/// The worker side of the pipeline: N threads each owning an [`Engine`], the
/// event-log and alert writers, and the return queue of spent batches.
/// One or more [`Dispatcher`]s feed it (crossbeam channels are MPMC).
pub struct Workers {
    queues: Vec<Sender<Msg>>,
    spent: Receiver<Batch>,
    workers: Vec<JoinHandle<WorkerResult>>,
    writer: Option<JoinHandle<io::Result<()>>>,
    alert_writer: Option<JoinHandle<io::Result<u64>>>,
    host_limits: crate::hosts::HostLimits,
    sharder: Sharder,
    defrag: crate::decode::defrag::DefragLimits,
    drops: Arc<[AtomicU64]>,
    depth: usize,
    /// The flexible shard ([`Pipeline`] with two threads) and its queue.
    flex: Option<FlexEnd>,
    intel: Arc<Intel>,
    /// The feeds the dispatchers check DNS answers against.
    feeds: Arc<SharedFeeds>,
}

/// A dispatcher's own counters, handed back when it finishes.
#[derive(Debug, Default, Clone)]
pub struct Dispatched {
    /// Frames it kept (fragments, non-IP, malformed, non-TCP/UDP, and the
    /// DNS messages it counted itself).
    pub counters: Counters,
    /// Its IP reassembly.
    pub defrag: crate::decode::defrag::DefragStats,
    /// The DNS messages it counted itself (without event lines and geo
    /// databases: those no worker would do more with than count them).
    pub analysis: crate::hosts::AnalysisStats,
    /// The first and last time of those messages.
    pub window: Option<(crate::capture::Timestamp, crate::capture::Timestamp)>,
}

/// The capture side: decodes each frame's headers, picks its worker by
/// host and copies it into that worker's batch. One per capture thread;
/// all dispatchers of a [`Workers`] shard the same way (same seed).
pub struct Dispatcher {
    sharder: Sharder,
    defrag: Defragmenter,
    /// Frames the dispatcher kept (fragments, non-IP, malformed, non-TCP/UDP).
    counters: Counters,
    open: Vec<Batch>,
    /// How much of a mapped file one batch may refer to ([`batch::map_span`]).
    map_span: usize,
    queues: Vec<Sender<Msg>>,
    spent: Receiver<Batch>,
    /// The latest frame time so far.
    clock: crate::capture::Timestamp,
    batches: usize,
    max_batches: usize,
    overflow: Overflow,
    drops: Arc<[AtomicU64]>,
    /// The flexible shard (offline, two threads): the last of `open`, which
    /// this thread analyses itself while a worker's queue is full.
    flex: Option<FlexEnd>,
    /// Other workers get a copy of a DNS answer only if it may name a
    /// vendor under these feeds — the check each of their engines would
    /// make (`Matcher::may_name_in`), made once here instead, which saves
    /// N−1 copies of almost every answer.
    learnable: Arc<Intel>,
    /// Where a feed reload (SIGHUP) publishes new feeds, and the generation
    /// of `learnable`.
    feeds: Arc<SharedFeeds>,
    generation: u64,
    /// Count DNS messages that no worker would do more with than count
    /// them (no event lines, no geo databases: see
    /// [`Dispatcher::plain_dns`]) here instead of handing them over.
    counts_dns: bool,
    /// What those messages add up to.
    dns: crate::hosts::AnalysisStats,
    window: Option<(crate::capture::Timestamp, crate::capture::Timestamp)>,
}

/// The feeds the dispatchers check DNS answers against: replaced by
/// [`Workers::reload`], picked up by each dispatcher at its next frame (one
/// atomic load per frame). During a reload a dispatcher and the workers
/// may briefly disagree; each worker checks again under its own feeds.
struct SharedFeeds {
    generation: AtomicU64,
    intel: RwLock<Arc<Intel>>,
}

/// The flexible shard and the sending end of its queue.
#[derive(Clone)]
struct FlexEnd {
    shard: Arc<Flex>,
    queue: Sender<Batch>,
}

/// The offline pipeline: one dispatcher on the reading thread and its
/// workers.
pub struct Pipeline {
    workers: Workers,
    dispatcher: Dispatcher,
}

/// `per_mille` thousandths of a cap, keeping at least one unit.
fn share(total: usize, per_mille: u32) -> usize {
    let part = (total as u128 * u128::from(per_mille) / 1000) as usize;
    part.max(1)
}

/// The limits of a worker that owns `per_mille` thousandths of the hosts:
/// the same part of each global cap, so the process as a whole stays within
/// them and a worker with more hosts gets more room — except passive DNS,
/// which every worker holds whole (each learns every answer; see [`Role`]).
fn worker_limits(l: &Limits, per_mille: u32) -> Limits {
    let mut w = l.clone();
    w.flows.max_flows = share(l.flows.max_flows, per_mille);
    w.hosts.max_hosts = share(l.hosts.max_hosts, per_mille);
    w.stream_memory = share(l.stream_memory, per_mille);
    w
}

fn write_alerts(chunks: Receiver<Vec<Alert>>, mut sink: Box<dyn AlertSink>) -> io::Result<u64> {
    let mut error = None;
    let mut written = 0u64;
    for chunk in chunks {
        if error.is_some() {
            continue;
        }
        for a in &chunk {
            match sink.alert(a) {
                Ok(()) => written += 1,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        if error.is_none()
            && let Err(e) = sink.flush()
        {
            error = Some(e);
        }
    }
    match error {
        Some(e) => Err(e),
        None => Ok(written),
    }
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

/// Whether other workers should learn from a DNS answer (see
/// `Dispatcher::learnable`).
fn may_learn(learnable: &Intel, dns: &[u8]) -> bool {
    learnable.matcher.may_name_in(dns)
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

impl Workers {
    /// Starts `workers` workers (at least one) to be fed by up to
    /// `dispatchers` dispatchers, with `depth` batches per worker queue;
    /// with `events`, the writer of the event log; with `alerts`, the alert
    /// writer (and the workers raise alerts).
    #[allow(clippy::too_many_arguments)]
    pub fn start_with_depth(
        intel: Arc<Intel>,
        internal: Vec<IpNet>,
        limits: &Limits,
        workers: usize,
        dispatchers: usize,
        depth: usize,
        events: Option<Box<dyn Write + Send>>,
        alerts: Option<Box<dyn AlertSink>>,
    ) -> io::Result<Self> {
        Self::start_sharded(
            intel,
            internal,
            limits,
            workers,
            1000 / workers.max(1) as u32,
            dispatchers,
            depth,
            events,
            alerts,
            None,
        )
    }

    /// [`Workers::start_with_depth`] where each worker owns `per_mille`
    /// thousandths of the hosts (the rest may be analysed elsewhere, see
    /// [`Pipeline`]) and gets that part of each cap.
    #[allow(clippy::too_many_arguments)]
    fn start_sharded(
        intel: Arc<Intel>,
        internal: Vec<IpNet>,
        limits: &Limits,
        workers: usize,
        per_mille: u32,
        dispatchers: usize,
        depth: usize,
        events: Option<Box<dyn Write + Send>>,
        alerts: Option<Box<dyn AlertSink>>,
        flex_per_mille: Option<u32>,
    ) -> io::Result<Self> {
        let n = workers.max(1);
        let depth = depth.max(1);
        let shards = n + usize::from(flex_per_mille.is_some());
        let (spent_tx, spent) = bounded(dispatchers.max(1) * (shards * (depth + 2) + shards));
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
        let (alert_tx, alert_writer) = match alerts {
            Some(sink) => {
                let (tx, rx) = bounded(EVENT_QUEUE);
                let h = std::thread::Builder::new()
                    .name("phonehome-alerts".into())
                    .spawn(move || write_alerts(rx, sink))?;
                (Some(tx), Some(h))
            }
            None => (None, None),
        };
        let flex = flex_per_mille.map(|share| {
            let (queue, rx) = bounded(depth);
            let engine = Engine::new(
                Arc::clone(&intel),
                internal.clone(),
                &worker_limits(limits, share),
            );
            let worker = worker::Worker::new(engine, event_tx.clone(), alert_tx.clone());
            FlexEnd {
                shard: Arc::new(Flex::new(worker, rx, spent_tx.clone())),
                queue,
            }
        });
        let wl = worker_limits(limits, per_mille);
        let mut queues = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, rx) = bounded(depth);
            let engine = Engine::new(Arc::clone(&intel), internal.clone(), &wl);
            let (spent_tx, writers) = (spent_tx.clone(), (event_tx.clone(), alert_tx.clone()));
            let shard = flex.as_ref().map(|f| Arc::clone(&f.shard));
            let h = std::thread::Builder::new()
                .name(format!("phonehome-worker-{i}"))
                .spawn(move || worker::run(engine, rx, spent_tx, writers, shard))?;
            queues.push(tx);
            handles.push(h);
        }
        Ok(Workers {
            queues,
            spent,
            workers: handles,
            writer,
            alert_writer,
            host_limits: limits.hosts,
            sharder: Sharder::new(internal.clone(), n),
            defrag: limits.defrag,
            drops: (0..n).map(|_| AtomicU64::new(0)).collect(),
            depth,
            flex,
            feeds: Arc::new(SharedFeeds {
                generation: AtomicU64::new(0),
                intel: RwLock::new(Arc::clone(&intel)),
            }),
            intel,
        })
    }

    /// Number of workers.
    pub fn len(&self) -> usize {
        self.queues.len()
    }

    /// Whether there are no workers (never: there is at least one).
    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    /// A new dispatcher feeding these workers.
    pub fn dispatcher(&self, overflow: Overflow) -> Dispatcher {
        let n = self.queues.len() + usize::from(self.flex.is_some());
        let map_span = batch::map_span(self.depth);
        Dispatcher {
            sharder: self.sharder.clone(),
            defrag: Defragmenter::new(self.defrag),
            counters: Counters::default(),
            open: (0..n).map(|_| Batch::referring(map_span)).collect(),
            map_span,
            queues: self.queues.clone(),
            spent: self.spent.clone(),
            clock: crate::capture::Timestamp(i64::MIN),
            batches: n,
            max_batches: n * (self.depth + 2) + n,
            overflow,
            drops: Arc::clone(&self.drops),
            flex: self.flex.clone(),
            learnable: self
                .feeds
                .intel
                .read()
                .map_or_else(|_| Arc::clone(&self.intel), |i| Arc::clone(&i)),
            generation: self.feeds.generation.load(Ordering::Acquire),
            feeds: Arc::clone(&self.feeds),
            // No worker records anything of a DNS message that names no
            // rule unless it writes events or asks geo databases about the
            // resolver.
            counts_dns: self.writer.is_none() && !self.intel.geo.is_enabled(),
            dns: Default::default(),
            window: None,
        }
    }

    /// The worker that owns host `ip`.
    pub fn worker_of(&self, ip: std::net::IpAddr) -> usize {
        self.sharder.worker_of_host(ip)
    }

    /// Packets each worker lost because its queue was full ([`Overflow::Drop`]).
    pub fn queue_drops(&self) -> Vec<u64> {
        self.drops
            .iter()
            .map(|d| d.load(Ordering::Relaxed))
            .collect()
    }

    /// A copy of every worker's state, taken when each worker reaches the
    /// request in its queue (packets still in dispatchers' open batches are
    /// not in it). Waits for the workers.
    pub fn snapshot(&self) -> Vec<Snapshot> {
        let (tx, rx) = bounded(self.queues.len());
        let asked = self
            .queues
            .iter()
            .filter(|q| q.send(Msg::Snapshot(tx.clone())).is_ok())
            .count();
        drop(tx);
        rx.iter().take(asked).collect()
    }

    /// Tells every worker the wall time (`Msg::Tick`).
    pub fn tick(
        &self,
        now: crate::capture::Timestamp,
        expire_before: Option<crate::capture::Timestamp>,
    ) {
        for q in &self.queues {
            let _ = q.send(Msg::Tick(now, expire_before));
        }
    }

    /// Hands hosts known from an earlier run to their workers.
    pub fn seed(&self, hosts: Vec<crate::hosts::Host>) {
        let mut parts: Vec<HostTable> = (0..self.queues.len())
            .map(|_| HostTable::new(self.host_limits))
            .collect();
        for h in hosts {
            if let Some(t) = parts.get_mut(self.worker_of(h.ip)) {
                t.insert(h);
            }
        }
        for (q, t) in self.queues.iter().zip(parts) {
            let _ = q.send(Msg::Seed(t));
        }
    }

    /// Gives every worker new feeds.
    pub fn reload(&self, intel: &Arc<Intel>) {
        if let Ok(mut shared) = self.feeds.intel.write() {
            *shared = Arc::clone(intel);
            self.feeds.generation.fetch_add(1, Ordering::Release);
        }
        for q in &self.queues {
            let _ = q.send(Msg::Reload(Arc::clone(intel)));
        }
    }

    /// Ends the input: the dispatchers must have finished (their results are
    /// given here); the workers finish their conversations, and everything
    /// is merged.
    pub fn finish(self, dispatched: &[Dispatched]) -> Merged {
        self.finish_with(dispatched, Vec::new())
    }

    /// [`Workers::finish`], merging also the results of workers that ran
    /// elsewhere (on the reading thread).
    fn finish_with(mut self, dispatched: &[Dispatched], others: Vec<WorkerResult>) -> Merged {
        self.queues.clear();
        self.flex = None;
        let mut stats = EngineStats::default();
        let mut hosts = HostTable::new(self.host_limits);
        for d in dispatched {
            stats.counters.merge(&d.counters);
            stats.defrag.merge(&d.defrag);
            stats.analysis.merge(&d.analysis);
            if let Some((first, last)) = d.window {
                hosts.observe(first);
                hosts.observe(last);
            }
        }
        let mut events = 0;
        let joined: Vec<WorkerResult> = self
            .workers
            .drain(..)
            .map(|h| match h.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect();
        for r in others.into_iter().chain(joined) {
            stats.merge(&r.stats);
            events += r.events;
            hosts.merge(r.hosts);
        }
        let events = self.writer.take().map(|w| match w.join() {
            Ok(r) => r.map(|()| events),
            Err(panic) => std::panic::resume_unwind(panic),
        });
        let alerts = self.alert_writer.take().map(|w| match w.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        });
        Merged {
            stats,
            hosts,
            events,
            alerts,
        }
    }
}

impl Dispatcher {
    /// Hands one frame to its worker.
    pub fn push(&mut self, frame: &Frame<'_>) {
        self.refresh_feeds();
        self.clock = self.clock.max(frame.ts);
        let clock = self.clock;
        match decode::decode(frame.linktype, frame.data) {
            Decoded::Packet(p) => {
                let (sport, dport) = match p.transport {
                    Transport::Tcp(t) => (t.sport, t.dport),
                    Transport::Udp(u) if self.counts_dns && self.plain_dns(&p, &u, frame.ts) => {
                        self.counters.count(frame);
                        if p.truncated {
                            self.counters.truncated += 1;
                        }
                        return;
                    }
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
                    if carries_dns_answer(u.sport, u.dport, u.payload)
                        && may_learn(&self.learnable, u.payload));
                self.deliver_frame(frame, &p, clock, w, answer);
            }
            Decoded::Fragment(f) => {
                self.counters.count(frame);
                let Dispatcher {
                    defrag,
                    sharder,
                    open,
                    learnable,
                    ..
                } = self;
                if let Some(r) = defrag.push(frame.ts, &f) {
                    let (sport, dport) = ports(r.proto, r.payload);
                    let w = sharder.worker((r.src, sport), (r.dst, dport));
                    let dns = r.payload.get(8..).unwrap_or_default();
                    let answer = r.proto == ipproto::UDP
                        && carries_dns_answer(sport, dport, dns)
                        && may_learn(learnable, dns);
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

    /// Counts a DNS message over UDP (seen at `ts`) here if its worker would
    /// do nothing more with it: read without a flow (the resolver is no
    /// evidence by the feeds) and naming no rule while parsing cleanly
    /// (`Matcher::names_none_in`) — what `Engine`'s UDP path counts with
    /// `Analysis::dns_unnamed` when no event is wanted. Handing such a
    /// message over cost more than the worker's whole work on it, and most
    /// DNS on a link is such a message.
    fn plain_dns(
        &mut self,
        p: &decode::Packet<'_>,
        u: &decode::UdpDatagram<'_>,
        ts: crate::capture::Timestamp,
    ) -> bool {
        let Some(msg) = crate::analyze::dns_message(p, u) else {
            return false;
        };
        let m = &self.learnable.matcher;
        let (resolver, port) = msg.resolver;
        if crate::hosts::resolver_in_feeds(m, resolver, port) || !m.names_none_in(u.payload) {
            return false;
        }
        self.dns.dns_messages += 1;
        if !msg.response {
            self.dns.dns_queries_without_flow += 1;
        }
        self.window = Some(
            self.window
                .map_or((ts, ts), |(a, b)| (a.min(ts), b.max(ts))),
        );
        true
    }

    /// Picks up feeds published by a reload since the last frame.
    fn refresh_feeds(&mut self) {
        let generation = self.feeds.generation.load(Ordering::Acquire);
        if generation != self.generation
            && let Ok(intel) = self.feeds.intel.read()
        {
            self.learnable = Arc::clone(&intel);
            self.generation = generation;
        }
    }

    /// Hands a frame to worker `w` (and, if it is a DNS answer, to every
    /// other worker to learn from).
    fn deliver_frame(
        &mut self,
        frame: &Frame<'_>,
        p: &decode::Packet<'_>,
        clock: crate::capture::Timestamp,
        w: usize,
        answer: bool,
    ) {
        let facts = FrameFacts {
            ts: frame.ts,
            caplen: u32::try_from(frame.data.len()).unwrap_or(u32::MAX),
            orig_len: frame.orig_len,
        };
        if answer {
            for (i, b) in self.open.iter_mut().enumerate() {
                let role = if i == w { Role::Home } else { Role::DnsAnswer };
                b.push_packet(p, facts, clock, role, frame.mapped);
            }
            self.send_full();
        } else {
            if let Some(b) = self.open.get_mut(w) {
                b.push_packet(p, facts, clock, Role::Home, frame.mapped);
            }
            if self.open.get(w).is_some_and(Batch::is_full) {
                self.send(w);
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
    /// the budget, else (waiting) the next one a worker returns, or
    /// (dropping) none.
    fn fresh(&mut self) -> Option<Batch> {
        if let Ok(b) = self.spent.try_recv() {
            return Some(b);
        }
        if self.batches < self.max_batches {
            self.batches += 1;
            return Some(Batch::referring(self.map_span));
        }
        match self.overflow {
            Overflow::Wait => Some(self.spent.recv().unwrap_or_default()),
            Overflow::Drop => None,
        }
    }

    fn send(&mut self, w: usize) {
        if self.overflow == Overflow::Drop && self.queues.get(w).is_some_and(|q| q.is_full()) {
            self.drop_open(w);
            return;
        }
        let Some(fresh) = self.fresh() else {
            self.drop_open(w);
            return;
        };
        if w == self.queues.len() {
            if let Some(slot) = self.open.get_mut(w) {
                let full = std::mem::replace(slot, fresh);
                self.send_flex(full);
            }
            return;
        }
        let (Some(slot), Some(queue)) = (self.open.get_mut(w), self.queues.get(w)) else {
            return;
        };
        let full = std::mem::replace(slot, fresh);
        match self.overflow {
            // A worker only goes away by panicking; finish() reports that.
            Overflow::Wait => {
                let mut msg = Msg::Batch(full);
                // While the worker is behind, analyse the flexible shard
                // instead of waiting.
                if let Some(flex) = &self.flex {
                    loop {
                        match queue.try_send(msg) {
                            Ok(()) => return,
                            Err(TrySendError::Full(m)) => msg = m,
                            Err(TrySendError::Disconnected(_)) => return,
                        }
                        if flex.shard.try_run() != Ran::Batch {
                            break;
                        }
                    }
                }
                let _ = queue.send(msg);
            }
            Overflow::Drop => {
                if let Err(e) = queue.try_send(Msg::Batch(full)) {
                    // Another dispatcher filled the queue meanwhile.
                    if let Msg::Batch(mut b) = e.into_inner() {
                        self.count_drops(w, &b);
                        b.clear();
                        if let Some(slot) = self.open.get_mut(w) {
                            let spare = std::mem::replace(slot, b);
                            drop(spare);
                            self.batches = self.batches.saturating_sub(1);
                        }
                    }
                }
            }
        }
    }

    /// Queues a batch of the flexible shard; while its queue is full, this
    /// thread analyses the oldest batches itself.
    fn send_flex(&mut self, batch: Batch) {
        let Some(flex) = &self.flex else {
            return;
        };
        let mut batch = batch;
        loop {
            match flex.queue.try_send(batch) {
                Ok(()) => return,
                Err(TrySendError::Full(b)) => batch = b,
                Err(TrySendError::Disconnected(_)) => return,
            }
            flex.shard.run();
        }
    }

    fn count_drops(&self, w: usize, b: &Batch) {
        if let Some(d) = self.drops.get(w) {
            d.fetch_add(b.home_len() as u64, Ordering::Relaxed);
        }
    }

    /// Drops worker `w`'s open batch (its queue is full), counting its packets.
    fn drop_open(&mut self, w: usize) {
        if let Some(b) = self.open.get(w) {
            self.count_drops(w, b);
        }
        if let Some(b) = self.open.get_mut(w) {
            b.clear();
        }
    }

    /// Sends every partly filled batch now (live capture on a quiet link).
    pub fn flush(&mut self) {
        for w in 0..self.open.len() {
            if self.open.get(w).is_some_and(|b| !b.is_empty()) {
                self.send(w);
            }
        }
    }

    /// Frames this dispatcher kept so far, and its reassembly counters.
    pub fn dispatched(&self) -> Dispatched {
        Dispatched {
            counters: self.counters.clone(),
            defrag: self.defrag.stats(),
            analysis: self.dns,
            window: self.window,
        }
    }

    /// Sends what is left and hands back the dispatcher's counters.
    pub fn finish(mut self) -> Dispatched {
        self.flush();
        self.dispatched()
    }
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
        Self::with_alerts(intel, internal, limits, workers, events, None)
    }

    /// [`Pipeline::new`], raising first-contact alerts into `alerts`.
    pub fn with_alerts(
        intel: Arc<Intel>,
        internal: Vec<IpNet>,
        limits: &Limits,
        workers: usize,
        events: Option<Box<dyn Write + Send>>,
        alerts: Option<Box<dyn AlertSink>>,
    ) -> io::Result<Self> {
        let threads = workers.max(1);
        let shares = reader_shares(threads);
        if shares.is_empty() {
            // Many threads: the reading thread only dispatches.
            let workers = Workers::start_with_depth(
                intel,
                internal,
                limits,
                threads,
                1,
                QUEUE_DEPTH,
                events,
                alerts,
            )?;
            let dispatcher = workers.dispatcher(Overflow::Wait);
            return Ok(Pipeline {
                workers,
                dispatcher,
            });
        }
        let remote = threads - 1;
        let (each, flex) = (shares.first().copied(), shares.last().copied());
        let mut workers = Workers::start_sharded(
            intel,
            internal.clone(),
            limits,
            remote,
            each.unwrap_or(1000),
            1,
            QUEUE_DEPTH,
            events,
            alerts,
            flex,
        )?;
        workers.sharder = Sharder::with_shares(internal, &shares);
        let dispatcher = workers.dispatcher(Overflow::Wait);
        Ok(Pipeline {
            workers,
            dispatcher,
        })
    }

    /// Hands one frame to its worker.
    pub fn push(&mut self, frame: &Frame<'_>) {
        self.dispatcher.push(frame);
    }

    /// Sends every partly filled batch now.
    pub fn flush(&mut self) {
        self.dispatcher.flush();
    }

    /// Ends the input: the workers finish their conversations, and their
    /// results are merged.
    pub fn finish(mut self) -> Merged {
        let flex = self.dispatcher.flex.as_ref().map(|f| Arc::clone(&f.shard));
        if let Some(f) = &flex {
            f.close();
        }
        let d = self.dispatcher.finish();
        // Close the workers' queues now, so that they end their
        // conversations while this thread ends the flexible shard's.
        self.workers.queues.clear();
        let others = flex.and_then(|f| f.finish()).into_iter().collect();
        self.workers.finish_with(&[d], others)
    }
}

/// The reading thread's cost per packet (read, decode, pick a worker, put
/// it in a batch) relative to a worker's (analyse a decoded packet) on
/// benches/throughput.sh's file: the value that made the two threads' CPU
/// time equal there when the reader analysed a fixed share (per-thread CPU
/// measured with perf; 0.56 while payloads were copied into batches). It
/// sizes the flexible shard.
const READER_COST: f64 = 0.47;

/// How an offline pipeline of `threads` threads splits the hosts, in
/// thousandths: the `threads - 1` worker threads, then the flexible shard
/// ([`flex`]). That shard is what would leave the reader as busy as a worker
/// thread: with reading costing `r` of a worker's work per packet,
/// `r + f = (1 - f) / (n - 1)`; either thread analyses it, so a mix that
/// is dearer to read or to analyse moves it. Larger was measured worse
/// (35 % and 45 % against 26.5 %: each batch the other thread takes costs
/// it cache misses on the shard's state). Empty when the reader should only
/// dispatch: with many threads reading alone fills it, and with one there
/// is no worker thread to share with.
fn reader_shares(threads: usize) -> Vec<u32> {
    if threads < 2 {
        return Vec::new();
    }
    let others = (threads - 1) as f64;
    let f = ((1.0 / others - READER_COST) / (1.0 + 1.0 / others)).clamp(0.0, 1.0);
    let local = (f * 1000.0).round() as u32;
    if local < 50 {
        return Vec::new();
    }
    let each = ((1000 - local) as f64 / others).round() as u32;
    let mut v = vec![each; threads - 1];
    v.push(local);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Timeline;
    use std::path::PathBuf;

    fn demo() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("captures/demo.pcapng")
    }

    /// Two workers with default limits, fed by `dispatchers` dispatchers.
    fn two_workers(intel: Arc<Intel>, dispatchers: usize) -> Workers {
        Workers::start_with_depth(
            intel,
            Vec::new(),
            &Limits::default(),
            2,
            dispatchers,
            QUEUE_DEPTH,
            None,
            None,
        )
        .expect("workers")
    }

    /// Live dispatchers never wait: with a worker stuck, its queue fills,
    /// further batches are dropped and counted, and every frame pushed is
    /// either analysed or counted as a queue drop.
    #[test]
    fn dropping_dispatchers_count_what_a_stuck_worker_loses() {
        let intel = Arc::new(Intel::new(crate::feeds::load(None).expect("feeds")));
        let w = two_workers(intel, 2);
        // Both workers block on a rendezvous reply until the test reads it
        // (which worker gets more of the demo's few hosts depends on the
        // run's hash seed: with one stuck, it might get too few to fill).
        let (tx, rx) = bounded(0);
        for stuck in &w.queues {
            assert!(stuck.send(Msg::Snapshot(tx.clone())).is_ok());
        }
        let mut ds = [w.dispatcher(Overflow::Drop), w.dispatcher(Overflow::Drop)];
        let mut pushed = 0u64;
        for round in 0..200 {
            let mut t = Timeline::new(vec![demo()]);
            while let Some(f) = t.next_frame() {
                if let Some(d) = ds.get_mut(round % 2) {
                    d.push(&f);
                }
                pushed += 1;
            }
        }
        let drops = w.queue_drops();
        assert!(drops.iter().sum::<u64>() > 0, "{drops:?}");
        for _ in &w.queues {
            let snap = rx.recv().expect("snapshot");
            assert_eq!(snap.hosts.len(), 0);
        }
        let dispatched: Vec<Dispatched> = ds.into_iter().map(Dispatcher::finish).collect();
        let lost: u64 = w.queue_drops().iter().sum();
        let m = w.finish(&dispatched);
        assert_eq!(m.stats.counters.packets + lost, pushed);
    }

    /// A feed reload reaches the dispatchers' DNS answer check at their
    /// next frame, not only the workers.
    #[test]
    fn dispatchers_check_answers_against_reloaded_feeds() {
        let feeds = || Arc::new(Intel::new(crate::feeds::load(None).expect("feeds")));
        let (old, new) = (feeds(), feeds());
        let w = two_workers(Arc::clone(&old), 1);
        let mut d = w.dispatcher(Overflow::Wait);
        assert!(Arc::ptr_eq(&d.learnable, &old));
        w.reload(&new);
        assert!(Arc::ptr_eq(&d.learnable, &old), "picked up at a frame");
        let mut t = Timeline::new(vec![demo()]);
        let frame = t.next_frame().expect("a frame");
        d.push(&frame);
        assert!(Arc::ptr_eq(&d.learnable, &new));
        // A dispatcher made after the reload starts with the new feeds.
        assert!(Arc::ptr_eq(&w.dispatcher(Overflow::Wait).learnable, &new));
        drop(t);
        let m = w.finish(&[d.finish()]);
        assert!(m.stats.counters.packets > 0);
    }

    /// Offline dispatchers wait instead: nothing is lost.
    #[test]
    fn waiting_dispatchers_lose_nothing() {
        let intel = Arc::new(Intel::new(crate::feeds::load(None).expect("feeds")));
        let mut p =
            Pipeline::new(intel, Vec::new(), &Limits::default(), 2, None).expect("pipeline");
        let mut pushed = 0u64;
        for _ in 0..20 {
            let mut t = Timeline::new(vec![demo()]);
            while let Some(f) = t.next_frame() {
                p.push(&f);
                pushed += 1;
            }
        }
        let m = p.finish();
        assert_eq!(m.stats.counters.packets, pushed);
    }
}
