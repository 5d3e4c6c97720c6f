//! `TriggerRunner`: the Python face of the core runner (API.md §4).

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use agent_triggers_core::Trigger as CoreTrigger;
use agent_triggers_core::TriggerRunner as CoreRunner;
use agent_triggers_core::fault;
use agent_triggers_core::sync::Mutex;
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::AlreadyStartedError;
use crate::arguments::{StopTimeout, type_name};
use crate::connection::{LoopConnection, PyConnection};
use crate::event_loop::{CallSpec, EventLoop};
use crate::interpreter::WakeThroughGate;
use crate::periodic::{self, Schedule};
use crate::runtime;
use crate::trigger::{Built, PythonTrigger, Run, TriggerSpec};

/// Owns and runs a set of triggers against one connection.
///
/// ``TriggerRunner(triggers, connection)`` validates at once: an item that is
/// neither callable nor a ``Trigger`` raises ``TypeError`` naming its index; a
/// connection without a send method raises ``TypeError``.
///
/// ``await start()`` runs every trigger concurrently, each with its own
/// ``TriggerContext``; Python code runs as tasks of the calling event loop with
/// the caller's contextvars. ``await stop()`` cancels them all and returns once
/// each has finished, its ``except``/``finally`` blocks included. A trigger that
/// raises is logged (logger ``agent_triggers``, ERROR) and does not disturb the
/// others; it is not restarted. A runner garbage-collected without ``stop()``
/// cancels its triggers; running triggers do not keep it alive.
#[pyclass(frozen, weakref, module = "agent_triggers._core")]
pub struct TriggerRunner {
    triggers: Vec<TriggerSpec>,
    connection: Arc<PyConnection>,
    /// Set by start, cleared once a stop has finished (by the stop's own task,
    /// so that a stop whose caller is cancelled still completes).
    running: Arc<Mutex<Option<Arc<Running>>>>,
}

/// What one `start()` set going.
struct Running {
    /// The process that started it: a child made by `fork()` inherits this
    /// record but none of the threads its triggers run on.
    pid: u32,
    core: CoreRunner,
    /// The `every` triggers, which run on the timer thread, not as tasks.
    schedules: Vec<Arc<Schedule>>,
    /// The coroutine triggers, whose asyncio tasks `start()` made.
    coroutines: Vec<Arc<PythonTrigger>>,
    event_loop: Arc<EventLoop>,
    /// The Python calls the triggers make, for the garbage collector.
    calls: Vec<Arc<CallSpec>>,
    /// Ends the task that stops this run if its loop closes (see
    /// [`stop_when_the_loop_closes`]), when the run ends first.
    _ended: DropGuard,
}

impl Running {
    /// Refuse to stop (or restart) a run from a forked child. Its tasks live
    /// in the parent's tokio runtime and its Python calls on the parent's
    /// loop, none of which runs here: a stop would wait for ever.
    fn ensure_started_in_this_process(&self) -> PyResult<()> {
        if self.pid == std::process::id() {
            return Ok(());
        }
        Err(PyRuntimeError::new_err(
            "the trigger runner was started in another process (before a fork): its \
             triggers run there, on threads this process does not have, so it can be \
             neither stopped nor started here. Make a new TriggerRunner in this process",
        ))
    }

    /// Cancel every trigger and wait until each has finished, Python cleanup
    /// included. Safe to call from several stops at once: each waits.
    async fn stop(&self) {
        self.stop_schedules();
        self.core.stop().await;
        // A core task aborted before its first poll never took its call over.
        for coroutine in &self.coroutines {
            coroutine.let_go();
        }
        self.event_loop.wait_for_python_tasks().await;
    }

    fn stop_schedules(&self) {
        for schedule in &self.schedules {
            schedule.stop();
        }
    }

    /// What is still running, for a stop that gives up: the names of the
    /// triggers with a Python call yet to finish, then a count of any other
    /// calls (connection methods called for a native trigger).
    fn unfinished(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let mut triggers = 0;
        for call in self.calls.iter().filter(|call| call.is_in_flight()) {
            triggers += 1;
            if !names.iter().any(|name| **name == *call.name) {
                names.push(call.name.to_string());
            }
        }
        let others = self.event_loop.python_task_count().saturating_sub(triggers);
        if others > 0 {
            names.push(format!("{others} connection call(s)"));
        }
        names
    }
}

/// How a stop ended.
enum Stopped {
    /// Every trigger finished, cleanup included.
    Cleanly,
    /// The timeout passed first: these were left running.
    Abandoned(Vec<String>),
}

impl Drop for Running {
    /// A runner dropped without stop(): nothing it started keeps firing (the
    /// core runner aborts its own tasks when dropped).
    fn drop(&mut self) {
        self.stop_schedules();
    }
}

impl TriggerRunner {
    fn already_started() -> PyErr {
        AlreadyStartedError::new_err(
            "the trigger runner is already started; await stop() before starting it again",
        )
    }

    fn start_now(&self, py: Python<'_>) -> PyResult<()> {
        // The lock is not held while Python code runs (building the triggers
        // allocates, and a finalizer run by the GC may call back into us).
        {
            let running = self.running.lock();
            if let Some(run) = running.as_ref() {
                run.ensure_started_in_this_process()?;
            }
            if is_started(&running) {
                return Err(Self::already_started());
            }
        }
        let event_loop = EventLoop::capture(py)?;
        let built = self
            .triggers
            .iter()
            .map(|spec| spec.build(py, &self.connection, &event_loop))
            .collect::<PyResult<Vec<_>>>()?;
        let mut calls = Vec::with_capacity(built.len());
        let mut tasks: Vec<Arc<dyn CoreTrigger>> = Vec::new();
        let mut coroutines = Vec::new();
        let mut periodic = Vec::new();
        for Built { spec, run } in built {
            match run {
                Run::Task(trigger) => tasks.push(trigger),
                Run::Coroutine(trigger) => {
                    // In list order, before start() returns (see PythonTrigger).
                    trigger.launch(py)?;
                    tasks.push(Arc::clone(&trigger) as Arc<dyn CoreTrigger>);
                    coroutines.push(trigger);
                }
                Run::Periodic(period) => periodic.push((Arc::clone(&spec), period)),
            }
            calls.push(spec);
        }
        let connection = Arc::new(LoopConnection {
            connection: Arc::clone(&self.connection),
            event_loop: Arc::clone(&event_loop),
        });
        let core = CoreRunner::new(tasks, connection);
        let handle = runtime::handle()?;
        let mut running = self.running.lock();
        if is_started(&running) {
            return Err(Self::already_started());
        }
        {
            let _runtime = handle.enter();
            core.start().map_err(|_| Self::already_started())?;
        }
        let started = Instant::now();
        let schedules = periodic
            .into_iter()
            .map(|(spec, period)| periodic::start(spec, Arc::clone(&event_loop), period, started))
            .collect();
        let ended = CancellationToken::new();
        let run = Arc::new(Running {
            pid: std::process::id(),
            core,
            schedules,
            coroutines,
            event_loop,
            calls,
            _ended: ended.clone().drop_guard(),
        });
        handle.spawn(stop_when_the_loop_closes(
            Arc::downgrade(&run),
            Arc::downgrade(&self.running),
            ended,
        ));
        *running = Some(run);
        Ok(())
    }

    /// Stop what `start()` set going, waiting at most `timeout` for it.
    ///
    /// The stop runs as a task of its own: cancelling the awaiting coroutine
    /// (a trigger stopping its own runner is cancelled by that very stop) only
    /// stops the waiting, never the stop. Past the timeout the runner counts
    /// as stopped, and the stop task goes on waiting in the background for
    /// the triggers left running (it holds what they need until they end).
    async fn stop_and_wait(&self, timeout: Option<Duration>) -> PyResult<()> {
        let Some(run) = self.running.lock().clone() else {
            return Ok(());
        };
        run.ensure_started_in_this_process()?;
        Python::attach(|py| {
            run.event_loop.ensure_stoppable_from_here(py)?;
            // On the runner's own loop, the coroutine triggers are cancelled
            // before this stop first waits (elsewhere, by their tokio tasks).
            if run.event_loop.is_running_here(py) {
                for coroutine in &run.coroutines {
                    coroutine.cancel_now(py);
                }
            }
            PyResult::Ok(())
        })?;
        let handle = runtime::handle()?;
        let slot = Arc::clone(&self.running);
        let stopping = {
            let run = Arc::clone(&run);
            let slot = Arc::clone(&slot);
            handle.spawn(async move {
                fault::hit(fault::Site::Stop);
                run.stop().await;
                forget(&slot, &run);
            })
        };
        // The timer lives in a task too: it needs the runtime, and the
        // awaiting coroutine is polled on the event loop's thread.
        let waiting = handle.spawn(async move {
            let Some(timeout) = timeout else {
                return stopping.await.map(|()| Stopped::Cleanly);
            };
            match tokio::time::timeout(timeout, stopping).await {
                Ok(stopped) => stopped.map(|()| Stopped::Cleanly),
                Err(_elapsed) => {
                    let unfinished = run.unfinished();
                    forget(&slot, &run);
                    Ok(Stopped::Abandoned(unfinished))
                }
            }
        });
        let stopped = WakeThroughGate(waiting)
            .await
            .and_then(|stopped| stopped)
            .map_err(|e| match e.try_into_panic() {
                Ok(panic) => crate::logging::internal_error(&fault::panic_message(&*panic)),
                Err(e) => PyRuntimeError::new_err(format!("stopping the triggers failed: {e}")),
            })?;
        if let (Stopped::Abandoned(unfinished), Some(timeout)) = (stopped, timeout) {
            Python::attach(|py| crate::logging::report_abandoned(py, &unfinished, timeout));
        }
        Ok(())
    }
}

/// Stop `run` once its loop is closed (`asyncio.run()` returned with the
/// runner started): its native triggers would otherwise go on waking for a
/// loop that can run nothing, and its file watches stay open, until `stop()`.
/// The runner then counts as stopped, and can be started on another loop.
/// Holds nothing strongly while it waits; gives up once the run has ended.
async fn stop_when_the_loop_closes(
    run: Weak<Running>,
    slot: Weak<Mutex<Option<Arc<Running>>>>,
    ended: CancellationToken,
) {
    let Some(closing) = run.upgrade().map(|run| run.event_loop.closing()) else {
        return;
    };
    tokio::select! {
        () = closing => {}
        () = ended.cancelled() => return,
    }
    let (Some(run), Some(slot)) = (run.upgrade(), slot.upgrade()) else {
        return;
    };
    run.stop().await;
    forget(&slot, &run);
}

/// Whether the runner is started: a run whose loop has closed counts as over
/// (its stop may still be under way, see [`stop_when_the_loop_closes`]).
fn is_started(slot: &Option<Arc<Running>>) -> bool {
    slot.as_ref()
        .is_some_and(|run| !run.event_loop.is_known_closed())
}

/// Mark `run` as over, unless a newer start has replaced it already.
fn forget(slot: &Mutex<Option<Arc<Running>>>, run: &Arc<Running>) {
    let mut running = slot.lock();
    if running.as_ref().is_some_and(|r| Arc::ptr_eq(r, run)) {
        *running = None;
    }
}

#[pymethods]
impl TriggerRunner {
    #[new]
    #[pyo3(signature = (triggers, connection))]
    fn py_new(triggers: &Bound<'_, PyAny>, connection: &Bound<'_, PyAny>) -> PyResult<Self> {
        let py = triggers.py();
        let items = triggers.try_iter().map_err(|err| {
            if !err.is_instance_of::<PyTypeError>(py) {
                return err;
            }
            let named = PyTypeError::new_err(format!(
                "triggers must be an iterable of triggers (a list, say), not {}",
                type_name(triggers)
            ));
            named.set_cause(py, Some(err));
            named
        })?;
        let triggers = items
            .enumerate()
            .map(|(index, item)| TriggerSpec::classify(index, &item?))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(Self {
            triggers,
            connection: Arc::new(PyConnection::new(connection)?),
            running: Arc::new(Mutex::new(None)),
        })
    }

    /// Start every trigger as a task of the running event loop.
    ///
    /// Raises ``AlreadyStartedError`` if already started and not stopped since —
    /// even if every trigger has already returned. In a forked child, a runner
    /// the parent had started raises ``RuntimeError`` (see ``stop()``).
    async fn start(&self) -> PyResult<()> {
        Python::attach(|py| self.start_now(py))
    }

    /// Cancel every trigger and wait until each has finished (its cleanup has
    /// run). Idempotent; a no-op before ``start()``; the runner can be started
    /// again afterwards.
    ///
    /// ``timeout`` (seconds or a ``timedelta``; default ``None``: wait as long
    /// as cleanup takes) bounds the wait, for triggers that ignore
    /// cancellation. Past it, ``stop()`` returns normally and logs a WARNING
    /// (logger ``agent_triggers``) naming each trigger still running. Those
    /// are abandoned: they were cancelled once and are left to end on their
    /// own; the runner counts as stopped (``is_running`` is ``False``, it can
    /// be started again).
    ///
    /// Awaited on another event loop than ``start()``'s, ``stop()`` works while
    /// that loop runs (in its thread) or once it is closed; while it is stopped
    /// but not closed, with Python code of the runner under way there (a
    /// coroutine trigger always is), ``stop()`` raises ``RuntimeError`` at once
    /// and stops nothing: that code's cleanup cannot run until the loop does.
    ///
    /// In a child made by ``os.fork()``, a runner the parent had started (and
    /// not stopped) can be neither stopped nor started: ``stop()`` and
    /// ``start()`` raise ``RuntimeError`` at once. Its triggers run in the
    /// parent, on threads the child does not have; the child makes a runner
    /// of its own instead.
    #[pyo3(signature = (timeout = None))]
    async fn stop(&self, timeout: Option<StopTimeout>) -> PyResult<()> {
        self.stop_and_wait(timeout.map(|t| t.0)).await
    }

    /// ``True`` while any trigger task is still running: ``False`` once every
    /// trigger has returned, after ``stop()``, and once the loop that started
    /// the runner is closed (the runner stops then, as if ``stop()`` had been
    /// awaited, and can be started again on another loop).
    #[getter]
    fn is_running(&self) -> bool {
        self.running.lock().as_ref().is_some_and(|run| {
            !run.event_loop.is_known_closed()
                    // A schedule runs until stopped: periodic triggers never return.
                    && (!run.schedules.is_empty()
                        || run.core.is_running()
                        || run.event_loop.has_python_tasks())
        })
    }

    /// ``async with runner:`` starts on enter and stops on exit.
    async fn __aenter__(slf: Py<Self>) -> PyResult<Py<Self>> {
        Python::attach(|py| slf.get().start_now(py))?;
        Ok(slf)
    }

    #[pyo3(signature = (_exc_type = None, _exc = None, _traceback = None))]
    async fn __aexit__(
        &self,
        _exc_type: Option<Py<PyAny>>,
        _exc: Option<Py<PyAny>>,
        _traceback: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        // Returns None: an exception raised in the block is never suppressed.
        self.stop_and_wait(None).await
    }

    fn __repr__(&self) -> String {
        let state = if is_started(&self.running.lock()) {
            "started"
        } else {
            "stopped"
        };
        format!(
            "<TriggerRunner {state}, {} trigger(s)>",
            self.triggers.len()
        )
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        for spec in &self.triggers {
            spec.traverse(&visit)?;
        }
        // Never wait here: the holder of the lock is a stop task that is about
        // to let go; skipping the visit only keeps objects alive a cycle longer.
        if let Some(running) = self.running.try_lock() {
            for call in running.iter().flat_map(|run| &run.calls) {
                call.traverse(&visit)?;
            }
        }
        visit.call(self.connection.object())
    }

    /// Break a reference cycle through a started runner: its triggers are
    /// cancelled, as when a runner is collected without stop().
    fn __clear__(&self) {
        let running = self.running.lock().take();
        drop(running);
    }
}
