//! A worker: one [`Engine`] fed batches from its queue. It owns its shard of
//! every stage's state (flows, TCP reassembly, passive DNS, hosts), so it
//! takes no lock; its `--events` lines are serialised in the worker and
//! handed to the writer thread a batch at a time, and so are its alerts.
//! Control messages (live capture) travel in the same queue, so a snapshot
//! reflects every batch queued before it.

use super::batch::{Entry, Role};
use super::{Msg, Snapshot};
use crate::alerts::{self, Alert};
use crate::analyze::{Engine, EngineStats};
use crate::hosts::{EventSink, HostTable, NoEvents};
use crate::output::EventLog;
use crossbeam_channel::{Receiver, Sender};

/// Flow slots a tick lets the sweeper look at (a whole table of a million
/// flows is visited in about a minute of ticks).
const TICK_SWEEP: usize = 16 * 1024;

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

/// Runs a worker until the dispatchers close its queue.
pub fn run(
    mut engine: Engine,
    queue: Receiver<Msg>,
    spent: Sender<super::Batch>,
    events: Option<Sender<Vec<u8>>>,
    alerts: Option<Sender<Vec<Alert>>>,
) -> WorkerResult {
    let mut log = events.as_ref().map(|_| EventLog::new(Vec::new()));
    let mut none = NoEvents;
    engine.analysis.hosts.watch_new(alerts.is_some());
    let mut alerter = Alerter {
        to: alerts,
        pairs: Vec::new(),
        ready: Vec::new(),
    };
    for msg in queue {
        let mut batch = match msg {
            Msg::Batch(b) => b,
            Msg::Snapshot(reply) => {
                let _ = reply.send(Snapshot {
                    stats: engine.stats(),
                    hosts: engine.analysis.hosts.clone(),
                });
                continue;
            }
            Msg::Tick(now, expire_before) => {
                let sink: &mut dyn EventSink = match log.as_mut() {
                    Some(l) => l,
                    None => &mut none,
                };
                engine.tick(now, TICK_SWEEP, sink);
                if let Some(before) = expire_before {
                    engine.analysis.hosts.expire(before);
                }
                alerter.check(&mut engine);
                alerter.hand_over();
                hand_over(&mut log, events.as_ref());
                continue;
            }
            Msg::Seed(hosts) => {
                engine.analysis.hosts.merge(hosts);
                continue;
            }
            Msg::Reload(intel) => {
                engine.reload(intel);
                continue;
            }
        };
        {
            let sink: &mut dyn EventSink = match log.as_mut() {
                Some(l) => l,
                None => &mut none,
            };
            for entry in batch.entries() {
                match entry {
                    Entry::Frame(f, clock, Role::Home) => {
                        engine.advance_clock(clock);
                        engine.process(&f, &mut *sink);
                        alerter.check(&mut engine);
                    }
                    Entry::Frame(f, clock, Role::DnsAnswer) => {
                        engine.advance_clock(clock);
                        engine.learn_dns(&f);
                    }
                    Entry::Datagram(d, ts, clock, Role::Home) => {
                        engine.advance_clock(clock);
                        engine.process_datagram(&d, ts, &mut *sink);
                        alerter.check(&mut engine);
                    }
                    Entry::Datagram(d, ts, clock, Role::DnsAnswer) => {
                        engine.advance_clock(clock);
                        engine.learn_dns_datagram(&d, ts);
                    }
                }
            }
        }
        hand_over(&mut log, events.as_ref());
        alerter.hand_over();
        batch.clear();
        // The dispatcher may have gone (it keeps no more than it needs).
        let _ = spent.try_send(batch);
    }
    match log.as_mut() {
        Some(l) => engine.finish(l),
        None => engine.finish(&mut none),
    }
    alerter.check(&mut engine);
    alerter.hand_over();
    hand_over(&mut log, events.as_ref());
    let written = log.map_or(0, |l| l.written);
    let (stats, hosts) = engine.into_results();
    WorkerResult {
        stats,
        hosts,
        events: written,
    }
}

/// Sends the event lines produced so far to the writer.
fn hand_over(log: &mut Option<EventLog<Vec<u8>>>, to: Option<&Sender<Vec<u8>>>) {
    if let (Some(l), Some(to)) = (log.as_mut(), to) {
        let buf = l.get_mut();
        if !buf.is_empty() {
            let _ = to.send(std::mem::take(buf));
        }
    }
}
