//! Outputs: the per-host report (terminal table, JSON document or
//! self-contained HTML page) and the `--events` log of every extracted item
//! (JSON Lines).

pub mod events;
pub mod html;
pub mod report;
pub mod table;
pub mod time;

pub use events::EventLog;
pub use report::{Report, Summary};
