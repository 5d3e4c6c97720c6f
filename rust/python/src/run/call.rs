//! The Python call a trigger's record makes (`callable(ctx, *event_args)`,
//! its context made on the first call), counted as it starts; when it was
//! due; and the maker of the contexts, registered by the api layer.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use agent_triggers_core::{Event, TriggerDelivery};
use chrono::{DateTime, Utc};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::connection::{PyConnection, ensure_awaitable};
use super::handle::{Life, TriggerHandle};
use super::source::event_args;
use crate::host::Start;
use crate::process::ForkSafeDrop;
use crate::python;

impl TriggerHandle {
    /// What a call of a native trigger answering `event` runs (on the loop
    /// thread), made while holding the trigger's turn: the call is counted
    /// as it starts (how late, after `due`) — or declined (it awaits
    /// nothing) if the trigger was removed meanwhile, or, for a scheduled
    /// call (not `extra`), paused meanwhile (then it counts as skipped).
    pub fn start(self: &Arc<Self>, event: Event, due: Due, extra: bool) -> Start {
        let this = Arc::clone(self);
        Box::new(move |py| {
            let removed = this.is_removed();
            if removed || (!extra && this.is_paused()) {
                if !removed {
                    this.skip();
                }
                return python::bound(py)?.nothing.bind(py).call0();
            }
            let now = Instant::now();
            this.began(now, due.late(now));
            this.call(py, &event)
        })
    }

    /// What an extra call (`run_now`) runs, holding the turn: `callback(ctx)`
    /// — with an empty list of changes for a file trigger (`files`) —
    /// `ctx.scheduled_at` being `at`.
    pub fn start_extra(self: &Arc<Self>, at: DateTime<Utc>, files: bool) -> Start {
        let event = if files {
            Event::Changes(Vec::new())
        } else {
            Event::Scheduled(at)
        };
        self.set_scheduled_at(Some(at));
        self.start(event, Due::Never, true)
    }

    /// What a coroutine trigger's one call of a run runs (on the loop thread).
    pub fn start_coroutine(self: &Arc<Self>) -> Start {
        let this = Arc::clone(self);
        Box::new(move |py| {
            this.stats.started(Instant::now(), None);
            this.set_life(Life::Running);
            this.call(py, &Event::Tick)
        })
    }

    /// `(ctx,)`, made on the first call (on the loop thread).
    fn args<'py>(self: &Arc<Self>, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        if let Some(args) = self.args.get() {
            return Ok(args.bind(py).clone());
        }
        let make_context = MAKE_CONTEXT.get().ok_or_else(|| {
            pyo3::exceptions::PyRuntimeError::new_err("internal error: no context class registered")
        })?;
        let context = make_context(py, &self.connection, self.delivery, self)?;
        let args = PyTuple::new(py, [context])?;
        // Only the loop thread makes it (holding the GIL): no race.
        let _ = self.args.set(ForkSafeDrop::new(args.clone().unbind()));
        Ok(args)
    }

    /// Call the callable; `TypeError` naming the trigger if what it returns
    /// cannot be awaited.
    fn call<'py>(self: &Arc<Self>, py: Python<'py>, event: &Event) -> PyResult<Bound<'py, PyAny>> {
        if let Event::Scheduled(due) = event {
            self.set_scheduled_at(Some(*due));
        }
        let extra = event_args(py, event)?;
        let args = self.args(py)?;
        let awaitable = if extra.is_empty() {
            self.callable.bind(py).call1(args)?
        } else {
            let args = args.as_sequence().concat(extra.as_sequence())?;
            self.callable.bind(py).call1(args.to_tuple()?)?
        };
        // Coroutines (nearly every callback) need no further look.
        if !awaitable.is_instance(python::bound(py)?.coroutine_type.bind(py))? {
            ensure_awaitable(&awaitable, &format!("trigger '{}'", self.name))?;
        }
        Ok(awaitable)
    }

    /// The call under way has ended: `ctx.scheduled_at` is `None` again.
    pub fn call_ended(&self) {
        self.set_scheduled_at(None);
    }
}

/// The maker of the contexts triggers' calls get: the api layer's class,
/// registered once at import ([`register_context_maker`]) — one for the
/// process rather than a pointer in each of a runner's many records.
static MAKE_CONTEXT: OnceLock<MakeContext> = OnceLock::new();

/// Register the maker of triggers' contexts (at import).
pub fn register_context_maker(make: MakeContext) {
    let _ = MAKE_CONTEXT.set(make);
}

/// Makes the `TriggerContext` a trigger's calls get (the api layer's class);
/// its `scheduled_at` is the handle's.
pub type MakeContext = for<'py> fn(
    Python<'py>,
    &PyConnection,
    TriggerDelivery,
    &Arc<TriggerHandle>,
) -> PyResult<Bound<'py, PyAny>>;

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
