//! Alert delivery: one thread per sink, a bounded in-memory queue that
//! spills to the sink's disk spool, reconnection with exponential backoff,
//! and at-least-once delivery.
//!
//! - [`Delivery::submit`] never waits for the network: it appends to the
//!   in-memory queue, or — when the queue is full, or the spool still holds
//!   older alerts — to the spool (without a spool, the alert is dropped and
//!   counted).
//! - The delivery thread sends the in-memory alerts, then the spooled ones.
//!   An alert leaves the queue/spool only once the sink confirmed it (see
//!   [`super::sink`]); after a failure every unconfirmed alert is sent again.
//! - [`Delivery::close`] gives the threads until a deadline to deliver what
//!   is queued; whatever is left (queued or unconfirmed) is written to the
//!   spool, to go out on the next start.

use super::model::Alert;
use super::sink::{Sent, Sink, SinkOptions, SinkSpec, SpecError};
use super::spool::{Spool, SpoolError};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Callback for operator warnings (spool repairs, connection failures).
pub type WarnFn = Arc<dyn Fn(&str) + Send + Sync>;

/// Delivery settings.
#[derive(Clone)]
pub struct DeliveryConfig {
    /// Alerts kept in memory per sink before spilling to the spool.
    pub queue: usize,
    /// Spool folder (`--spool`); without it, overflow and leftovers are lost.
    pub spool_dir: Option<PathBuf>,
    /// Spool size cap per sink, bytes.
    pub spool_max_bytes: u64,
    /// A stream alert counts as delivered once the connection is seen
    /// healthy this long after it was sent.
    pub confirm_after: Duration,
    /// First reconnection delay (doubled per failure).
    pub backoff_min: Duration,
    /// Longest reconnection delay.
    pub backoff_max: Duration,
    /// Where warnings go.
    pub warn: WarnFn,
    /// Settings for building the sinks (TLS trust).
    pub sink_options: SinkOptions,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            queue: 10_000,
            spool_dir: None,
            spool_max_bytes: 1 << 30,
            confirm_after: Duration::from_secs(1),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            warn: Arc::new(|m| eprintln!("phonehome: alerts: {m}")),
            sink_options: SinkOptions::default(),
        }
    }
}

/// Starting the delivery failed.
#[derive(Debug, Error)]
pub enum DeliveryError {
    /// A sink spec cannot be built.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A spool cannot be opened.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// Two `--alerts` name the same sink.
    #[error("alert sink {0} given twice")]
    Duplicate(String),
    /// The thread could not be started.
    #[error("cannot start the delivery thread: {0}")]
    Thread(std::io::Error),
}

/// Live counters of one sink (read by `--metrics`).
#[derive(Debug, Default)]
pub struct SinkStats {
    /// The sink spec.
    pub name: String,
    /// Alerts submitted.
    pub submitted: AtomicU64,
    /// Alerts confirmed delivered.
    pub delivered: AtomicU64,
    /// Alerts sent again after a broken connection or a failed send that
    /// may have reached the receiver (the possible duplicates).
    pub resent: AtomicU64,
    /// Alerts written to the spool.
    pub spooled: AtomicU64,
    /// Alerts lost (queue full without spool, spool full or failing).
    pub dropped: AtomicU64,
    /// Failed attempts (connect, write, refused).
    pub failures: AtomicU64,
    /// Alerts in the in-memory queue.
    pub queue_depth: AtomicU64,
    /// Bytes in the spool not yet delivered.
    pub spool_bytes: AtomicU64,
    /// The sink is currently delivering without errors.
    pub up: AtomicBool,
}

/// What a sink did, at close.
#[derive(Debug, Clone, Default)]
pub struct SinkReport {
    /// The sink spec.
    pub name: String,
    /// Alerts confirmed delivered.
    pub delivered: u64,
    /// Alerts sent again after a broken connection (possible duplicates).
    pub resent: u64,
    /// Alerts written to the spool during the run.
    pub spooled: u64,
    /// Spool bytes left for the next start.
    pub spool_bytes_left: u64,
    /// Alerts lost.
    pub lost: u64,
    /// The last delivery error, if any.
    pub last_error: Option<String>,
}

/// Where a sent alert came from (to acknowledge it there).
#[derive(Debug, Clone, Copy)]
enum Origin {
    Memory,
    /// A spool record; acknowledge up to this offset.
    Spool(u64),
}

struct Pending {
    alert: Alert,
    origin: Origin,
    sent: Instant,
}

struct State {
    mem: VecDeque<Alert>,
    spool: Option<Spool>,
    /// Set by close: deliver until then.
    deadline: Option<Instant>,
}

struct Shared {
    state: Mutex<State>,
    cv: Condvar,
    stats: Arc<SinkStats>,
    queue: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running delivery of alerts to every configured sink.
pub struct Delivery {
    sinks: Vec<(Arc<Shared>, JoinHandle<SinkReport>)>,
}

impl Delivery {
    /// Opens the spools and starts one delivery thread per sink.
    pub fn start(specs: &[SinkSpec], cfg: &DeliveryConfig) -> Result<Delivery, DeliveryError> {
        let mut names: Vec<String> = Vec::new();
        let mut sinks = Vec::new();
        for spec in specs {
            let name = spec.to_string();
            if names.contains(&name) {
                return Err(DeliveryError::Duplicate(name));
            }
            names.push(name.clone());
            let sink = spec.build(&cfg.sink_options)?;
            let spool = match &cfg.spool_dir {
                Some(dir) => {
                    let mut s = Spool::open(dir, &spec.spool_name(), cfg.spool_max_bytes)?;
                    for w in s.warnings.drain(..) {
                        (cfg.warn)(&w);
                    }
                    Some(s)
                }
                None => None,
            };
            let stats = Arc::new(SinkStats {
                name,
                ..SinkStats::default()
            });
            if let Some(s) = &spool {
                stats.spool_bytes.store(s.pending_bytes(), Relaxed);
            }
            let shared = Arc::new(Shared {
                state: Mutex::new(State {
                    mem: VecDeque::new(),
                    spool,
                    deadline: None,
                }),
                cv: Condvar::new(),
                stats,
                queue: cfg.queue.max(1),
            });
            let worker = Worker {
                shared: shared.clone(),
                sink,
                cfg: cfg.clone(),
                unconfirmed: VecDeque::new(),
                resend: VecDeque::new(),
                backoff: None,
                last_error: None,
            };
            let handle = std::thread::Builder::new()
                .name(format!("alerts {}", spec.spool_name()))
                .spawn(move || worker.run())
                .map_err(DeliveryError::Thread)?;
            sinks.push((shared, handle));
        }
        Ok(Delivery { sinks })
    }

    /// Queues an alert for every sink; never waits for the network.
    pub fn submit(&self, alert: &Alert) {
        for (shared, _) in &self.sinks {
            let stats = &shared.stats;
            stats.submitted.fetch_add(1, Relaxed);
            let mut st = shared.lock();
            let spill =
                st.mem.len() >= shared.queue || st.spool.as_ref().is_some_and(Spool::has_unread);
            if !spill {
                st.mem.push_back(alert.clone());
                stats.queue_depth.store(st.mem.len() as u64, Relaxed);
            } else if let Some(spool) = st.spool.as_mut() {
                match spool.append(alert) {
                    Ok(()) => {
                        stats.spooled.fetch_add(1, Relaxed);
                        stats.spool_bytes.store(spool.pending_bytes(), Relaxed);
                    }
                    Err(_) => {
                        stats.dropped.fetch_add(1, Relaxed);
                    }
                }
            } else {
                stats.dropped.fetch_add(1, Relaxed);
            }
            drop(st);
            shared.cv.notify_all();
        }
    }

    /// The live counters of every sink.
    pub fn stats(&self) -> Vec<Arc<SinkStats>> {
        self.sinks.iter().map(|(s, _)| s.stats.clone()).collect()
    }

    /// Delivers what it can until `timeout` has passed, spools the rest,
    /// and stops the threads.
    pub fn close(self, timeout: Duration) -> Vec<SinkReport> {
        let deadline = Instant::now() + timeout;
        for (shared, _) in &self.sinks {
            shared.lock().deadline = Some(deadline);
            shared.cv.notify_all();
        }
        self.sinks
            .into_iter()
            .map(|(shared, h)| {
                h.join().unwrap_or_else(|_| SinkReport {
                    name: shared.stats.name.clone(),
                    last_error: Some("delivery thread panicked".into()),
                    ..SinkReport::default()
                })
            })
            .collect()
    }
}

/// The state of one delivery thread.
struct Worker {
    shared: Arc<Shared>,
    sink: Box<dyn Sink>,
    cfg: DeliveryConfig,
    /// Sent on a stream, not yet confirmed (oldest first).
    unconfirmed: VecDeque<Pending>,
    /// To send again after a failure, before anything new.
    resend: VecDeque<Pending>,
    /// Current reconnection delay and when the next attempt may happen.
    backoff: Option<(Duration, Instant)>,
    last_error: Option<String>,
}

impl Worker {
    fn stats(&self) -> &SinkStats {
        &self.shared.stats
    }

    /// Marks `p` delivered and acknowledges it in the spool.
    fn confirmed(&mut self, p: &Pending) {
        self.stats().delivered.fetch_add(1, Relaxed);
        if let Origin::Spool(end) = p.origin {
            let mut st = self.shared.lock();
            if let Some(spool) = st.spool.as_mut() {
                if let Err(e) = spool.ack(end) {
                    (self.cfg.warn)(&e.to_string());
                }
                self.shared
                    .stats
                    .spool_bytes
                    .store(spool.pending_bytes(), Relaxed);
            }
        }
    }

    fn fail(&mut self, e: &str) {
        let s = &self.shared.stats;
        s.failures.fetch_add(1, Relaxed);
        if s.up.swap(false, Relaxed) || self.last_error.is_none() {
            (self.cfg.warn)(&format!("{}: {e}; retrying", s.name));
        }
        self.last_error = Some(e.to_string());
        self.sink.reset();
        s.resent.fetch_add(self.unconfirmed.len() as u64, Relaxed);
        while let Some(p) = self.unconfirmed.pop_back() {
            self.resend.push_front(p);
        }
        let delay = match self.backoff {
            None => self.cfg.backoff_min,
            Some((d, _)) => (d * 2).min(self.cfg.backoff_max),
        };
        self.backoff = Some((delay, Instant::now() + delay));
    }

    /// The next alert to send: resends first, then memory, then the spool.
    fn next(&mut self) -> Option<Pending> {
        if let Some(p) = self.resend.pop_front() {
            return Some(p);
        }
        let mut st = self.shared.lock();
        if let Some(a) = st.mem.pop_front() {
            self.shared
                .stats
                .queue_depth
                .store(st.mem.len() as u64, Relaxed);
            return Some(Pending {
                alert: a,
                origin: Origin::Memory,
                sent: Instant::now(),
            });
        }
        let spool = st.spool.as_mut()?;
        let r = spool.read_next();
        let warnings: Vec<String> = spool.warnings.drain(..).collect();
        drop(st);
        for w in warnings {
            (self.cfg.warn)(&w);
        }
        match r {
            Ok(Some((alert, end))) => Some(Pending {
                alert,
                origin: Origin::Spool(end),
                sent: Instant::now(),
            }),
            Ok(None) => None,
            Err(e) => {
                (self.cfg.warn)(&e.to_string());
                None
            }
        }
    }

    /// Confirms the stream alerts sent long enough ago, if the connection
    /// is still healthy.
    fn confirm_old(&mut self) {
        let after = self.cfg.confirm_after;
        let ripe = move |p: &Pending| p.sent.elapsed() >= after;
        if !self.unconfirmed.front().is_some_and(ripe) {
            return;
        }
        match self.sink.check() {
            Ok(()) => {
                while self.unconfirmed.front().is_some_and(ripe) {
                    if let Some(p) = self.unconfirmed.pop_front() {
                        self.confirmed(&p);
                    }
                }
            }
            Err(e) => self.fail(&e.to_string()),
        }
    }

    /// Waits on the condition variable until `until` (or a notification).
    fn wait(&self, until: Instant) {
        let st = self.shared.lock();
        let left = until.saturating_duration_since(Instant::now());
        if !left.is_zero() && st.mem.is_empty() {
            let _ = self.shared.cv.wait_timeout(st, left);
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.shared.lock().deadline
    }

    fn run(mut self) -> SinkReport {
        let tick = (self.cfg.confirm_after / 2).max(Duration::from_millis(20));
        loop {
            let deadline = self.deadline();
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                break;
            }
            if let Some((_, at)) = self.backoff
                && now < at
            {
                let until = deadline.map_or(at, |d| d.min(at));
                std::thread::sleep(until.saturating_duration_since(now).min(tick));
                continue;
            }
            self.confirm_old();
            if self.backoff.is_some_and(|(_, at)| Instant::now() < at) {
                continue;
            }
            match self.next() {
                Some(mut p) => {
                    p.sent = Instant::now();
                    match self.sink.send(&p.alert) {
                        Ok(sent) => {
                            self.backoff = None;
                            self.shared.stats.up.store(true, Relaxed);
                            match sent {
                                Sent::Confirmed => self.confirmed(&p),
                                Sent::Unconfirmed => self.unconfirmed.push_back(p),
                            }
                        }
                        Err(e) => {
                            if e.maybe_sent() {
                                // It may have arrived: sending it again is a
                                // possible duplicate.
                                self.shared.stats.resent.fetch_add(1, Relaxed);
                            }
                            self.resend.push_front(p);
                            self.fail(&e.to_string());
                        }
                    }
                }
                None if deadline.is_some() => {
                    // Everything was sent: prove the receiver read it.
                    let left = deadline.map_or(Duration::ZERO, |d| {
                        d.saturating_duration_since(Instant::now())
                    });
                    match self.sink.finish(left) {
                        Ok(()) => {
                            while let Some(p) = self.unconfirmed.pop_front() {
                                self.confirmed(&p);
                            }
                            break;
                        }
                        Err(e) => self.fail(&e.to_string()),
                    }
                }
                None => self.wait(Instant::now() + tick),
            }
        }
        self.shutdown()
    }

    /// Writes what was not delivered to the spool and reports.
    fn shutdown(mut self) -> SinkReport {
        let mut left: Vec<Pending> = self.unconfirmed.drain(..).collect();
        left.extend(self.resend.drain(..));
        let mut st = self.shared.lock();
        let mem: Vec<Alert> = st.mem.drain(..).collect();
        let stats = &self.shared.stats;
        let mut lost = 0;
        let from_memory = left
            .into_iter()
            .filter(|p| matches!(p.origin, Origin::Memory))
            .map(|p| p.alert)
            .chain(mem);
        match st.spool.as_mut() {
            Some(spool) => {
                for a in from_memory {
                    match spool.append(&a) {
                        Ok(()) => {
                            stats.spooled.fetch_add(1, Relaxed);
                        }
                        Err(e) => {
                            lost += 1;
                            if lost == 1 {
                                (self.cfg.warn)(&e.to_string());
                            }
                        }
                    }
                }
            }
            None => lost += from_memory.count() as u64,
        }
        stats.dropped.fetch_add(lost, Relaxed);
        stats.queue_depth.store(0, Relaxed);
        let spool_bytes_left = st.spool.as_ref().map_or(0, Spool::pending_bytes);
        stats.spool_bytes.store(spool_bytes_left, Relaxed);
        SinkReport {
            name: stats.name.clone(),
            delivered: stats.delivered.load(Relaxed),
            resent: stats.resent.load(Relaxed),
            spooled: stats.spooled.load(Relaxed),
            spool_bytes_left,
            lost: stats.dropped.load(Relaxed),
            last_error: self.last_error.take(),
        }
    }
}
