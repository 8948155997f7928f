//! A capture source: something that lends captured frames a batch at a
//! time and counts what it received and what the kernel dropped.

use crate::capture::Frame;
use std::io;

/// Totals of one source since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Packets that passed the filter and reached the socket, including
    /// those then dropped.
    pub received: u64,
    /// Packets dropped by the kernel because the ring/buffer was full.
    pub kernel_drops: u64,
}

/// A live capture source (one socket or handle; read by one thread).
pub trait Source: Send {
    /// The interface.
    fn name(&self) -> &str;
    /// Waits at most `timeout_ms` for packets and lends each to `f`.
    /// Returns how many it lent (0 on a quiet link).
    fn next_batch(&mut self, timeout_ms: i32, f: &mut dyn FnMut(&Frame<'_>)) -> io::Result<usize>;
    /// Totals since the source was opened.
    fn stats(&mut self) -> SourceStats;
    /// A line on how the source captures and its own counters, for the
    /// log at start and exit (`None`: nothing beyond [`Source::stats`]).
    fn describe(&mut self) -> Option<String> {
        None
    }
}
