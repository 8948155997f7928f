//! A worker: one [`Engine`] fed batches from its queue. It owns its shard of
//! every stage's state (flows, TCP reassembly, passive DNS, hosts), so it
//! takes no lock; its `--events` lines are serialised in the worker and
//! handed to the writer thread a batch at a time, and so are its alerts.
//! Control messages (live capture) travel in the same queue, so a snapshot
//! reflects every batch queued before it.

use super::batch::{Entry, FrameFacts, Role};
use super::flex::{Flex, Ran};
use super::{Msg, Snapshot};
use crate::alerts::{self, Alert};
use crate::analyze::{Engine, EngineStats};
use crate::capture::Timestamp;
use crate::decode::Packet;
use crate::decode::defrag::Reassembled;
use crate::hosts::{EventSink, HostTable, NoEvents};
use crate::output::EventLog;
use crossbeam_channel::{Receiver, Select, Sender, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

/// What a worker hands back when its queue closes.
pub struct WorkerResult {
    /// Its counters.
    pub stats: EngineStats,
    /// Its hosts.
    pub hosts: HostTable,
    /// Event lines it produced.
    pub events: u64,
}

/// Raises the alerts of the contacts created and the beacons confirmed
/// since the last call, and hands them to the alert writer.
struct Alerter {
    to: Option<Sender<Vec<Alert>>>,
    pairs: Vec<(std::net::IpAddr, crate::feeds::VendorId)>,
    ready: Vec<Alert>,
}

impl Alerter {
    fn check(&mut self, engine: &mut Engine) {
        if self.to.is_none() || !engine.analysis.hosts.has_new() {
            return;
        }
        let intel = std::sync::Arc::clone(engine.analysis.intel());
        alerts::collect_new(
            &mut engine.analysis.hosts,
            &intel,
            &mut self.pairs,
            &mut self.ready,
        );
    }

    fn hand_over(&mut self) {
        if let Some(to) = &self.to
            && !self.ready.is_empty()
        {
            let _ = to.send(std::mem::take(&mut self.ready));
        }
    }
}

/// A worker's engine with its event log and alert raiser: what a worker
/// thread runs, and what the reading thread runs itself when it also works
/// (see [`super::Pipeline`]).
pub(crate) struct Worker {
    engine: Engine,
    log: Option<EventLog<Vec<u8>>>,
    events: Option<Sender<Vec<u8>>>,
    alerter: Alerter,
}

impl Worker {
    /// A worker over `engine`, handing its event lines and alerts to the
    /// writers (if any).
    pub(crate) fn new(
        mut engine: Engine,
        events: Option<Sender<Vec<u8>>>,
        alerts: Option<Sender<Vec<Alert>>>,
    ) -> Self {
        engine.analysis.hosts.watch_new(alerts.is_some());
        Worker {
            engine,
            log: events.as_ref().map(|_| EventLog::new(Vec::new())),
            events,
            alerter: Alerter {
                to: alerts,
                pairs: Vec::new(),
                ready: Vec::new(),
            },
        }
    }

    /// Runs `f` on the engine with this worker's event sink, then collects
    /// the alerts it raised.
    fn analyse(&mut self, f: impl FnOnce(&mut Engine, &mut dyn EventSink)) {
        let mut none = NoEvents;
        let sink: &mut dyn EventSink = match self.log.as_mut() {
            Some(l) => l,
            None => &mut none,
        };
        f(&mut self.engine, sink);
        self.alerter.check(&mut self.engine);
    }

    /// Analyses one decoded frame (`Role::Home`) or learns its DNS answers.
    pub(crate) fn packet(&mut self, p: &Packet<'_>, f: FrameFacts, clock: Timestamp, role: Role) {
        self.engine.advance_clock(clock);
        match role {
            Role::Home => self
                .analyse(|e, sink| e.process_decoded(f.ts, f.caplen as usize, f.orig_len, p, sink)),
            Role::DnsAnswer => self.engine.learn_dns(p, f.ts),
        }
    }

    /// [`Worker::packet`] for a datagram reassembled from fragments.
    pub(crate) fn datagram(
        &mut self,
        d: &Reassembled<'_>,
        ts: Timestamp,
        clock: Timestamp,
        role: Role,
    ) {
        self.engine.advance_clock(clock);
        match role {
            Role::Home => self.analyse(|e, sink| e.process_datagram(d, ts, sink)),
            Role::DnsAnswer => self.engine.learn_dns_datagram(d, ts),
        }
    }

    /// Analyses a batch and hands over what it produced.
    pub(crate) fn run_batch(&mut self, batch: &super::Batch) {
        batch.for_each_entry(|entry| match entry {
            Entry::Packet(p, f, clock, role) => self.packet(p, *f, *clock, *role),
            Entry::Datagram(d, ts, clock, role) => self.datagram(d, *ts, *clock, *role),
        });
        self.hand_over();
    }

    /// Handles one message from the queue.
    fn message(&mut self, msg: Msg, spent: &Sender<super::Batch>) {
        match msg {
            Msg::Batch(mut batch) => {
                self.run_batch(&batch);
                batch.clear();
                // The dispatcher may have gone (it keeps no more than it needs).
                let _ = spent.try_send(batch);
            }
            Msg::Snapshot(reply) => {
                let _ = reply.send(Snapshot {
                    stats: self.engine.stats(),
                    hosts: self.engine.analysis.hosts.clone(),
                });
            }
            Msg::Tick(now, expire_before) => {
                self.analyse(|e, sink| {
                    e.tick(now, sink);
                    if let Some(before) = expire_before {
                        e.analysis.hosts.expire(before);
                    }
                });
                self.hand_over();
            }
            Msg::Seed(hosts) => self.engine.analysis.hosts.merge(hosts),
            Msg::Reload(intel) => self.engine.reload(intel),
        }
    }

    /// Hands the event lines and alerts produced so far to the writers.
    pub(crate) fn hand_over(&mut self) {
        self.alerter.hand_over();
        if let (Some(l), Some(to)) = (self.log.as_mut(), self.events.as_ref()) {
            let buf = l.get_mut();
            if !buf.is_empty() {
                let _ = to.send(std::mem::take(buf));
            }
        }
    }

    /// Ends every conversation and hands back the results (dropping this
    /// worker's ends of the writers' queues).
    pub(crate) fn finish(mut self) -> WorkerResult {
        self.analyse(|e, sink| e.finish(sink));
        self.hand_over();
        let written = self.log.map_or(0, |l| l.written);
        let (stats, hosts) = self.engine.into_results();
        WorkerResult {
            stats,
            hosts,
            events: written,
        }
    }
}

/// How long a worker whose queue is empty waits for it before it looks at
/// the flexible shard again, when the reader had that shard busy.
const FLEX_RETRY: Duration = Duration::from_micros(100);

/// With its own queue empty, a worker analyses a batch of the flexible
/// shard, or, if the reader has the shard, waits a little for its queue, or
/// else sleeps until either queue has something. Returns a message of its
/// own queue if one came meanwhile.
fn help(flex: &Flex, queue: &Receiver<Msg>) -> Option<Msg> {
    match flex.try_run() {
        Ran::Batch => None,
        Ran::Busy => queue.recv_timeout(FLEX_RETRY).ok(),
        Ran::Idle => {
            let mut sel = Select::new();
            sel.recv(queue);
            sel.recv(flex.queue());
            sel.ready();
            None
        }
    }
}

/// Runs a worker until the dispatchers close its queue; with `flex`, it
/// analyses the flexible shard's batches whenever its own queue is empty.
pub fn run(
    engine: Engine,
    queue: Receiver<Msg>,
    spent: Sender<super::Batch>,
    writers: super::WriterEnds,
    flex: Option<Arc<Flex>>,
) -> WorkerResult {
    let (events, alerts) = writers;
    let mut worker = Worker::new(engine, events, alerts);
    loop {
        let msg = match queue.try_recv() {
            Ok(msg) => msg,
            Err(TryRecvError::Disconnected) => break,
            // Once the reader closes the flexible shard, it finishes it.
            Err(TryRecvError::Empty) => match flex.as_deref().filter(|f| !f.is_closed()) {
                Some(f) => match help(f, &queue) {
                    Some(msg) => msg,
                    None => continue,
                },
                None => match queue.recv() {
                    Ok(msg) => msg,
                    Err(_) => break,
                },
            },
        };
        worker.message(msg, &spent);
    }
    worker.finish()
}
