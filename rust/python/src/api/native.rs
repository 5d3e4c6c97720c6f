//! Native triggers: the base class of `every`, `cron`, `after`, `at` and
//! `on_file_change` triggers, their event sources, and the argument parsing
//! they share.
//!
//! A native trigger keeps its timing (or file watching) in Rust. Under a
//! `TriggerRunner` the core drives it and hands each callback to the loop;
//! called on its own, `trig(ctx)` is a coroutine (`agent_triggers._schedule`)
//! that awaits the same Rust source and runs the callback in its own task.

use std::num::NonZeroU32;
use std::sync::Arc;

use agent_triggers_core::{EventSource as CoreSource, TriggerDelivery};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;

use crate::arguments::{positive_count, str_argument, type_name};
use crate::delivery;
use crate::process::awaiting::awaitable;
use crate::process::runtime;
use crate::python;
use crate::run::source::{SourceSpec, event_args};

/// Base class of the native triggers: a name, a delivery, an async callback,
/// and the source of events that calls it.
#[pyclass(frozen, subclass, weakref, module = "agent_triggers._core")]
pub struct NativeTrigger {
    /// Shared with the record each runner keeps of it (one allocation).
    name: Arc<str>,
    delivery: TriggerDelivery,
    callback: Py<PyAny>,
    source: SourceSpec,
    /// Its key in a fleet (`key=`): one replica runs each of its ticks.
    key: Option<Arc<str>>,
    /// After this many failing calls in a row it pauses itself
    /// (`max_consecutive_failures=`). 4 bytes: with `delivery`, the object
    /// stays in Python's 112-byte size class.
    max_consecutive_failures: Option<NonZeroU32>,
}

impl NativeTrigger {
    /// Checks `callback` is callable and `name`/`delivery` are well typed.
    pub fn new(
        default_name: impl FnOnce() -> String,
        callback: &Bound<'_, PyAny>,
        name: Option<&Bound<'_, PyAny>>,
        delivery: Option<&Bound<'_, PyAny>>,
        source: SourceSpec,
    ) -> PyResult<Self> {
        if !callback.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "callback must be an async callable taking the context, not {}",
                type_name(callback)
            )));
        }
        let name: Arc<str> = match name {
            None => default_name().into(),
            Some(name) => str_argument(name, "name")?.into(),
        };
        let delivery = match delivery {
            None => TriggerDelivery::WaitIdle,
            Some(value) => delivery::from_python(value, "delivery")?,
        };
        Ok(Self {
            name,
            delivery,
            callback: callback.clone().unbind(),
            source,
            key: None,
            max_consecutive_failures: None,
        })
    }

    /// With `max_consecutive_failures=` (every factory): an `int` ≥ 1, or `None`.
    pub fn failure_limit(mut self, limit: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        self.max_consecutive_failures = limit
            .filter(|limit| !limit.is_none())
            .map(|limit| positive_count(limit, "max_consecutive_failures"))
            .transpose()?
            .and_then(NonZeroU32::new);
        Ok(self)
    }

    pub fn max_consecutive_failures(&self) -> Option<NonZeroU32> {
        self.max_consecutive_failures
    }

    /// With `key=` (`every`, `cron`, `at`): a non-empty `str`, or `None`.
    pub fn keyed(mut self, key: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let Some(key) = key.filter(|key| !key.is_none()) else {
            return Ok(self);
        };
        let key = str_argument(key, "key")?;
        if key.is_empty() {
            return Err(PyValueError::new_err("key must not be empty"));
        }
        self.key = Some(key.into());
        Ok(self)
    }

    /// `key=` given to a factory whose ticks no fleet shares (`after`:
    /// counted from each replica's own start; `on_file_change`: each
    /// replica's own files): `ValueError`.
    pub fn refuse_key(key: Option<&Bound<'_, PyAny>>, factory: &str) -> PyResult<()> {
        match key {
            Some(key) if !key.is_none() => Err(PyValueError::new_err(format!(
                "key= is for every(), cron() and at(), whose ticks are the same instants on \
                 every replica; {factory}() triggers cannot be shared by a fleet"
            ))),
            _ => Ok(()),
        }
    }

    pub fn key(&self) -> Option<&Arc<str>> {
        self.key.as_ref()
    }

    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    pub fn delivery(&self) -> TriggerDelivery {
        self.delivery
    }

    pub fn callback(&self) -> &Py<PyAny> {
        &self.callback
    }

    pub fn source(&self) -> &SourceSpec {
        &self.source
    }
}

#[pymethods]
impl NativeTrigger {
    /// The trigger's name.
    #[getter(name)]
    fn py_name(&self) -> &str {
        &self.name
    }

    /// The trigger's name, as for a function.
    #[getter(__name__)]
    fn dunder_name(&self) -> &str {
        &self.name
    }

    /// How ``ctx.deliver()`` sends from this trigger's callback.
    #[getter(delivery)]
    fn py_delivery<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        delivery::to_python(py, self.delivery)
    }

    /// The trigger's key in a fleet (``key=``), or ``None``.
    #[getter(key)]
    fn py_key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// After this many failing calls in a row the trigger pauses itself
    /// (``max_consecutive_failures=``); ``None``: never.
    #[getter(max_consecutive_failures)]
    fn py_max_consecutive_failures(&self) -> Option<u32> {
        self.max_consecutive_failures.map(NonZeroU32::get)
    }

    /// The async callable run on each event.
    #[getter(callback)]
    fn py_callback(&self, py: Python<'_>) -> Py<PyAny> {
        self.callback.clone_ref(py)
    }

    /// ``copy.copy(trig)`` is ``trig``: a trigger is a live handle (its
    /// schedule, its watch, an ``at`` trigger's fired mark), not a value to
    /// duplicate. Agent configs that copy their trigger lists keep it.
    fn __copy__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// ``copy.deepcopy(trig)`` is ``trig`` too (see ``__copy__``).
    fn __deepcopy__<'py>(slf: Bound<'py, Self>, _memo: &Bound<'py, PyAny>) -> Bound<'py, Self> {
        slf
    }

    /// ``trig(ctx)``: a coroutine running the trigger until cancelled (or, for
    /// a one-shot, until its call is done), handing ``ctx`` (any object) to
    /// the callback as is.
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        ctx: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        python::bound(py)?.run_native.bind(py).call1((slf, ctx))
    }

    /// A new event source for this trigger, starting now. Used by
    /// ``trig(ctx)``; a runner keeps the source in Rust instead.
    fn _source(&self) -> PyResult<EventSource> {
        let source = self.source.make_now(Instant::now())?;
        Ok(EventSource {
            source: Arc::new(tokio::sync::Mutex::new(source)),
            handle: runtime::handle()?,
        })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "<{} {:?}, callback={}>",
            self.kind(),
            self.name,
            self.callback.bind(py).repr()?
        ))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.callback)
    }
}

impl NativeTrigger {
    /// What kind of trigger it is: its factory's name.
    pub fn kind(&self) -> &'static str {
        self.source.kind_name()
    }
}

/// A native trigger's events, kept by the Rust runtime (see ``_source``).
#[pyclass(frozen, module = "agent_triggers._core")]
pub struct EventSource {
    source: Arc<tokio::sync::Mutex<Box<dyn CoreSource>>>,
    handle: tokio::runtime::Handle,
}

#[pymethods]
impl EventSource {
    /// The next event, as the extra arguments of the callback (``()`` for a
    /// due time, ``(changes,)`` for file changes); ``None`` once exhausted.
    /// Cancelling the wait loses no event.
    fn next<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let source = Arc::clone(&self.source);
        let handle = self.handle.clone();
        awaitable(py, async move {
            let wait = AbortOnDropHandle::new(
                handle.spawn(async move { source.lock().await.next().await }),
            );
            let event = wait.await.map_err(|e| {
                PyRuntimeError::new_err(format!("the trigger's source failed: {e}"))
            })?;
            Python::attach(|py| {
                event
                    .map(|event| event_args(py, &event).map(Bound::unbind))
                    .transpose()
            })
        })
    }
}
