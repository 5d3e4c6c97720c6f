//! agent-triggers core: background triggers that push messages into an agent.
//!
//! Pure Rust on tokio, with no knowledge of Python. A [`Trigger`] is a long-lived
//! task; a [`TriggerRunner`] owns one tokio task per trigger, aborts them all on
//! [`TriggerRunner::stop`] (and joins them) or on drop; [`Tasks`] is the
//! isolated task set it is built on. A native trigger ([`source_trigger`])
//! runs on an [`EventSource`]: the fixed-rate [`Ticker`] (its schedule,
//! [`FixedRate`], is also armed on the precise timer thread as a
//! [`PeriodicTimer`]), a [`CronSchedule`], a [`OneShot`] or a [`FileWatcher`].
//!
//! The Python bindings (crate `agent-triggers-python`) drive the sources and
//! timers defined here from a runner of their own, built on [`Tasks`].

mod connection;
mod context;
mod cron;
mod deadlines;
mod delivery;
mod error;
#[doc(hidden)]
pub mod fault;
mod file_watch;
pub mod fleet;
mod once;
mod periodic;
mod precise_timer;
mod runner;
mod source;
mod stats;
pub mod sync;
mod tasks;
mod trigger;
mod wall_clock;

pub use connection::Connection;
pub use context::TriggerContext;
pub use cron::{CronSchedule, CronSource};
pub use delivery::TriggerDelivery;
pub use error::{Error, Result};
pub use file_watch::{FileChange, FileChangeKind, FileWatcher};
pub use once::{Deadline, OneShot};
pub use periodic::{FixedRate, MissedTicks, PeriodicTimer, Ticker};
pub use precise_timer::{OnDue, TimerKey, call_at};
pub use runner::TriggerRunner;
pub use source::{Event, EventHandler, EventSource, SourceFactory, drive, source_trigger};
pub use stats::{CallStats, Lateness, RecordTicks, StatsSnapshot};
pub use tasks::{TaskId, Tasks};
pub use trigger::Trigger;
pub use wall_clock::{SystemClock, WallClock};

/// The `tracing` target of every event this crate emits, so that a bridge to
/// another logging system (Python's `logging`, in the bindings) can route them
/// to one logger.
pub const LOG_TARGET: &str = "agent_triggers";
