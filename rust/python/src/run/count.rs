//! Counting a trigger's calls as they start and end: the gate every call
//! of a native trigger goes through, how late it started, and the failures
//! of coroutine triggers (recorded from `run_trigger`).

use std::sync::Arc;
use std::sync::Weak;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use pyo3::prelude::*;

use super::handle::{Life, TriggerHandle, error_text};
use crate::host::{CallOutcome, Start};

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
    /// How late a call starting now is.
    fn late(self) -> Option<Duration> {
        match self {
            Self::Instant(due) => Some(std::time::Instant::now().saturating_duration_since(due)),
            Self::Wall(due) => Some((Utc::now() - due).to_std().unwrap_or_default()),
            Self::Never => None,
        }
    }
}

/// A gated call, as far as its trigger's counts go (see
/// [`TriggerHandle::gate`]): once it has started, it is counted as running
/// until [`ended`](Self::ended) — or dropped (its waiter was aborted by a
/// stop or a remove, or its loop closed), which ends it uncounted.
pub struct Started {
    handle: Arc<TriggerHandle>,
    began: Arc<AtomicBool>,
}

impl Started {
    /// The call ended with `outcome`: counted if it had started.
    pub fn ended(self, outcome: Option<&CallOutcome>) {
        if self.began.swap(false, Ordering::AcqRel) {
            self.handle.ended(outcome);
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if self.began.swap(false, Ordering::AcqRel) {
            self.handle.call_over();
        }
    }
}

impl TriggerHandle {
    /// `start`, as the trigger's call: when the loop starts it, it is counted
    /// (and how late, after `due`) — or declined (it awaits nothing) if the
    /// trigger was removed meanwhile, or, for a scheduled call (not `extra`),
    /// paused meanwhile (then it counts as skipped).
    pub fn gate(self: &Arc<Self>, start: Start, due: Due, extra: bool) -> (Start, Started) {
        let handle = Arc::clone(self);
        let started = Started {
            handle: Arc::clone(self),
            began: Arc::default(),
        };
        let flag = Arc::clone(&started.began);
        let gated: Start = Box::new(move |py| {
            // Removed (any call), or paused (a scheduled one) while it waited
            // for the loop: declined — only a pause counts it as skipped.
            let removed = handle.is_removed();
            if removed || (!extra && handle.is_paused()) {
                if !removed {
                    handle.skip();
                }
                drop(start);
                return crate::python::bound(py)?.nothing.bind(py).call0();
            }
            flag.store(true, Ordering::Release);
            handle.began(due.late());
            start(py)
        });
        (gated, started)
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
