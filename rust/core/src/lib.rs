//! agent-triggers core: background triggers that push messages into an agent.
//!
//! Pure Rust on tokio, with no knowledge of Python. A [`Trigger`] is a long-lived
//! task; a [`TriggerRunner`] owns one tokio task per trigger, aborts them all on
//! [`TriggerRunner::stop`] (and joins them) or on drop. [`every`] builds the
//! fixed-rate periodic trigger, on the [`Ticker`] schedule; [`CronSchedule`],
//! [`OneShot`] and [`FileWatcher`] are the other [`EventSource`]s a native
//! trigger ([`source_trigger`]) can run on.
//!
//! The Python bindings (crate `agent-triggers-python`) adapt Python objects to the
//! [`Connection`] and [`Trigger`] traits defined here.

mod connection;
mod context;
mod cron;
mod delivery;
mod error;
mod every;
#[doc(hidden)]
pub mod fault;
mod file_watch;
mod once;
mod precise_timer;
mod runner;
mod source;
pub mod sync;
mod ticker;
mod trigger;
mod wall_clock;

pub use connection::Connection;
pub use context::TriggerContext;
pub use cron::{CronSchedule, CronSource};
pub use delivery::TriggerDelivery;
pub use error::{Error, Result};
pub use every::{Handler, every, every_with_delivery};
pub use file_watch::{FileChange, FileChangeKind, FileWatcher};
pub use once::{Deadline, OneShot};
pub use precise_timer::{TimerKey, call_at};
pub use runner::TriggerRunner;
pub use source::{Event, EventHandler, EventSource, SourceFactory, source_trigger};
pub use ticker::{Ticker, next_due};
pub use trigger::Trigger;
pub use wall_clock::{SystemClock, WallClock};

/// The `tracing` target of every event this crate emits, so that a bridge to
/// another logging system (Python's `logging`, in the bindings) can route them
/// to one logger.
pub const LOG_TARGET: &str = "agent_triggers";
