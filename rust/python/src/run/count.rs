//! What counting a trigger's calls needs besides its handle: when a call was
//! due (how late it started), and the failures of coroutine triggers
//! (recorded from `run_trigger`).

use std::sync::Weak;
use std::time::Duration;

use chrono::{DateTime, Utc};
use pyo3::prelude::*;

use super::handle::{Life, TriggerHandle, error_text};

/// When a call was due, to tell how late it started.
#[derive(Clone, Copy, Debug)]
pub enum Due {
    /// A tick of the precise timer (`every`).
    Instant(std::time::Instant),
    /// A wall-clock instant (`cron`, `at`, fleet ticks).
    Wall(DateTime<Utc>),
    /// No due time: a file change, an extra call.
    Never,
}

impl Due {
    /// How late a call starting at `now` is.
    pub fn late(self, now: std::time::Instant) -> Option<Duration> {
        match self {
            Self::Instant(due) => Some(now.saturating_duration_since(due)),
            Self::Wall(due) => Some((Utc::now() - due).to_std().unwrap_or_default()),
            Self::Never => None,
        }
    }
}

/// Called by `run_trigger` when a coroutine trigger raised (the failure is
/// logged there): counted, and the trigger marked failed.
#[pyclass(frozen, module = "agent_triggers._core")]
pub struct RecordFailure(pub Weak<TriggerHandle>);

#[pymethods]
impl RecordFailure {
    fn __call__(&self, exception: &Bound<'_, PyAny>) {
        let Some(handle) = self.0.upgrade() else {
            return;
        };
        let err = PyErr::from_value(exception.clone());
        // A coroutine trigger has no failure limit: only counted.
        handle.stats.failed(&error_text(exception.py(), &err));
        handle.set_life(Life::Failed);
    }
}
