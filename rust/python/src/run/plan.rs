//! A runner's triggers, as planned: what each one is and the Python call it
//! makes.

use std::sync::{Arc, OnceLock};

use agent_triggers_core::sync::Mutex;
use agent_triggers_core::{Event, TriggerDelivery};
use chrono::{DateTime, Utc};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use pyo3::{PyTraverseError, PyVisit};

use super::connection::{PyConnection, ensure_awaitable};
use super::source::{SourceSpec, event_args};
use crate::gc::Traverse;
use crate::host::Start;
use crate::process::ForkSafeDrop;
use crate::python;

/// One trigger of a runner, checked by the api layer.
pub struct Plan {
    /// The object the user passed.
    pub object: Py<PyAny>,
    pub name: Arc<str>,
    pub delivery: TriggerDelivery,
    pub kind: PlanKind,
}

pub enum PlanKind {
    /// A native trigger (`every`, `cron`, `after`, `at`, `on_file_change`):
    /// events from a Rust source, `callback(ctx, ...)` run on the loop for each.
    Native {
        source: SourceSpec,
        callback: Py<PyAny>,
        /// Its key in a fleet: under a runner with one, each tick runs on
        /// one replica only.
        key: Option<Arc<str>>,
    },
    /// A coroutine trigger: `callable(ctx)` run once on the loop.
    Coroutine { callable: Py<PyAny> },
}

impl Traverse for Plan {
    fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.object)?;
        match &self.kind {
            PlanKind::Native { callback, .. } => visit.call(callback),
            PlanKind::Coroutine { callable } => visit.call(callable),
        }
    }
}

/// The instant the call under way was scheduled for (`ctx.scheduled_at`),
/// shared by a trigger's calls (which never overlap) and its context; `None`
/// between calls and for calls no schedule made.
pub type ScheduledAt = Arc<Mutex<Option<DateTime<Utc>>>>;

/// Makes the `TriggerContext` a trigger's calls get (the api layer's class).
pub type MakeContext = for<'py> fn(
    Python<'py>,
    &PyConnection,
    TriggerDelivery,
    &ScheduledAt,
) -> PyResult<Bound<'py, PyAny>>;

/// The Python call a trigger makes: `callable(ctx, *event_args)`.
///
/// Its references are in [`ForkSafeDrop`]s: a tokio thread may let go of it.
pub struct TriggerCall {
    /// The trigger's name: its calls' name.
    pub name: Arc<str>,
    callable: ForkSafeDrop<Py<PyAny>>,
    connection: Arc<PyConnection>,
    delivery: TriggerDelivery,
    make_context: MakeContext,
    scheduled_at: ScheduledAt,
    /// `(ctx,)`, made on the first call: an idle trigger (say, hourly) holds
    /// no Python objects for it.
    args: OnceLock<ForkSafeDrop<Py<PyTuple>>>,
}

impl TriggerCall {
    pub fn new(
        name: Arc<str>,
        callable: Py<PyAny>,
        connection: Arc<PyConnection>,
        delivery: TriggerDelivery,
        make_context: MakeContext,
    ) -> Self {
        Self {
            name,
            callable: ForkSafeDrop::new(callable),
            connection,
            delivery,
            make_context,
            scheduled_at: ScheduledAt::default(),
            args: OnceLock::new(),
        }
    }

    /// The call under way has ended: `ctx.scheduled_at` is `None` again.
    pub fn ended(&self) {
        *self.scheduled_at.lock() = None;
    }

    /// What a call answering `event` runs (on the loop thread).
    pub fn start(self: &Arc<Self>, event: Event) -> Start {
        let this = Arc::clone(self);
        Box::new(move |py| this.call(py, &event))
    }

    /// `(ctx,)`, made on the first call (on the loop thread).
    fn args<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        if let Some(args) = self.args.get() {
            return Ok(args.bind(py).clone());
        }
        let context = (self.make_context)(py, &self.connection, self.delivery, &self.scheduled_at)?;
        let args = PyTuple::new(py, [context])?;
        // Only the loop thread makes it (holding the GIL): no race.
        let _ = self.args.set(ForkSafeDrop::new(args.clone().unbind()));
        Ok(args)
    }

    /// Call the callable; `TypeError` naming the trigger if what it returns
    /// cannot be awaited.
    fn call<'py>(&self, py: Python<'py>, event: &Event) -> PyResult<Bound<'py, PyAny>> {
        if let Event::Scheduled(due) = event {
            *self.scheduled_at.lock() = Some(*due);
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
}

impl Traverse for TriggerCall {
    fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&*self.callable)?;
        visit.call(self.args.get().map(|args| &**args))
    }
}
