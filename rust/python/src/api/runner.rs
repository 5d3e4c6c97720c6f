//! `TriggerRunner`: arguments checked, each start and stop handed to a
//! [`Run`] (docs/contract.md §4).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use agent_triggers_core::fault;
use agent_triggers_core::fleet::FleetConfig;
use agent_triggers_core::sync::Mutex;
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::fleet::RedisFleet;
use super::plan::{Argument, check, check_keys, entry};
use crate::AlreadyStartedError;
use crate::arguments::{StopTimeout, type_name};
use crate::gc::Traverse;
use crate::host::Host;
use crate::process::awaiting::{awaitable, awaitable_shielded};
use crate::process::runtime;
use crate::run::Run;
use crate::run::connection::PyConnection;
use crate::run::plan::{Entry, Plan};

/// Owns and runs a set of triggers against one connection.
///
/// ``TriggerRunner(triggers, connection, *, fleet=None)`` validates at once: an item that is
/// neither callable nor a ``Trigger`` raises ``TypeError`` naming its index; a
/// connection without a send method raises ``TypeError``. ``fleet`` (a
/// ``RedisFleet``) makes each tick of a keyed trigger (``key=``) run on one
/// replica of the fleet only; two triggers with one key are a ``ValueError``.
///
/// ``await start()`` runs every trigger concurrently, each with its own
/// ``TriggerContext``; Python code runs as tasks of the calling host (the asyncio
/// loop, or the trio run, that awaited ``start()``) with
/// the caller's contextvars. ``await stop()`` cancels them all and returns once
/// each has finished, its ``except``/``finally`` blocks included. A trigger that
/// raises is logged (logger ``agent_triggers``, ERROR) and does not disturb the
/// others; it is not restarted. A runner garbage-collected without ``stop()``
/// cancels its triggers; running triggers do not keep it alive.
#[pyclass(frozen, weakref, module = "agent_triggers._core")]
pub struct TriggerRunner {
    /// In order; changed by `add` and `remove`. Never locked while Python
    /// code runs.
    pub(super) triggers: Mutex<Vec<Plan>>,
    pub(super) connection: Arc<PyConnection>,
    /// The fleet its keyed triggers share (`fleet=`), if any.
    fleet: Option<FleetConfig>,
    /// Set by start, cleared once a stop has finished (by the stop's own task,
    /// so that a stop whose caller is cancelled still completes).
    pub(super) running: Arc<Mutex<Option<Arc<Running>>>>,
    /// Stops awaited so far: a `start()` that waited for its host to open
    /// (trio's nursery) starts nothing if a stop was awaited meanwhile — the
    /// caller asked for the runner to be stopped last.
    stops: AtomicU64,
}

/// A run, and what ends the task watching for its loop to close.
pub(super) struct Running {
    run: Run,
    /// Ends the task that stops this run if its loop closes (see
    /// [`stop_when_the_loop_closes`]), when the run ends first.
    _ended: DropGuard,
}

impl std::ops::Deref for Running {
    type Target = Run;

    fn deref(&self) -> &Run {
        &self.run
    }
}

/// How a stop ended.
enum Stopped {
    /// Every trigger finished, cleanup included.
    Cleanly,
    /// The timeout passed first: these were left running.
    Abandoned(Vec<String>),
}

impl TriggerRunner {
    fn already_started() -> PyErr {
        AlreadyStartedError::new_err(
            "the trigger runner is already started; await stop() before starting it again",
        )
    }

    /// What a run needs of each trigger, in order.
    pub(super) fn entries(&self, py: Python<'_>) -> Vec<Entry> {
        self.triggers
            .lock()
            .iter()
            .map(|plan| entry(py, plan))
            .collect()
    }

    /// `AlreadyStartedError` if started (and `RuntimeError` in a forked
    /// child of a started runner's process).
    fn ensure_not_started(&self) -> PyResult<()> {
        let running = self.running.lock();
        if let Some(run) = running.as_ref() {
            run.ensure_started_in_this_process()?;
        }
        if is_started(&running) {
            return Err(Self::already_started());
        }
        Ok(())
    }

    /// `start()`: the host of the awaiting task, once it can start calls
    /// (at once on asyncio; trio's nursery opens in a task of its own).
    async fn start_here(&self) -> PyResult<()> {
        // The schedules' origin: the moment start() began (was first
        // awaited). What start() then does — capturing the host, waiting for
        // trio's nursery, starting the runtime the first time, starting
        // coroutine triggers — does not delay the grid.
        let origin = Instant::now();
        let host = Python::attach(|py| {
            self.ensure_not_started()?;
            crate::host::capture(py)
        })?;
        let stops = self.stops.load(Ordering::SeqCst);
        crate::host::opened(&*host).await?;
        if self.stops.load(Ordering::SeqCst) != stops {
            return Ok(());
        }
        Python::attach(|py| self.start_now(py, host, origin))
    }

    fn start_now(&self, py: Python<'_>, host: Arc<dyn Host>, origin: Instant) -> PyResult<()> {
        // The lock is not held while Python code runs (building the triggers
        // allocates, and a finalizer run by the GC may call back into us).
        self.ensure_not_started()?;
        let entries = self.entries(py);
        let run = Run::start(py, host, &entries, self.fleet.as_ref(), origin)?;
        let handle = runtime::handle()?;
        let mut running = self.running.lock();
        if is_started(&running) {
            return Err(Self::already_started());
        }
        let ended = CancellationToken::new();
        let run = Arc::new(Running {
            run,
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
        self.stops.fetch_add(1, Ordering::SeqCst);
        let Some(run) = self.running.lock().clone() else {
            return Ok(());
        };
        run.ensure_started_in_this_process()?;
        // Before anything is cancelled: past this point the stop goes ahead.
        let handle = runtime::handle()?;
        Python::attach(|py| {
            run.host().ensure_stoppable_from_here(py)?;
            // On the runner's own loop, every call is cancelled before this
            // stop first waits (elsewhere, by the stop task, through the loop).
            if run.host().is_running_here(py) {
                run.cancel_now(py);
            }
            PyResult::Ok(())
        })?;
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
        let host = Arc::clone(run.host());
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
        let stopped = waiting.await.and_then(|stopped| stopped).map_err(|e| {
            // The runner is still started: its triggers take new calls again.
            host.registry().lift_hold();
            match e.try_into_panic() {
                Ok(panic) => crate::logging::internal_error(&fault::panic_message(&*panic)),
                Err(e) => PyRuntimeError::new_err(format!("stopping the triggers failed: {e}")),
            }
        })?;
        if let (Stopped::Abandoned(unfinished), Some(timeout)) = (stopped, timeout) {
            Python::attach(|py| crate::logging::report_abandoned(py, &unfinished, timeout));
        }
        Ok(())
    }
}

/// Stop `run` once its loop is closed (`asyncio.run()` or `trio.run()` returned with the
/// runner started): its native triggers would otherwise go on waking for a
/// loop that can run nothing, and its file watches stay open, until `stop()`.
/// The runner then counts as stopped, and can be started on another loop.
/// Holds nothing strongly while it waits; gives up once the run has ended.
async fn stop_when_the_loop_closes(
    run: Weak<Running>,
    slot: Weak<Mutex<Option<Arc<Running>>>>,
    ended: CancellationToken,
) {
    let Some(closing) = run.upgrade().map(|run| run.host().closing()) else {
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
        .is_some_and(|run| !run.host().is_known_closed())
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
    #[pyo3(signature = (triggers, connection, *, fleet = None))]
    fn py_new(
        triggers: &Bound<'_, PyAny>,
        connection: &Bound<'_, PyAny>,
        fleet: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
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
        let checked = items
            .enumerate()
            .map(|(index, item)| check(Argument::Item(index), &item?))
            .collect::<PyResult<Vec<_>>>()?;
        check_keys(&checked)?;
        let fleet = match fleet.filter(|fleet| !fleet.is_none()) {
            None => None,
            Some(fleet) => Some(
                fleet
                    .cast::<RedisFleet>()
                    .map_err(|_| {
                        PyTypeError::new_err(format!(
                            "fleet must be a RedisFleet or None, not {}",
                            type_name(fleet)
                        ))
                    })?
                    .get()
                    .config()
                    .clone(),
            ),
        };
        // Then the connection, which the triggers' calls send into.
        let connection = Arc::new(PyConnection::new(connection)?);
        let mut triggers = checked
            .into_iter()
            .map(|checked| checked.plan(&connection))
            .collect::<PyResult<Vec<_>>>()?;
        // Collected through a `Result`, it grew by doubling: up to half of
        // it would be spare, for every trigger.
        triggers.shrink_to_fit();
        Ok(Self {
            triggers: Mutex::new(triggers),
            fleet,
            connection,
            running: Arc::new(Mutex::new(None)),
            stops: AtomicU64::new(0),
        })
    }

    /// Start every trigger as a task of the awaiting host: the running asyncio
    /// loop, or (under trio) a nursery the runner keeps in the trio run.
    ///
    /// Raises ``AlreadyStartedError`` if already started and not stopped since —
    /// even if every trigger has already returned. In a forked child, a runner
    /// the parent had started raises ``RuntimeError`` (see ``stop()``).
    fn start<'py>(slf: Py<Self>, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, async move { slf.get().start_here().await })
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
    fn stop<'py>(
        slf: Py<Self>,
        py: Python<'py>,
        timeout: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        // Checked when awaited, as an `async def` would.
        awaitable(py, async move {
            let timeout = Python::attach(|py| {
                timeout
                    .filter(|t| !t.is_none(py))
                    .map(|t| t.extract::<StopTimeout>(py))
                    .transpose()
            })?;
            slf.get().stop_and_wait(timeout.map(|t| t.0)).await
        })
    }

    /// ``True`` while any trigger task is still running: ``False`` once every
    /// trigger has returned, after ``stop()``, and once the loop that started
    /// the runner is closed (the runner stops then, as if ``stop()`` had been
    /// awaited, and can be started again on another loop).
    #[getter]
    fn is_running(&self) -> bool {
        self.running
            .lock()
            .as_ref()
            .is_some_and(|run| run.is_running())
    }

    /// ``async with runner:`` starts on enter and stops on exit.
    fn __aenter__<'py>(slf: Py<Self>, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, async move {
            slf.get().start_here().await?;
            Ok(slf)
        })
    }

    #[pyo3(signature = (_exc_type = None, _exc = None, _traceback = None))]
    fn __aexit__<'py>(
        slf: Py<Self>,
        py: Python<'py>,
        _exc_type: Option<Py<PyAny>>,
        _exc: Option<Py<PyAny>>,
        _traceback: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        // Returns None: an exception raised in the block is never suppressed.
        // Under trio, shielded: a cancelled block still waits for cleanup.
        awaitable_shielded(py, async move { slf.get().stop_and_wait(None).await })
    }

    fn __repr__(&self) -> String {
        let state = if is_started(&self.running.lock()) {
            "started"
        } else {
            "stopped"
        };
        format!(
            "<TriggerRunner {state}, {} trigger(s)>",
            self.triggers.lock().len()
        )
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        // Never wait here: the holder of the lock (an `add` on another thread)
        // is about to let go; skipping the visit only keeps objects alive a
        // cycle longer. That holds because the lock is never held across
        // Python code (so never across a collection's two passes). Each plan
        // shows its object, its callable and its context: a run holds the
        // same records and shows nothing again.
        if let Some(triggers) = self.triggers.try_lock() {
            for plan in triggers.iter() {
                plan.traverse(&visit)?;
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
