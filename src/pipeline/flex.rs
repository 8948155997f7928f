//! The flexible shard: with two threads, one shard of the hosts that either
//! thread analyses, so that neither waits while the other has work.
//!
//! The reading thread reads, decodes and hands out every packet; the worker
//! thread analyses its own (fixed) shard. How much work each of those is
//! depends on the traffic mix (bulk transfers are cheap to analyse and as
//! dear to read as anything), so no fixed split keeps both threads busy.
//! The flexible shard's batches wait in their own queue and are analysed by
//! whichever thread is free: the reader when its hand-over to the worker
//! would block (the worker is behind), the worker when its own queue is
//! empty (the reader is behind).
//!
//! The shard's state sits behind a mutex that is taken once per batch (256
//! packets), never per packet, and only with `try_lock` by a thread that
//! has nothing else to do. A batch is taken from the queue only under the
//! lock, so the shard sees its packets in order whichever thread runs it,
//! and its results are what one thread would find.

use super::Batch;
use super::worker::{Worker, WorkerResult};
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

/// What a try at the flexible shard did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ran {
    /// It analysed a batch.
    Batch,
    /// The other thread is analysing it.
    Busy,
    /// No batch is waiting.
    Idle,
}

/// The flexible shard: its worker and its queue of full batches.
pub(crate) struct Flex {
    worker: Mutex<Option<Worker>>,
    queue: Receiver<Batch>,
    spent: Sender<Batch>,
    /// No batch will come any more: the reader finishes the shard.
    closed: AtomicBool,
}

impl Flex {
    /// A shard analysed by `worker`, fed through `queue`; spent batches go
    /// back to `spent`.
    pub(crate) fn new(worker: Worker, queue: Receiver<Batch>, spent: Sender<Batch>) -> Self {
        Flex {
            worker: Mutex::new(Some(worker)),
            queue,
            spent,
            closed: AtomicBool::new(false),
        }
    }

    /// Whether the reader has sent its last batch (and will finish the
    /// shard itself).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The queue, for a thread that waits until it has something.
    pub(crate) fn queue(&self) -> &Receiver<Batch> {
        &self.queue
    }

    /// Analyses the next waiting batch, if the shard is free.
    pub(crate) fn try_run(&self) -> Ran {
        if self.queue.is_empty() {
            return Ran::Idle;
        }
        let Ok(mut guard) = self.worker.try_lock() else {
            return Ran::Busy;
        };
        self.run_next(&mut guard)
    }

    /// Analyses the next waiting batch, waiting for the shard if the other
    /// thread has it.
    pub(crate) fn run(&self) -> Ran {
        let mut guard = self.worker.lock().unwrap_or_else(PoisonError::into_inner);
        self.run_next(&mut guard)
    }

    fn run_next(&self, worker: &mut Option<Worker>) -> Ran {
        let Some(w) = worker.as_mut() else {
            return Ran::Idle;
        };
        match self.queue.try_recv() {
            Ok(mut batch) => {
                w.run_batch(&batch);
                batch.clear();
                // The dispatcher may have gone (it keeps no more than it needs).
                let _ = self.spent.try_send(batch);
                Ran::Batch
            }
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => Ran::Idle,
        }
    }

    /// Tells the worker thread to stop helping: the reader is about to send
    /// its last batches and finish the shard itself.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Analyses every waiting batch, then ends the shard's conversations
    /// and hands back its results (once; `None` after). The queue's sender
    /// must be gone.
    pub(crate) fn finish(&self) -> Option<WorkerResult> {
        self.close();
        while self.run() == Ran::Batch {}
        let mut guard = self.worker.lock().unwrap_or_else(PoisonError::into_inner);
        guard.take().map(Worker::finish)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::{Engine, Limits};
    use crate::capture::Timeline;
    use crate::decode::{self, Decoded};
    use crate::feeds::Intel;
    use crate::pipeline::{FrameFacts, Role};
    use crossbeam_channel::{bounded, unbounded};
    use std::sync::Arc;

    /// The demo capture, eight times over, in batches of 16 packets.
    fn batches() -> Vec<Batch> {
        let demo =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("captures/demo.pcapng");
        let mut out = vec![Batch::new()];
        for _ in 0..8 {
            let mut t = Timeline::new(vec![demo.clone()]);
            while let Some(f) = t.next_frame() {
                if let Decoded::Packet(p) = decode::decode(f.linktype, f.data) {
                    let facts = FrameFacts {
                        ts: f.ts,
                        caplen: f.data.len() as u32,
                        orig_len: f.orig_len,
                    };
                    let b = out.last_mut().unwrap();
                    b.push_packet(&p, facts, f.ts, Role::Home, None);
                    if b.home_len() == 16 {
                        out.push(Batch::new());
                    }
                }
            }
        }
        out
    }

    /// A worker writing its event lines into a channel.
    fn worker() -> (Worker, crossbeam_channel::Receiver<Vec<u8>>) {
        let intel = Arc::new(Intel::new(crate::feeds::load(None).expect("feeds")));
        let engine = Engine::new(intel, Vec::new(), &Limits::default());
        let (tx, rx) = unbounded();
        (Worker::new(engine, Some(tx), None), rx)
    }

    /// Two threads taking batches from a short queue as they come give the
    /// event log one thread gives, line for line, in order.
    #[test]
    fn batches_run_in_order_whichever_thread_takes_them() {
        let (mut alone, alone_log) = worker();
        for b in batches() {
            alone.run_batch(&b);
        }
        drop(alone.finish());
        let expected: Vec<u8> = alone_log.try_iter().flatten().collect();
        assert!(expected.len() > 1000, "the demo has events");

        let (w, log) = worker();
        let (tx, rx) = bounded(2);
        let (spent_tx, _spent) = unbounded();
        let flex = Arc::new(Flex::new(w, rx, spent_tx));
        let helper = {
            let flex = Arc::clone(&flex);
            std::thread::spawn(move || {
                let mut ran = 0;
                while !flex.is_closed() {
                    if flex.try_run() == Ran::Batch {
                        ran += 1;
                    } else {
                        std::thread::yield_now();
                    }
                }
                ran
            })
        };
        let mut ran_here = 0;
        for b in batches() {
            let mut b = b;
            loop {
                match tx.try_send(b) {
                    Ok(()) => break,
                    Err(crossbeam_channel::TrySendError::Full(back)) => b = back,
                    Err(e) => panic!("{e}"),
                }
                if flex.run() == Ran::Batch {
                    ran_here += 1;
                }
            }
        }
        flex.close();
        drop(tx);
        let ran_there = helper.join().expect("helper");
        let result = flex.finish().expect("first finish");
        assert!(flex.finish().is_none(), "finished once");
        let got: Vec<u8> = log.try_iter().flatten().collect();
        assert_eq!(got, expected);
        assert!(result.stats.counters.packets > 0);
        eprintln!("batches run by the sender {ran_here}, by the helper {ran_there}");
    }
}
