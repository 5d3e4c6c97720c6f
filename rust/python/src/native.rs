//! Native triggers: the base class of `every`, `cron`, `after`, `at` and
//! `on_file_change` triggers, their event sources, and the argument parsing
//! they share.
//!
//! A native trigger keeps its timing (or file watching) in Rust. Under a
//! `TriggerRunner` the core drives it and hands each callback to the loop;
//! called on its own, `trig(ctx)` is a coroutine (`agent_triggers._schedule`)
//! that awaits the same Rust source and runs the callback in its own task.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use agent_triggers_core::sync::Mutex;
use agent_triggers_core::{
    CronSchedule, Deadline, Event, EventSource as CoreSource, FileChange, FileChangeKind,
    FileWatcher, OneShot, SourceFactory, SystemClock, Ticker, TriggerDelivery,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyList, PyTuple, PyType};
use pyo3::{PyTraverseError, PyVisit};
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;

use crate::arguments::{str_argument, type_name};
use crate::delivery;
use crate::interpreter::WakeThroughGate;
use crate::runtime;

/// What wakes a native trigger.
#[derive(Clone)]
pub enum SourceSpec {
    Every(Duration),
    Cron(Arc<CronSchedule>),
    Once(OnceSpec),
    Files {
        path: PathBuf,
        recursive: bool,
        debounce: Duration,
    },
}

/// When a one-shot fires.
#[derive(Clone)]
pub enum OnceSpec {
    /// This long after each start: a restarted runner arms it again.
    After(Duration),
    /// At a wall-clock time, once per trigger object: set once it has fired,
    /// so a runner restarted after that time does not fire it again.
    At(DateTime<Utc>, Arc<AtomicBool>),
}

impl SourceSpec {
    /// Makes the source when the trigger starts (on the tokio runtime) —
    /// except a file watch, set up now, by `start()`: a change made once
    /// `start()` has returned is seen, and a watch that cannot be set up is
    /// `start()`'s error, not a log line later.
    pub fn factory(&self) -> PyResult<SourceFactory> {
        let spec = self.clone();
        if !matches!(self, Self::Files { .. }) {
            return Ok(Arc::new(move |started| spec.make(started)));
        }
        let watching = Mutex::new(Some(self.make_now(Instant::now())?));
        Ok(Arc::new(move |started| match watching.lock().take() {
            Some(watcher) => Ok(watcher),
            None => spec.make(started),
        }))
    }

    /// [`make`](Self::make), from any thread, its error a `RuntimeError`.
    fn make_now(&self, started: Instant) -> PyResult<Box<dyn CoreSource>> {
        let handle = runtime::handle()?;
        let _runtime = handle.enter();
        self.make(started)
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }

    /// A fresh source for a trigger started at `started`. Must be called
    /// within the tokio runtime.
    fn make(&self, started: Instant) -> agent_triggers_core::Result<Box<dyn CoreSource>> {
        Ok(match self {
            Self::Every(period) => Box::new(Ticker::starting_at(started, *period, true)),
            Self::Cron(schedule) => Box::new(schedule.source(Arc::new(SystemClock))),
            Self::Once(OnceSpec::After(delay)) => Box::new(OneShot::new(Deadline::After(*delay))),
            Self::Once(OnceSpec::At(when, fired)) => Box::new(FiresOnce {
                inner: OneShot::new(Deadline::At(*when, Arc::new(SystemClock))),
                fired: Arc::clone(fired),
            }),
            Self::Files {
                path,
                recursive,
                debounce,
            } => Box::new(FileWatcher::new(path, *recursive, *debounce)?),
        })
    }
}

/// An `at()` source that stays exhausted once its trigger has fired anywhere.
struct FiresOnce {
    inner: OneShot,
    fired: Arc<AtomicBool>,
}

#[async_trait]
impl CoreSource for FiresOnce {
    async fn next(&mut self) -> Option<Event> {
        if self.fired.load(Ordering::Acquire) {
            return None;
        }
        let event = self.inner.next().await;
        self.fired.store(true, Ordering::Release);
        event
    }
}

/// The extra arguments an event adds to `callback(ctx, ...)`: none for a due
/// time, the list of `FileChange`s for a batch of file changes.
pub fn event_args<'py>(py: Python<'py>, event: &Event) -> PyResult<Bound<'py, PyTuple>> {
    match event {
        Event::Tick => Ok(PyTuple::empty(py)),
        Event::Changes(changes) => {
            let changes = changes
                .iter()
                .map(|change| file_change(py, change))
                .collect::<PyResult<Vec<_>>>()?;
            PyTuple::new(py, [PyList::new(py, changes)?])
        }
    }
}

/// A core `FileChange` as the Python `agent_triggers.FileChange`.
fn file_change<'py>(py: Python<'py>, change: &FileChange) -> PyResult<Bound<'py, PyAny>> {
    static CLASS: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    static KIND: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    let kind = KIND
        .import(py, "agent_triggers._file_change", "FileChangeKind")?
        .getattr(match change.kind {
            FileChangeKind::Added => "ADDED",
            FileChangeKind::Modified => "MODIFIED",
            FileChangeKind::Deleted => "DELETED",
        })?;
    CLASS
        .import(py, "agent_triggers._file_change", "FileChange")?
        .call1((kind, change.path.as_os_str()))
}

/// Base class of the native triggers: a name, a delivery, an async callback,
/// and the source of events that calls it.
#[pyclass(frozen, subclass, weakref, module = "agent_triggers._core")]
pub struct NativeTrigger {
    name: String,
    delivery: TriggerDelivery,
    callback: Py<PyAny>,
    source: SourceSpec,
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
        let name = match name {
            None => default_name(),
            Some(name) => str_argument(name, "name")?,
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
        })
    }

    pub fn name(&self) -> &str {
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
        static RUN: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        RUN.import(slf.py(), "agent_triggers._schedule", "run_native")?
            .call1((slf, ctx))
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
    fn kind(&self) -> &'static str {
        match self.source {
            SourceSpec::Every(_) => "every",
            SourceSpec::Cron(_) => "cron",
            SourceSpec::Once(OnceSpec::After(_)) => "after",
            SourceSpec::Once(OnceSpec::At(..)) => "at",
            SourceSpec::Files { .. } => "on_file_change",
        }
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
    async fn next(&self) -> PyResult<Option<Py<PyTuple>>> {
        let source = Arc::clone(&self.source);
        let wait = AbortOnDropHandle::new(
            self.handle
                .spawn(async move { source.lock().await.next().await }),
        );
        let event = WakeThroughGate(wait)
            .await
            .map_err(|e| PyRuntimeError::new_err(format!("the trigger's source failed: {e}")))?;
        Python::attach(|py| {
            event
                .map(|event| event_args(py, &event).map(Bound::unbind))
                .transpose()
        })
    }
}
