//! A worker: one [`Engine`] fed batches from its queue. It owns its shard of
//! every stage's state (flows, TCP reassembly, passive DNS, hosts), so it
//! takes no lock; its `--events` lines are serialised in the worker and
//! handed to the writer thread a batch at a time.

use super::batch::{Batch, Entry, Role};
use crate::analyze::{Engine, EngineStats};
use crate::hosts::{EventSink, HostTable, NoEvents};
use crate::output::EventLog;
use crossbeam_channel::{Receiver, Sender};

/// What a worker hands back when its queue closes.
pub struct WorkerResult {
    /// Its counters.
    pub stats: EngineStats,
    /// Its hosts.
    pub hosts: HostTable,
    /// Event lines it produced.
    pub events: u64,
}

/// Runs a worker until the dispatcher closes its queue.
pub fn run(
    mut engine: Engine,
    queue: Receiver<Batch>,
    spent: Sender<Batch>,
    events: Option<Sender<Vec<u8>>>,
) -> WorkerResult {
    let mut log = events.as_ref().map(|_| EventLog::new(Vec::new()));
    let mut none = NoEvents;
    for mut batch in queue {
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
                    }
                    Entry::Frame(f, clock, Role::DnsAnswer) => {
                        engine.advance_clock(clock);
                        engine.learn_dns(&f);
                    }
                    Entry::Datagram(d, ts, clock, Role::Home) => {
                        engine.advance_clock(clock);
                        engine.process_datagram(&d, ts, &mut *sink);
                    }
                    Entry::Datagram(d, ts, clock, Role::DnsAnswer) => {
                        engine.advance_clock(clock);
                        engine.learn_dns_datagram(&d, ts);
                    }
                }
            }
        }
        hand_over(&mut log, events.as_ref());
        batch.clear();
        // The dispatcher may have gone (it keeps no more than it needs).
        let _ = spent.send(batch);
    }
    match log.as_mut() {
        Some(l) => engine.finish(l),
        None => engine.finish(&mut none),
    }
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
