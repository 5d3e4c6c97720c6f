//! What wakes a native trigger: its source of events, made afresh for each
//! run, and the extra arguments an event gives the callback.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use agent_triggers_core::sync::Mutex;
use agent_triggers_core::{
    CronSchedule, Deadline, Event, EventSource as CoreSource, FileChange, FileChangeKind,
    FileWatcher, OneShot, SourceFactory, SystemClock, Ticker,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use tokio::time::Instant;

use crate::process::runtime;
use crate::python;

/// What wakes a native trigger.
#[derive(Clone)]
pub enum SourceSpec {
    Every(Duration),
    Cron(Arc<CronSchedule>),
    Once(OnceSpec),
    /// Boxed: kept small for the other kinds, of which a process may hold
    /// hundreds of thousands.
    Files(Box<FilesSpec>),
}

/// What `on_file_change` watches.
#[derive(Clone)]
pub struct FilesSpec {
    pub path: PathBuf,
    pub recursive: bool,
    pub debounce: Duration,
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
    /// Its factory's name (`TriggerStats.kind`).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Every(_) => "every",
            Self::Cron(_) => "cron",
            Self::Once(OnceSpec::After(_)) => "after",
            Self::Once(OnceSpec::At(..)) => "at",
            Self::Files(_) => "on_file_change",
        }
    }

    /// Makes the source when the trigger starts (on the tokio runtime) —
    /// except a file watch, set up now, by `start()`: a change made once
    /// `start()` has returned is seen, and a watch that cannot be set up is
    /// `start()`'s error, not a log line later.
    pub fn factory(&self) -> PyResult<SourceFactory> {
        let spec = self.clone();
        if !matches!(self, Self::Files(_)) {
            return Ok(Arc::new(move |started| spec.make(started)));
        }
        let watching = Mutex::new(Some(self.make_now(Instant::now())?));
        Ok(Arc::new(move |started| match watching.lock().take() {
            Some(watcher) => Ok(watcher),
            None => spec.make(started),
        }))
    }

    /// [`make`](Self::make), from any thread, its error a `RuntimeError`.
    pub fn make_now(&self, started: Instant) -> PyResult<Box<dyn CoreSource>> {
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
            Self::Once(OnceSpec::After(delay)) => {
                Box::new(OneShot::precise(started, Deadline::After(*delay)))
            }
            Self::Once(OnceSpec::At(when, fired)) => Box::new(FiresOnce {
                inner: Box::new(OneShot::precise(
                    started,
                    Deadline::At(*when, Arc::new(SystemClock)),
                )),
                fired: Arc::clone(fired),
            }),
            Self::Files(files) => Box::new(FileWatcher::new(
                &files.path,
                files.recursive,
                files.debounce,
            )?),
        })
    }
}

/// An `at()` source that stays exhausted once its trigger has fired anywhere
/// (under any runner, or, in a fleet, on any replica).
pub struct FiresOnce {
    pub inner: Box<dyn CoreSource>,
    pub fired: Arc<AtomicBool>,
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
        Event::Tick | Event::Scheduled(_) => Ok(PyTuple::empty(py)),
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
    let bound = python::bound(py)?;
    let kind = bound.file_change_kind.bind(py).getattr(match change.kind {
        FileChangeKind::Added => "ADDED",
        FileChangeKind::Modified => "MODIFIED",
        FileChangeKind::Deleted => "DELETED",
    })?;
    bound
        .file_change
        .bind(py)
        .call1((kind, change.path.as_os_str()))
}
