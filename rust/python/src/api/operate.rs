//! Operating a `TriggerRunner` (docs/contract.md §8): `add`, `remove`,
//! `pause`, `resume`, `run_now` and `stats()`.
//!
//! `trigger` is a trigger object of the runner (matched by identity) or a
//! name (every trigger of the runner with that name). While the runner is
//! started, `add`, `remove` and `run_now` are called on its loop's thread
//! (`pause`, `resume` and `stats()` only touch atomics: from anywhere);
//! before `start()` and after `stop()` they change only the list (`run_now`
//! needs a started runner).

use std::sync::Arc;

use chrono::Utc;
use pyo3::exceptions::{PyKeyError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::plan::{Argument, check, entry, key_of};
use super::runner::{Running, TriggerRunner};
use crate::arguments::type_name;
use crate::process::awaiting::awaitable;
use crate::process::runtime;
use crate::python;
use crate::run::plan::{Entry, Plan, PlanKind};

impl TriggerRunner {
    /// The triggers `trigger` names: `KeyError` if none, `TypeError` if it
    /// is neither a name nor a trigger object.
    fn matching(&self, trigger: &Bound<'_, PyAny>) -> PyResult<Vec<Entry>> {
        let py = trigger.py();
        // Neither test runs Python code: the lock is held for them only.
        let found: Vec<Entry> = if let Ok(name) = trigger.cast::<PyString>() {
            let name = name.to_cow()?;
            let triggers = self.triggers.lock();
            triggers
                .iter()
                .filter(|plan| *plan.handle.name == *name)
                .map(|plan| entry(py, plan))
                .collect()
        } else if trigger.is_callable()
            || trigger.is_instance(python::bound(py)?.trigger_class.bind(py))?
        {
            let triggers = self.triggers.lock();
            triggers
                .iter()
                .filter(|plan| plan.object.bind(py).is(trigger))
                .map(|plan| entry(py, plan))
                .collect()
        } else {
            return Err(PyTypeError::new_err(format!(
                "trigger must be a trigger of the runner or a trigger's name (str), not {}",
                type_name(trigger)
            )));
        };
        if found.is_empty() {
            let shown = match trigger.cast::<PyString>() {
                Ok(name) => format!("no trigger of this runner is named {}", name.repr()?),
                Err(_) => format!("{} is not a trigger of this runner", trigger.repr()?),
            };
            return Err(PyKeyError::new_err(shown));
        }
        Ok(found)
    }

    /// As [`matching`](Self::matching), every match a native trigger
    /// (`TypeError` naming the operation otherwise).
    fn matching_native(&self, trigger: &Bound<'_, PyAny>, operation: &str) -> PyResult<Vec<Entry>> {
        let found = self.matching(trigger)?;
        if let Some(entry) = found.iter().find(|entry| !entry.kind.is_native()) {
            return Err(PyTypeError::new_err(format!(
                "{operation}() is for native triggers (every, cron, after, at, \
                 on_file_change); {:?} is a coroutine trigger",
                &*entry.handle.name
            )));
        }
        Ok(found)
    }

    /// The run under way, if started; `RuntimeError` if it is not this
    /// thread's running loop that started it.
    fn run_here(&self, py: Python<'_>, operation: &str) -> PyResult<Option<Arc<Running>>> {
        let running = self.running.lock().clone();
        let Some(run) = running.filter(|run| !run.host().is_known_closed()) else {
            return Ok(None);
        };
        run.ensure_started_in_this_process()?;
        if !run.host().is_running_here(py) {
            return Err(PyRuntimeError::new_err(format!(
                "{operation}() on a started runner must be called from its event loop \
                 (the one that awaited start())"
            )));
        }
        Ok(Some(run))
    }

    /// `remove()`'s work (see there).
    async fn remove_and_wait(&self, trigger: Py<PyAny>) -> PyResult<()> {
        let (entries, run) = Python::attach(|py| {
            let trigger = trigger.bind(py);
            let entries = self.matching(trigger)?;
            let run = self.run_here(py, "remove")?;
            let gone: Vec<Plan> = {
                let mut triggers = self.triggers.lock();
                let (gone, kept) = std::mem::take(&mut *triggers)
                    .into_iter()
                    .partition(|plan| {
                        entries
                            .iter()
                            .any(|entry| Arc::ptr_eq(&entry.handle, &plan.handle))
                    });
                *triggers = kept;
                gone
            };
            // Outside the lock: letting go of the user's objects may run Python.
            drop(gone);
            if let Some(run) = &run {
                for entry in &entries {
                    run.cancel_calls_now(py, &entry.handle);
                }
            }
            PyResult::Ok((entries, run))
        })?;
        let Some(run) = run else {
            return Ok(());
        };
        // A task of its own, as a stop: cancelling the awaiting coroutine
        // (the trigger removing itself) stops the waiting, not the removal.
        let removing = runtime::handle()?.spawn(async move {
            for entry in &entries {
                run.remove(&entry.handle, &entry.kind).await;
            }
        });
        removing
            .await
            .map_err(|e| PyRuntimeError::new_err(format!("removing the trigger failed: {e}")))
    }

    /// `run_now()`'s work (see there).
    async fn run_now_and_wait(&self, trigger: Py<PyAny>) -> PyResult<()> {
        let at = Utc::now();
        let (entries, run) = Python::attach(|py| {
            let entries = self.matching_native(trigger.bind(py), "run_now")?;
            let run = self.run_here(py, "run_now")?.ok_or_else(|| {
                PyRuntimeError::new_err(
                    "run_now() makes a call on the runner's event loop: start() the runner first",
                )
            })?;
            PyResult::Ok((entries, run))
        })?;
        let handle = runtime::handle()?;
        let calls: Vec<_> = entries
            .into_iter()
            .map(|entry| {
                let run = Arc::clone(&run);
                handle.spawn(async move { run.run_now(&entry.handle, &entry.kind, at).await })
            })
            .collect();
        let all = handle.spawn(async move {
            for call in calls {
                call.await?;
            }
            Ok::<(), tokio::task::JoinError>(())
        });
        all.await
            .and_then(|joined| joined)
            .map_err(|e| PyRuntimeError::new_err(format!("the extra call failed to run: {e}")))
    }
}

#[pymethods]
impl TriggerRunner {
    /// Add ``trigger`` (any kind the constructor takes; ``TypeError``
    /// otherwise; ``ValueError`` for a ``key=`` another trigger has). A
    /// started runner starts it at once — its schedule counts from now; else
    /// it starts with the next ``start()``.
    fn add(&self, trigger: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = trigger.py();
        let plan = check(Argument::Named("trigger"), trigger)?.plan(&self.connection)?;
        let added = entry(py, &plan);
        let run = self.run_here(py, "add")?;
        if let PlanKind::Native { key: Some(key), .. } = &added.kind
            && let Some(index) = self
                .triggers
                .lock()
                .iter()
                .position(|other| key_of(py, other).as_ref() == Some(key))
        {
            return Err(PyValueError::new_err(format!(
                "trigger has the key {key:?} of triggers[{index}]: a key names one \
                 trigger of the fleet"
            )));
        }
        if let Some(run) = run {
            run.add(py, &added)?;
        }
        self.triggers.lock().push(plan);
        Ok(())
    }

    /// Remove ``trigger`` (the object, or every trigger with that name;
    /// ``KeyError`` if none): it is cancelled and waited for like ``stop()``
    /// (its ``finally`` blocks have run when this returns). Awaited from
    /// inside the trigger being removed, the awaiting code is cancelled
    /// there, and the removal completes.
    fn remove<'py>(
        slf: Py<Self>,
        py: Python<'py>,
        trigger: Py<PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, async move { slf.get().remove_and_wait(trigger).await })
    }

    /// Pause ``trigger`` (native triggers only; ``TypeError`` for a
    /// coroutine trigger): no call starts until ``resume()``; ticks due
    /// meanwhile are skipped (counted in ``stats()``); a call under way
    /// finishes. Kept across ``stop()`` and ``start()``.
    fn pause(&self, trigger: &Bound<'_, PyAny>) -> PyResult<()> {
        for entry in self.matching_native(trigger, "pause")? {
            entry.handle.pause();
        }
        Ok(())
    }

    /// Resume ``trigger``: calls start again on its schedule's grid; its
    /// failures in a row start over.
    fn resume(&self, trigger: &Bound<'_, PyAny>) -> PyResult<()> {
        for entry in self.matching_native(trigger, "resume")? {
            entry.handle.resume();
        }
        Ok(())
    }

    /// Make one extra call of ``trigger`` (a native trigger) now, paused or
    /// not, and return once it has ended; its schedule is unchanged. A call
    /// under way is waited for first (calls never overlap); a scheduled tick
    /// falling due during the extra call is skipped. ``ctx.scheduled_at`` is
    /// when ``run_now`` was called. A failure is logged and counted, not
    /// raised. ``RuntimeError`` if the runner is not started.
    fn run_now<'py>(
        slf: Py<Self>,
        py: Python<'py>,
        trigger: Py<PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, async move { slf.get().run_now_and_wait(trigger).await })
    }

    /// A ``TriggerStats`` per trigger, in order: a snapshot (see
    /// ``agent_triggers.TriggerStats``). Never blocks.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let triggers = self.entries(py);
        let class = python::bound(py)?.trigger_stats.bind(py);
        let seconds = |d: std::time::Duration| d.as_secs_f64();
        triggers
            .iter()
            .map(|entry| {
                let handle = &entry.handle;
                let stats = handle.stats.snapshot();
                let fields = PyDict::new(py);
                fields.set_item("name", &*handle.name)?;
                fields.set_item("kind", entry.kind.name())?;
                fields.set_item("state", handle.state())?;
                fields.set_item("calls", stats.calls)?;
                fields.set_item("failures", stats.failures)?;
                fields.set_item("consecutive_failures", stats.consecutive_failures)?;
                fields.set_item("skipped", stats.skipped)?;
                let last = stats
                    .last_call_at
                    .map(|at| python::utc_datetime(py, at))
                    .transpose()?;
                fields.set_item("last_call_at", last)?;
                let next = stats
                    .next_call_at
                    .filter(|_| !handle.is_paused())
                    .map(|at| python::utc_datetime(py, at))
                    .transpose()?;
                fields.set_item("next_call_at", next)?;
                fields.set_item("lateness_p50", stats.lateness.map(|l| seconds(l.p50)))?;
                fields.set_item("lateness_p99", stats.lateness.map(|l| seconds(l.p99)))?;
                fields.set_item("lateness_max", stats.lateness.map(|l| seconds(l.max)))?;
                fields.set_item("last_error", stats.last_error.as_deref())?;
                class.call((), Some(&fields))
            })
            .collect()
    }
}
