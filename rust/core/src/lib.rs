//! agent-triggers core: background triggers that push messages into an agent.
//!
//! Pure Rust on tokio, with no knowledge of Python. A [`Trigger`] is a long-lived
//! task; a [`TriggerRunner`] owns one tokio task per trigger, aborts them all on
//! [`TriggerRunner::stop`] (and joins them) or on drop. [`every`] builds the
//! fixed-rate periodic trigger, on the [`Ticker`] schedule.
//!
//! The Python bindings (crate `agent-triggers-python`) adapt Python objects to the
//! [`Connection`] and [`Trigger`] traits defined here.

mod connection;
mod context;
mod delivery;
mod error;
mod every;
mod runner;
mod ticker;
mod trigger;

pub use connection::Connection;
pub use context::TriggerContext;
pub use delivery::TriggerDelivery;
pub use error::{Error, Result};
pub use every::{Handler, every, every_with_delivery};
pub use runner::TriggerRunner;
pub use ticker::Ticker;
pub use trigger::Trigger;

/// The `tracing` target of every event this crate emits, so that a bridge to
/// another logging system (Python's `logging`, in the bindings) can route them
/// to one logger.
pub const LOG_TARGET: &str = "agent_triggers";
