//! The asyncio host: calls run as tasks of the loop that awaited `start()`,
//! inside the contextvars captured there.
//!
//! Why not `pyo3_async_runtimes::into_future_with_locals`: dropping its future
//! leaves the Python task running, and nothing waits for the task's cleanup.
//! Here every call stays in the registry until its task has really finished,
//! so `stop()` can wait for `except`/`finally` blocks to have run.
//!
//! Hand-offs are batched ([`super::queue`]) and wake the loop without the GIL
//! where it can watch a socket ([`super::doorbell`]); elsewhere (Windows'
//! proactor loop) the wake-up is a `call_soon_threadsafe`, made on a
//! blocking-pool thread so that the timer thread never waits on a busy loop.

use std::sync::{Arc, OnceLock, Weak};

use agent_triggers_core::{LOG_TARGET, fault};
use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use pyo3_async_runtimes::TaskLocals;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

mod task;

use super::call::{Call, CancelReason};
use super::doorbell::{Doorbell, Rang, Reader};
use super::queue::{Job, Queue};
use super::registry::Registry;
use super::{Host, report_unreceived};
use crate::process::{ForkSafeDrop, with_python};
use crate::python;
use task::{TaskDone, close_if_unstarted};

/// At most this many jobs run per drain of the queue: few enough that the
/// first of many calls due together starts at once (making each task costs
/// microseconds), enough that the loop's own round per drain is small.
const DRAIN_CHUNK: usize = 32;

/// The asyncio loop (and contextvars) of one `start()`.
pub struct AsyncioHost {
    me: Weak<AsyncioHost>,
    locals: ForkSafeDrop<TaskLocals>,
    registry: Registry,
    queue: Queue<Arc<AsyncioHost>>,
    /// Cancelled once the loop is known to be closed: nothing runs on it again.
    closed: CancellationToken,
    doorbell: OnceLock<Doorbell>,
}

impl AsyncioHost {
    /// The running loop of the calling thread and a copy of the caller's
    /// contextvars. Must be called from a coroutine running on that loop.
    pub fn capture(py: Python<'_>) -> PyResult<Arc<Self>> {
        let locals = TaskLocals::with_running_loop(py)?.copy_context(py)?;
        let this = Arc::new_cyclic(|me| Self {
            me: me.clone(),
            locals: ForkSafeDrop::new(locals),
            registry: Registry::default(),
            queue: Queue::default(),
            closed: CancellationToken::new(),
            doorbell: OnceLock::new(),
        });
        this.install_doorbell(py);
        Ok(this)
    }

    fn this(&self) -> Arc<Self> {
        self.me
            .upgrade()
            .expect("a host method runs on a live host")
    }

    /// Register a socket pair with the loop, if it can watch one.
    #[cfg(unix)]
    fn install_doorbell(&self, py: Python<'_>) {
        let me = self.me.clone();
        // The loop closed (or stopped watching): what is queued, and the
        // tasks launched on it, can never run. Run by the loop's own thread
        // as it closes: at once, not later from a tokio thread at exit.
        let reader = Reader::new(Box::new(move || {
            if let Some(host) = me.upgrade() {
                host.has_closed();
            }
        }));
        let Some((doorbell, fd)) = Doorbell::pair(&reader) else {
            return;
        };
        let drain = DrainJobs(self.me.clone(), Some(reader));
        // Registered inside the captured context: the drain runs in it.
        let registered = Bound::new(py, drain).and_then(|drain| {
            let add_reader = self.event_loop(py).getattr(intern!(py, "add_reader"))?;
            self.locals
                .context(py)
                .call_method1(intern!(py, "run"), (add_reader, fd, drain))
        });
        if registered.is_ok() {
            let _ = self.doorbell.set(doorbell);
        }
    }

    #[cfg(not(unix))]
    fn install_doorbell(&self, _py: Python<'_>) {}

    fn event_loop<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.locals.event_loop(py)
    }

    fn push(&self, job: Job) {
        if !self.queue.push(job, || self.this()) {
            return;
        }
        #[cfg(unix)]
        if let Some(doorbell) = self.doorbell.get() {
            match doorbell.ring() {
                Rang::Woken => {}
                Rang::Closed => self.abandon_queue(),
            }
            return;
        }
        // Attaching may block until the loop thread lets go of the GIL: done
        // on a blocking-pool thread. Once the interpreter is shutting down
        // nothing can run Python any more, and the jobs are dropped.
        let this = self.this();
        let wake = move || {
            let woken = fault::catch(|| with_python(|py| this.schedule_drain(py)).is_some());
            match woken {
                Ok(true) => {}
                Ok(false) => this.abandon_queue(),
                Err(message) => {
                    tracing::error!(target: LOG_TARGET, "waking the event loop panicked: {message}");
                    this.abandon_queue();
                }
            }
        };
        match crate::process::runtime::handle() {
            Ok(handle) => drop(handle.spawn_blocking(wake)),
            Err(_) => wake(),
        }
    }

    fn schedule_drain(&self, py: Python<'_>) {
        if self
            .call_drain(py, intern!(py, "call_soon_threadsafe"))
            .is_err()
        {
            // The loop is closed: nothing queued can run.
            self.abandon_queue();
        }
    }

    /// Ask the loop to run a drain, by `method` (`call_soon` or
    /// `call_soon_threadsafe`), inside the captured context.
    fn call_drain(&self, py: Python<'_>, method: &Bound<'_, PyString>) -> PyResult<()> {
        let drain = Bound::new(py, DrainJobs(self.me.clone(), None))?;
        let kwargs = PyDict::new(py);
        kwargs.set_item(intern!(py, "context"), self.locals.context(py))?;
        self.event_loop(py)
            .call_method(method, (drain,), Some(&kwargs))?;
        Ok(())
    }

    /// Nothing can run on a closed loop: every call with a job queued is
    /// over — one to start never will, one to cancel will never say it ended.
    fn abandon_queue(&self) {
        self.queue.abandon(&self.registry);
    }

    /// The loop is closed: what was started on it or queued for it can never
    /// run, and whoever waits for [`closing`](Host::closing) learns it — last,
    /// so that a stop it sets going finds the calls already let go of.
    fn has_closed(&self) {
        with_python(|py| self.abandon_running(py));
        self.abandon_queue();
        self.closed.cancel();
    }

    /// Every task started on the closed loop that has yet to finish never
    /// will (its done-callback cannot run). Each call is over; a task that
    /// never took its first step — started in the loop's last iteration, as
    /// `asyncio.run()` shuts down — has its coroutine closed, so it is not
    /// reported as "never awaited": none of its code ran, like a call still
    /// queued when the loop closed.
    fn abandon_running(&self, py: Python<'_>) {
        for call in self.registry.unfinished() {
            if call.is_queued() {
                continue;
            }
            // Not under the call's lock: closing runs Python code.
            if let Some(task) = call.take_task() {
                close_if_unstarted(task.bind(py));
            }
            self.registry.finish(&call, None);
        }
    }

    /// On the loop thread: run what is queued, in order, [`DRAIN_CHUNK`]
    /// jobs at a time. If more are queued, the rest is drained again once
    /// the tasks just made have taken their first steps: a thousand calls
    /// due at once start spread evenly, each at the same place in the batch
    /// every time, rather than all after the last task is made. `rung`: run
    /// by the doorbell's reader (its byte is read), not by a drain
    /// scheduled here.
    ///
    /// A Ctrl-C (or `SystemExit`) raised by a call, or by scheduling the
    /// next drain, is returned for the loop to raise — logged as a trigger
    /// failure, it would be lost — once every job queued has run: the tasks
    /// of the batch exist before the loop unwinds, so its shutdown cancels
    /// them rather than finding new ones started after it looked.
    fn drain(&self, py: Python<'_>, rung: bool) -> PyResult<()> {
        #[cfg(unix)]
        if rung && let Some(doorbell) = self.doorbell.get() {
            doorbell.answer();
        }
        let (jobs, keep_alive) = self.queue.take_up_to(DRAIN_CHUNK);
        let mut result = self.run_jobs(py, jobs);
        if keep_alive.is_some() {
            return result;
        }
        if result.is_ok() {
            // After this chunk's tasks' first steps (call_soon is FIFO).
            match self.call_drain(py, intern!(py, "call_soon")) {
                Ok(()) => return Ok(()),
                Err(err) if crate::logging::is_interrupt(py, &err) => result = Err(err),
                Err(_) => {
                    // The loop is closed: nothing queued can run.
                    self.abandon_queue();
                    return Ok(());
                }
            }
        }
        // An interrupt goes up: the rest of the batch first, in one piece.
        let (rest, _keep_alive) = self.queue.take();
        let _later_interrupt = self.run_jobs(py, rest);
        result
    }

    /// Run `jobs` in order; the first interrupt a call raised, if any.
    fn run_jobs(&self, py: Python<'_>, jobs: Vec<Job>) -> PyResult<()> {
        let mut interrupt = None;
        for job in jobs {
            match job {
                Job::Start(call) => {
                    // A panic here would lose the rest of the batch, and
                    // reach asyncio as an error in a callback: caught, it is
                    // the call's failure, logged under the trigger's name.
                    let started = fault::catch(|| {
                        fault::hit(fault::Site::LoopJob);
                        self.start(py, &call)
                    });
                    match started {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => {
                            interrupt.get_or_insert(err);
                        }
                        Err(message) => {
                            let err = crate::logging::internal_error(&message);
                            report_unreceived(py, &self.registry, &call, Err(err));
                        }
                    }
                }
                // Start jobs run before the cancel jobs queued after them.
                Job::Cancel(call, reason) => self.cancel_now(py, &call, reason),
            }
        }
        interrupt.map_or(Ok(()), Err)
    }

    /// Ask the loop `is_running()` or `is_closed()`.
    fn loop_is(&self, state: &Bound<'_, PyString>) -> PyResult<bool> {
        let py = state.py();
        self.event_loop(py).call_method0(state)?.is_truthy()
    }
}

impl Host for AsyncioHost {
    fn registry(&self) -> &Registry {
        &self.registry
    }

    fn submit(&self, call: Arc<Call>) {
        self.push(Job::Start(call));
    }

    /// Call the callable and wrap what it returns in a task. Errors are the
    /// call's outcome, except an interrupt, which is returned.
    fn start(&self, py: Python<'_>, call: &Arc<Call>) -> PyResult<()> {
        let Some(start) = call.begin() else {
            // Cancelled (or abandoned) while queued.
            return Ok(());
        };
        let made = (|| -> PyResult<Bound<'_, PyAny>> {
            let awaitable = start(py)?;
            let bound = python::bound(py)?;
            // Runs on the runner's loop inside the captured context (see
            // `schedule_drain`), so the task gets a copy of that context.
            // Coroutines (nearly every callback) go straight to the loop's
            // C-level create_task; other awaitables to ensure_future.
            let task = if awaitable.is_instance(bound.coroutine_type.bind(py))? {
                self.event_loop(py)
                    .call_method1(intern!(py, "create_task"), (&awaitable,))
                    .inspect_err(|_| {
                        // Never to be awaited: closed, not warned about.
                        let _ = awaitable.call_method0(intern!(py, "close"));
                    })?
            } else {
                bound.ensure_future.bind(py).call1((awaitable,))?
            };
            // Our tasks end only by finishing or by being cancelled; one left
            // pending is one whose loop was closed under a started runner,
            // where asyncio's "Task was destroyed but it is pending!" would
            // blame the user for a task they never made.
            let _ = task.setattr(intern!(py, "_log_destroy_pending"), false);
            Ok(task)
        })();
        let task = match made {
            Ok(task) => task,
            Err(err) if crate::logging::is_interrupt(py, &err) => {
                // The call never started: it ends quietly, and the interrupt
                // goes on to the loop.
                self.registry.finish(call, Some(Ok(())));
                return Err(err);
            }
            Err(err) => {
                report_unreceived(py, &self.registry, call, Err(err));
                return Ok(());
            }
        };
        let cancel_at_once = call.running_as(ForkSafeDrop::new(task.clone().unbind()));
        let on_done = TaskDone(Arc::clone(call), self.me.clone());
        if let Err(err) = task.call_method1(intern!(py, "add_done_callback"), (on_done,)) {
            drop(call.take_task());
            report_unreceived(py, &self.registry, call, Err(err));
            return Ok(());
        }
        if let Some(reason) = cancel_at_once {
            let _ = task.call_method1(intern!(py, "cancel"), (reason.message(),));
        }
        Ok(())
    }

    fn cancel(&self, call: &Arc<Call>, reason: CancelReason) {
        // Never started: it ends here, as a call that did not run.
        self.registry.finish_if_queued(call);
        if !call.is_done() {
            self.push(Job::Cancel(Arc::clone(call), reason));
        }
    }

    fn cancel_now(&self, py: Python<'_>, call: &Arc<Call>, reason: CancelReason) {
        self.registry.finish_if_queued(call);
        // Cloned out first: cancel() may run done-callbacks at once, and
        // those take the call's lock.
        if let Some(task) = call.ask_cancel(py, reason) {
            let _ = task
                .bind(py)
                .call_method1(intern!(py, "cancel"), (reason.message(),));
        }
    }

    fn is_running_here(&self, py: Python<'_>) -> bool {
        pyo3_async_runtimes::get_running_loop(py).is_ok_and(|here| here.is(self.event_loop(py)))
    }

    /// A stop awaited on the calling thread's running loop can wait for this
    /// loop's calls to finish: on this loop itself, or while it runs (in
    /// another thread), or once it is closed (nothing can run on it, and its
    /// calls are over), or when no call of it is under way. A loop stopped but
    /// not closed — it may run again, it may not — would leave the stop
    /// waiting for its calls, perhaps for ever.
    fn ensure_stoppable_from_here(&self, py: Python<'_>) -> PyResult<()> {
        if self.registry.is_empty() || self.is_running_here(py) {
            return Ok(());
        }
        if self.loop_is(intern!(py, "is_running"))? || self.loop_is(intern!(py, "is_closed"))? {
            return Ok(());
        }
        Err(PyRuntimeError::new_err(
            "stop() was awaited on another event loop while the loop that started the \
             runner is stopped (not closed): its triggers cannot finish until that loop \
             runs again. Await stop() on the runner's own loop, or resume or close it first",
        ))
    }

    fn is_known_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    fn closing(&self) -> WaitForCancellationFutureOwned {
        self.closed.clone().cancelled_owned()
    }

    /// A loop closed meanwhile will run nothing queued, and a loop without a
    /// doorbell cannot tell: look.
    fn look_whether_closed(&self) {
        let closed = with_python(|py| self.loop_is(intern!(py, "is_closed")).unwrap_or(true))
            .unwrap_or(true);
        if closed {
            self.has_closed();
        }
    }
}

impl Drop for AsyncioHost {
    fn drop(&mut self) {
        // A task that never finished (its loop closed with nothing to tell
        // us, say) and its call hold each other: let go of it.
        for call in self.registry.unfinished() {
            drop(call.take_task());
        }
        #[cfg(unix)]
        if let Some(doorbell) = self.doorbell.get() {
            with_python(|py| doorbell.unwatch(&self.locals.event_loop(py)));
        }
    }
}

/// The loop-side callable that runs every queued job. Holds the host weakly:
/// the loop's reader registration must not keep it alive. The doorbell's
/// reader callback also owns the doorbell's [`Reader`] (and says so: it drains
/// on a ring, where the byte is to be read).
#[pyclass(frozen)]
struct DrainJobs(Weak<AsyncioHost>, Option<Arc<Reader>>);

#[pymethods]
impl DrainJobs {
    fn __call__(&self, py: Python<'_>) -> PyResult<()> {
        match self.0.upgrade() {
            Some(host) => host.drain(py, self.1.is_some()),
            None => Ok(()),
        }
    }
}
