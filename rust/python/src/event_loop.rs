//! Running Python awaitables on the asyncio loop a runner was started on.
//!
//! Rust tasks (trigger bodies, periodic ticks) run on tokio worker threads; the
//! Python code they drive must run as asyncio tasks on the loop that called
//! `start()`, inside the contextvars captured there. [`EventLoop::call`] hands a
//! call to that loop and returns a future that resolves when the resulting
//! asyncio task has finished.
//!
//! Why not `pyo3_async_runtimes::into_future_with_locals`: dropping its future
//! leaves the Python task running, and nothing waits for the task's cleanup.
//! Here dropping a [`PythonCall`] (a tokio abort does exactly that) cancels the
//! asyncio task, and every task holds a [`TaskTrackerToken`] until it has really
//! finished, so `stop()` can wait for `except`/`finally` blocks to have run.
//!
//! Hand-offs are batched: calls and cancellations queue up in Rust and the loop is
//! woken once for everything queued meanwhile, so many triggers due at the same
//! instant cost one loop wake-up. Waking the loop takes no GIL where the loop
//! can watch a socket (`add_reader`, every Unix loop): one byte written to a
//! socket pair — the timer thread never waits on a busy loop. Elsewhere
//! (Windows' proactor loop) the wake-up is a `call_soon_threadsafe`.

use std::collections::HashMap;
use std::future::Future;
#[cfg(unix)]
use std::io::{Read, Write};
#[cfg(unix)]
use std::os::fd::AsRawFd;
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use agent_triggers_core::sync::Mutex;
use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple, PyType};
use pyo3::{PyTraverseError, PyVisit};
use pyo3_async_runtimes::TaskLocals;
use tokio::sync::oneshot;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TaskTrackerToken;

use agent_triggers_core::{Event, LOG_TARGET, TriggerDelivery, fault};

use crate::connection::{PyConnection, ensure_awaitable};
use crate::context::TriggerContext;
use crate::fork_guard::ForkSafeDrop;
use crate::native::event_args;

/// One Python call to make on the loop: `callable(*args)`, then await its result.
///
/// Like every holder of Python references here that a tokio thread may let go
/// of, its references are in [`ForkSafeDrop`]s.
pub struct CallSpec {
    /// What the call is, for error messages: the trigger's name.
    pub name: Arc<str>,
    pub callable: ForkSafeDrop<Py<PyAny>>,
    pub args: CallArgs,
    /// How many calls of this spec have yet to finish (see [`InFlightMark`]):
    /// how a stop that gives up names the triggers it left running.
    in_flight: AtomicUsize,
}

/// The arguments of a [`CallSpec`].
pub enum CallArgs {
    Given(ForkSafeDrop<Py<PyTuple>>),
    /// `(ctx,)`: the trigger's own `TriggerContext`, made on its first call —
    /// an idle trigger (say, hourly) holds no Python objects for it.
    Context {
        connection: Arc<PyConnection>,
        delivery: TriggerDelivery,
        made: OnceLock<ForkSafeDrop<Py<PyTuple>>>,
    },
}

impl CallArgs {
    /// `(ctx,)` for a trigger delivering with `delivery` into `connection`.
    pub fn context(connection: Arc<PyConnection>, delivery: TriggerDelivery) -> Self {
        Self::Context {
            connection,
            delivery,
            made: OnceLock::new(),
        }
    }
}

impl CallSpec {
    pub fn new(name: Arc<str>, callable: Py<PyAny>, args: CallArgs) -> Self {
        Self {
            name,
            callable: ForkSafeDrop::new(callable),
            args,
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Whether a call of this spec has been made and has yet to finish.
    pub fn is_in_flight(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0
    }

    /// The call's arguments (on the loop thread).
    fn args<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        match &self.args {
            CallArgs::Given(args) => Ok(args.bind(py).clone()),
            CallArgs::Context {
                connection,
                delivery,
                made,
            } => {
                if let Some(args) = made.get() {
                    return Ok(args.bind(py).clone());
                }
                let context =
                    Bound::new(py, TriggerContext::with_delivery(py, connection, *delivery))?;
                let args = PyTuple::new(py, [context])?;
                // Only the loop thread makes it (holding the GIL): no race.
                let _ = made.set(ForkSafeDrop::new(args.clone().unbind()));
                Ok(args)
            }
        }
    }

    /// Show the garbage collector the Python objects this call holds.
    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&*self.callable)?;
        match &self.args {
            CallArgs::Given(args) => visit.call(&**args),
            CallArgs::Context { made, .. } => visit.call(made.get().map(|args| &**args)),
        }
    }
}

/// How a Python call ended. A cancellation asked for counts as `Ok`: it is how
/// stop() ends a trigger, not a failure of it (see [`cancelled_by_nobody`]).
pub type CallOutcome = Result<(), PyErr>;

/// The asyncio loop (and contextvars) of one `start()`, and the queue of work
/// waiting to be handed to it.
pub struct EventLoop {
    locals: ForkSafeDrop<TaskLocals>,
    tracker: TaskTracker,
    queue: Mutex<Queue>,
    /// The calls whose asyncio task has yet to finish, by address: what a
    /// loop closed under them must let go of (see [`EventLoop::abandon_tasks`]).
    tasks: Mutex<HashMap<usize, Arc<PendingCall>>>,
    /// Cancelled once the loop is known to be closed: nothing runs on it again.
    closed: CancellationToken,
    /// The GIL-free wake-up, once registered with the loop.
    doorbell: OnceLock<Doorbell>,
}

/// A socket pair whose read end the loop watches: a byte written wakes it.
#[cfg(unix)]
struct Doorbell {
    ring: UnixStream,
    /// Taken (to be unregistered and closed on the loop thread) on drop.
    watched: Mutex<Option<UnixStream>>,
    /// Alive while the loop holds its reader callback: gone once the loop is
    /// closed, which is how a push knows, without the GIL, that nothing will
    /// drain its queue.
    reader: Weak<Reader>,
}

/// Owned by the reader callback the loop holds (see [`Doorbell::reader`]).
struct Reader {
    event_loop: Weak<EventLoop>,
}

impl Drop for Reader {
    /// The loop closed (or stopped watching): what is queued, and the tasks
    /// launched on it, can never run. Abandoning the queue also drops its
    /// keep-alive reference, so a loop closed under a started runner does not
    /// keep it alive forever.
    fn drop(&mut self) {
        // Dropped by the loop's own thread as it closes (the GIL is held): at
        // once, not later from a tokio thread during interpreter exit.
        if let Some(event_loop) = self.event_loop.upgrade() {
            event_loop.has_closed();
        }
    }
}

#[cfg(not(unix))]
struct Doorbell;

#[derive(Default)]
struct Queue {
    jobs: Vec<Job>,
    /// A drain of `jobs` is already scheduled on the loop.
    drain_scheduled: bool,
    /// While jobs wait for a doorbell drain, they keep their loop alive (the
    /// drain holds it only weakly): a runner dropped with a cancellation
    /// queued must still see it run.
    keep_alive: Option<Arc<EventLoop>>,
}

enum Job {
    Launch(Arc<PendingCall>),
    Cancel(Arc<PendingCall>),
}

/// The state one [`PythonCall`] shares with the jobs run on the loop thread.
struct PendingCall {
    spec: Arc<CallSpec>,
    /// The event this call answers: its arguments follow the spec's.
    event: Event,
    /// The asyncio task once launched, until it finishes.
    task: Mutex<Option<ForkSafeDrop<Py<PyAny>>>>,
    /// When the callable was called.
    launched: Mutex<Option<Instant>>,
    finished: Mutex<Option<Finished>>,
    /// Its task was asked to cancel: it is asked once, whoever asks first (a
    /// stop on the loop thread, or the cancel job of a dropped call).
    cancel_asked: AtomicBool,
}

/// Held until the Python side of a call is over: tells whoever waits for it,
/// and releases the tracker token.
struct Finished {
    to: Completion,
    _token: TaskTrackerToken,
    _in_flight: InFlightMark,
}

/// Counts one unfinished call of a spec, from creation until dropped.
struct InFlightMark(Arc<CallSpec>);

impl InFlightMark {
    fn new(spec: &Arc<CallSpec>) -> Self {
        spec.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(spec))
    }
}

impl Drop for InFlightMark {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What [`EventLoop::launch`] calls when a call ends.
pub type OnDone = Box<dyn FnOnce(Option<CallOutcome>, Option<Instant>) + Send>;

/// Who learns how a call ended.
enum Completion {
    /// A [`PythonCall`] future.
    Future(oneshot::Sender<CallOutcome>),
    /// A callback run where the call ends (on the loop thread, but for a loop
    /// that closed first): `None` if the call could not run at all, and when
    /// the callable was called, if it was.
    Callback(OnDone),
}

impl PendingCall {
    /// On the loop thread: cancel the call's task, unless that was asked already.
    fn cancel_task(&self, py: Python<'_>) {
        if self.cancel_asked.swap(true, Ordering::AcqRel) {
            return;
        }
        // Cloned out first: cancel() may run done-callbacks at once, and those
        // take the same lock.
        let task = self.task.lock().as_ref().map(|t| t.clone_ref(py));
        if let Some(task) = task {
            let _ = task.bind(py).call_method0(intern!(py, "cancel"));
        }
    }

    /// Resolve the call. Returns the outcome when nobody is left to receive it
    /// (the Rust side was dropped: the trigger was stopped).
    fn finish(&self, outcome: CallOutcome) -> Option<CallOutcome> {
        let finished = self.finished.lock().take()?;
        match finished.to {
            Completion::Future(tx) => tx.send(outcome).err(),
            Completion::Callback(callback) => {
                callback(Some(outcome), *self.launched.lock());
                None
            }
        }
    }

    /// Resolve a call that could not run (its loop is closed).
    fn abandon(&self) {
        if let Some(finished) = self.finished.lock().take() {
            match finished.to {
                Completion::Future(tx) => {
                    let _ = tx.send(Ok(()));
                }
                Completion::Callback(callback) => callback(None, None),
            }
        }
    }
}

/// A call ready to hand to the loop (see [`EventLoop::prepare`]); dropped
/// unlaunched, it ends as a call that could not run.
pub struct Prepared(Option<InFlight>);

impl Prepared {
    /// Hand the call to the loop.
    pub fn launch(mut self) -> InFlight {
        let call = self.0.take().expect("a prepared call is launched once");
        call.event_loop.push(Job::Launch(Arc::clone(&call.pending)));
        call
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if let Some(call) = self.0.take() {
            call.pending.abandon();
        }
    }
}

/// A call handed to the loop by [`Prepared::launch`].
pub struct InFlight {
    event_loop: Arc<EventLoop>,
    pending: Arc<PendingCall>,
}

impl InFlight {
    /// Whether the call is over.
    pub fn is_finished(&self) -> bool {
        self.pending.finished.lock().is_none()
    }

    /// Cancel the call's asyncio task (stop() still waits for it to finish).
    pub fn cancel(&self) {
        if !self.is_finished() {
            self.event_loop.push(Job::Cancel(Arc::clone(&self.pending)));
        }
    }
}

impl EventLoop {
    /// The running loop of the calling thread and a copy of the caller's
    /// contextvars. Must be called from a coroutine running on that loop.
    pub fn capture(py: Python<'_>) -> PyResult<Arc<Self>> {
        let locals = TaskLocals::with_running_loop(py)?.copy_context(py)?;
        let this = Arc::new(Self {
            locals: ForkSafeDrop::new(locals),
            tracker: TaskTracker::new(),
            queue: Mutex::new(Queue::default()),
            tasks: Mutex::new(HashMap::new()),
            closed: CancellationToken::new(),
            doorbell: OnceLock::new(),
        });
        this.install_doorbell(py);
        Ok(this)
    }

    /// Register a socket pair with the loop, if it can watch one; otherwise
    /// wake-ups go through `call_soon_threadsafe`.
    #[cfg(unix)]
    fn install_doorbell(self: &Arc<Self>, py: Python<'_>) {
        let Ok((ring, watched)) = UnixStream::pair() else {
            return;
        };
        if ring.set_nonblocking(true).is_err() || watched.set_nonblocking(true).is_err() {
            return;
        }
        let reader = Arc::new(Reader {
            event_loop: Arc::downgrade(self),
        });
        let watching = Arc::downgrade(&reader);
        let drain = DrainJobs(Arc::downgrade(self), Some(reader));
        // Registered inside the captured context: the drain runs in it.
        let registered = Bound::new(py, drain).and_then(|drain| {
            let add_reader = self
                .locals
                .event_loop(py)
                .getattr(intern!(py, "add_reader"))?;
            self.locals
                .context(py)
                .call_method1(intern!(py, "run"), (add_reader, watched.as_raw_fd(), drain))
        });
        if registered.is_ok() {
            let _ = self.doorbell.set(Doorbell {
                ring,
                watched: Mutex::new(Some(watched)),
                reader: watching,
            });
        }
    }

    #[cfg(not(unix))]
    fn install_doorbell(self: &Arc<Self>, _py: Python<'_>) {}

    /// Run `spec` on the loop as an asyncio task, with the arguments `event`
    /// adds (see `native::event_args`). The returned future resolves when that
    /// task has finished; dropping it first cancels the task.
    pub fn call(self: &Arc<Self>, spec: Arc<CallSpec>, event: Event) -> PythonCall {
        let (tx, rx) = oneshot::channel();
        let pending = self.start(spec, event, Completion::Future(tx));
        PythonCall {
            event_loop: Arc::clone(self),
            pending,
            rx,
            done: false,
        }
    }

    /// On the loop thread: call `spec` and make the asyncio task it runs in
    /// now, before returning (scheduled on the loop, none of its code run),
    /// rather than at the loop's next wake-up. As [`call`](Self::call)
    /// otherwise. An interrupt raised by the call is returned.
    pub fn call_now(self: &Arc<Self>, py: Python<'_>, spec: Arc<CallSpec>) -> PyResult<PythonCall> {
        let (tx, rx) = oneshot::channel();
        let pending = self.pending(spec, Event::Tick, Completion::Future(tx));
        let call = PythonCall {
            event_loop: Arc::clone(self),
            pending: Arc::clone(&pending),
            rx,
            done: false,
        };
        self.run_launch(py, pending)?;
        Ok(call)
    }

    /// Whether this loop is the calling thread's running loop.
    pub fn is_running_here(&self, py: Python<'_>) -> bool {
        pyo3_async_runtimes::get_running_loop(py)
            .is_ok_and(|here| here.is(self.locals.event_loop(py)))
    }

    /// Prepare a call of `spec` as an asyncio task, to be handed to the loop
    /// by [`Prepared::launch`]; `on_done` runs where it ends (see [`OnDone`]).
    /// Nothing waits in between: no task, no wake-up of another thread.
    ///
    /// The call counts for `stop()` from now on: a stop that begins between
    /// the caller's last check and the launch still waits for it.
    pub fn prepare(
        self: &Arc<Self>,
        spec: Arc<CallSpec>,
        event: Event,
        on_done: OnDone,
    ) -> Prepared {
        Prepared(Some(InFlight {
            event_loop: Arc::clone(self),
            pending: self.pending(spec, event, Completion::Callback(on_done)),
        }))
    }

    fn start(
        self: &Arc<Self>,
        spec: Arc<CallSpec>,
        event: Event,
        to: Completion,
    ) -> Arc<PendingCall> {
        let pending = self.pending(spec, event, to);
        self.push(Job::Launch(Arc::clone(&pending)));
        pending
    }

    fn pending(
        self: &Arc<Self>,
        spec: Arc<CallSpec>,
        event: Event,
        to: Completion,
    ) -> Arc<PendingCall> {
        let finished = Finished {
            to,
            _token: self.tracker.token(),
            _in_flight: InFlightMark::new(&spec),
        };
        Arc::new(PendingCall {
            spec,
            event,
            task: Mutex::new(None),
            launched: Mutex::new(None),
            finished: Mutex::new(Some(finished)),
            cancel_asked: AtomicBool::new(false),
        })
    }

    /// Run `spec` on the loop (see [`call`](Self::call)) and log its failure,
    /// with the traceback, under its name: how a trigger's Python code ends.
    pub async fn call_and_report(self: Arc<Self>, spec: Arc<CallSpec>, event: Event) {
        let call = self.call(Arc::clone(&spec), event);
        report_failure_of(&spec.name, call).await;
    }

    /// Wait until every Python task started through this loop has finished —
    /// cleanup included. Calls made afterwards are not waited for.
    pub async fn wait_for_python_tasks(self: &Arc<Self>) {
        self.tracker.close();
        let done = self.tracker.wait();
        tokio::pin!(done);
        loop {
            tokio::select! {
                () = &mut done => return,
                // A loop closed meanwhile will run nothing queued, and a
                // doorbell cannot tell: look, now and then.
                () = tokio::time::sleep(Duration::from_millis(100)) => {
                    if self.is_closed() {
                        self.has_closed();
                    }
                }
            }
        }
    }

    /// Whether a stop awaited on the calling thread's running loop can wait
    /// for this loop's tasks to finish: on this loop itself, or while it runs
    /// (in another thread), or once it is closed (nothing can run on it, and
    /// its calls are over), or when no Python call of it is under way. A loop
    /// stopped but not closed — it may run again, it may not — would leave
    /// the stop waiting for its calls, perhaps for ever.
    pub fn ensure_stoppable_from_here(&self, py: Python<'_>) -> PyResult<()> {
        if !self.has_python_tasks() || self.is_running_here(py) {
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

    fn is_closed(&self) -> bool {
        crate::interpreter::with_python(|py| self.loop_is(intern!(py, "is_closed")).unwrap_or(true))
            .unwrap_or(true)
    }

    /// Ask the loop `is_running()` or `is_closed()`.
    fn loop_is(&self, state: &Bound<'_, PyString>) -> PyResult<bool> {
        let py = state.py();
        self.locals.event_loop(py).call_method0(state)?.is_truthy()
    }

    /// The loop is closed: what was launched on it or queued for it can never
    /// run, and whoever waits for [`closing`](Self::closing) learns it — last,
    /// so that a stop it sets going finds the tasks already let go of.
    fn has_closed(self: &Arc<Self>) {
        crate::interpreter::with_python(|py| self.abandon_tasks(py));
        self.abandon_queue();
        self.closed.cancel();
    }

    /// Whether the loop is known to be closed (see [`closing`](Self::closing)).
    pub fn is_known_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    /// Resolves once the loop is known to be closed: when it lets go of the
    /// doorbell as it closes (every Unix loop), or when a stop finds it closed.
    pub fn closing(&self) -> WaitForCancellationFutureOwned {
        self.closed.clone().cancelled_owned()
    }

    /// Whether a Python task started through this loop has yet to finish.
    pub fn has_python_tasks(&self) -> bool {
        !self.tracker.is_empty()
    }

    /// How many Python tasks started through this loop have yet to finish.
    pub fn python_task_count(&self) -> usize {
        self.tracker.len()
    }

    fn push(self: &Arc<Self>, job: Job) {
        let schedule = {
            let mut queue = self.queue.lock();
            queue.jobs.push(job);
            if queue.keep_alive.is_none() {
                queue.keep_alive = Some(Arc::clone(self));
            }
            !std::mem::replace(&mut queue.drain_scheduled, true)
        };
        if !schedule {
            return;
        }
        #[cfg(unix)]
        if let Some(doorbell) = self.doorbell.get() {
            if doorbell.reader.strong_count() == 0 {
                // The loop is closed: nothing queued can run.
                self.abandon_queue();
                return;
            }
            match (&doorbell.ring).write(&[1]) {
                // A full socket already holds a wake-up.
                Ok(_) => return,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.abandon_queue();
                    return;
                }
            }
        }
        // Attaching may block until the loop thread lets go of the GIL: done
        // on a blocking-pool thread, so that the timer thread (which pushes)
        // never waits on a busy loop. Once the interpreter is shutting down
        // nothing can run Python any more, and the jobs are dropped.
        let this = Arc::clone(self);
        let wake = move || {
            let woken = fault::catch(|| {
                crate::interpreter::with_python(|py| this.schedule_drain(py)).is_some()
            });
            match woken {
                Ok(true) => {}
                Ok(false) => this.abandon_queue(),
                Err(message) => {
                    tracing::error!(target: LOG_TARGET, "waking the event loop panicked: {message}");
                    this.abandon_queue();
                }
            }
        };
        match crate::runtime::handle() {
            Ok(handle) => drop(handle.spawn_blocking(wake)),
            Err(_) => wake(),
        }
    }

    fn schedule_drain(self: &Arc<Self>, py: Python<'_>) {
        let scheduled = (|| -> PyResult<()> {
            let drain = Bound::new(py, DrainJobs(Arc::downgrade(self), None))?;
            let kwargs = PyDict::new(py);
            kwargs.set_item(intern!(py, "context"), self.locals.context(py))?;
            self.locals.event_loop(py).call_method(
                intern!(py, "call_soon_threadsafe"),
                (drain,),
                Some(&kwargs),
            )?;
            Ok(())
        })();
        if scheduled.is_err() {
            // The loop is closed: nothing queued can run. Dropping the jobs
            // resolves their futures, so no trigger waits forever.
            self.abandon_queue();
        }
    }

    /// Takes `&Arc<Self>`: the keep-alive reference it drops is never the last one.
    fn abandon_queue(self: &Arc<Self>) {
        let (jobs, _keep_alive) = {
            let mut queue = self.queue.lock();
            queue.drain_scheduled = false;
            (std::mem::take(&mut queue.jobs), queue.keep_alive.take())
        };
        // Nothing can run on a closed loop: every call queued is over, launched
        // or not, so stop() does not wait for it. A launched one's task stays
        // in `tasks`, for `abandon_tasks` to close (this may run without the GIL).
        for job in jobs {
            let (Job::Launch(pending) | Job::Cancel(pending)) = job;
            pending.abandon();
        }
    }

    /// The loop is closed: every task launched on it that has yet to finish
    /// never will (its done-callback, which would let go of it, cannot run).
    /// Each call is over; a task that never took its first step — launched
    /// in the loop's last iteration, as `asyncio.run()` shuts down — has its
    /// coroutine closed, so it is not reported as "never awaited": none of
    /// its code ran, like a call still queued when the loop closed.
    fn abandon_tasks(&self, py: Python<'_>) {
        let tasks: Vec<_> = self
            .tasks
            .lock()
            .drain()
            .map(|(_, pending)| pending)
            .collect();
        for pending in tasks {
            // Not under the lock: closing runs Python code.
            let task = pending.task.lock().take();
            if let Some(task) = task {
                close_if_unstarted(task.bind(py));
            }
            pending.abandon();
        }
    }

    /// Let go of `pending`'s task: it finished, or will never tell us it has.
    fn forget_task(&self, pending: &Arc<PendingCall>) -> Option<ForkSafeDrop<Py<PyAny>>> {
        self.tasks.lock().remove(&task_key(pending));
        pending.task.lock().take()
    }

    /// On the loop thread: run everything queued, in order. A Ctrl-C (or
    /// `SystemExit`) raised by a call is returned once every job has run, for
    /// the loop to raise: logged as a trigger failure, it would be lost.
    fn drain(self: &Arc<Self>, py: Python<'_>) -> PyResult<()> {
        #[cfg(unix)]
        if let Some(doorbell) = self.doorbell.get()
            && let Some(watched) = doorbell.watched.lock().as_ref()
        {
            // Empty the socket: the wake-ups it holds are all answered now.
            let mut buffer = [0u8; 256];
            while matches!((&*watched).read(&mut buffer), Ok(n) if n > 0) {}
        }
        let (jobs, _keep_alive) = {
            let mut queue = self.queue.lock();
            queue.drain_scheduled = false;
            (std::mem::take(&mut queue.jobs), queue.keep_alive.take())
        };
        let mut interrupt = None;
        for job in jobs {
            match job {
                Job::Launch(pending) => {
                    // A panic here would lose the rest of the batch, and
                    // reach asyncio as an error in a callback: caught, it is
                    // the call's failure, logged under the trigger's name.
                    let launched = fault::catch(|| {
                        fault::hit(fault::Site::LoopJob);
                        self.run_launch(py, Arc::clone(&pending))
                    });
                    match launched {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => {
                            interrupt.get_or_insert(err);
                        }
                        Err(message) => {
                            let err = crate::logging::internal_error(&message);
                            report_unreceived(py, &pending, Err(err));
                        }
                    }
                }
                // Launch jobs run before the cancel jobs queued after them,
                // so a launched task is always found here.
                Job::Cancel(pending) => pending.cancel_task(py),
            }
        }
        interrupt.map_or(Ok(()), Err)
    }

    /// On the loop thread: call the callable and wrap what it returns in a task.
    /// Errors are the call's outcome, except an interrupt, which is returned.
    fn run_launch(self: &Arc<Self>, py: Python<'_>, pending: Arc<PendingCall>) -> PyResult<()> {
        *pending.launched.lock() = Some(Instant::now());
        let spec = &pending.spec;
        let started = (|| -> PyResult<Bound<'_, PyAny>> {
            static ENSURE_FUTURE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
            static COROUTINE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
            let extra = event_args(py, &pending.event)?;
            let args = spec.args(py)?;
            let awaitable = if extra.is_empty() {
                spec.callable.bind(py).call1(args)?
            } else {
                let args = args.as_sequence().concat(extra.as_sequence())?;
                spec.callable.bind(py).call1(args.to_tuple()?)?
            };
            // Runs on the runner's loop inside the captured context (see
            // `schedule_drain`), so the task gets a copy of that context.
            // Once per tick: coroutines (nearly every callback) go straight to
            // the loop's C-level create_task; other awaitables to ensure_future.
            let task =
                if awaitable.is_instance(COROUTINE.import(py, "types", "CoroutineType")?)? {
                    self.locals
                        .event_loop(py)
                        .call_method1(intern!(py, "create_task"), (&awaitable,))
                        .inspect_err(|_| {
                            // Never to be awaited: closed, not warned about.
                            let _ = awaitable.call_method0(intern!(py, "close"));
                        })?
                } else {
                    ensure_awaitable(&awaitable, &format!("trigger '{}'", spec.name))?;
                    ENSURE_FUTURE
                        .import(py, "asyncio", "ensure_future")?
                        .call1((awaitable,))?
                };
            // Our tasks end only by finishing or by being cancelled; one left
            // pending is one whose loop was closed under a started runner,
            // where asyncio's "Task was destroyed but it is pending!" would
            // blame the user for a task they never made.
            let _ = task.setattr(intern!(py, "_log_destroy_pending"), false);
            Ok(task)
        })();
        let task = match started {
            Ok(task) => task,
            Err(err) if crate::logging::is_interrupt(py, &err) => {
                // The call never started: it ends quietly, and the interrupt
                // goes on to the loop.
                pending.finish(Ok(()));
                return Err(err);
            }
            Err(err) => {
                report_unreceived(py, &pending, Err(err));
                return Ok(());
            }
        };
        *pending.task.lock() = Some(ForkSafeDrop::new(task.clone().unbind()));
        self.tasks
            .lock()
            .insert(task_key(&pending), Arc::clone(&pending));
        let on_done = TaskDone(Arc::clone(&pending), Arc::downgrade(self));
        if let Err(err) = task.call_method1(intern!(py, "add_done_callback"), (on_done,)) {
            self.forget_task(&pending);
            report_unreceived(py, &pending, Err(err));
        }
        Ok(())
    }
}

/// A call's key in [`EventLoop::tasks`]: its address, unique while it lives.
fn task_key(pending: &Arc<PendingCall>) -> usize {
    Arc::as_ptr(pending) as usize
}

/// Close the coroutine of a task that never ran a step (see
/// [`EventLoop::abandon_tasks`]). A task that did run is left to Python: its
/// coroutine is finalized, its `finally` blocks run, when it is collected.
fn close_if_unstarted(task: &Bound<'_, PyAny>) {
    let py = task.py();
    static COROUTINE_STATE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let closed = (|| -> PyResult<()> {
        let coroutine = task.call_method0(intern!(py, "get_coro"))?;
        let state = COROUTINE_STATE
            .import(py, "inspect", "getcoroutinestate")?
            .call1((&coroutine,))?;
        if state.eq(intern!(py, "CORO_CREATED"))? {
            coroutine.call_method0(intern!(py, "close"))?;
        }
        Ok(())
    })();
    // Not a coroutine task (an awaitable's future): nothing to close.
    drop(closed);
}

/// The loop-side callable that runs every queued job. Holds the loop weakly:
/// the loop's reader registration must not keep it alive. The doorbell's
/// reader callback also owns the doorbell's [`Reader`].
#[pyclass(frozen)]
struct DrainJobs(Weak<EventLoop>, #[allow(dead_code)] Option<Arc<Reader>>);

#[pymethods]
impl DrainJobs {
    fn __call__(&self, py: Python<'_>) -> PyResult<()> {
        match self.0.upgrade() {
            Some(event_loop) => event_loop.drain(py),
            None => Ok(()),
        }
    }
}

impl Drop for EventLoop {
    fn drop(&mut self) {
        // A task that never finished (its loop closed with nothing to tell us,
        // say) and its call hold each other: let go of it.
        for (_, pending) in self.tasks.get_mut().drain() {
            pending.task.lock().take();
        }
        #[cfg(unix)]
        self.unwatch_doorbell();
    }
}

#[cfg(unix)]
impl EventLoop {
    /// Unregister the doorbell on the loop thread (the selector is not thread
    /// safe), closing its socket only once the loop no longer watches it.
    fn unwatch_doorbell(&mut self) {
        let Some(watched) = self.doorbell.get().and_then(|d| d.watched.lock().take()) else {
            return;
        };
        crate::interpreter::with_python(|py| {
            let event_loop = self.locals.event_loop(py);
            let scheduled =
                Bound::new(py, Unwatch(Mutex::new(Some(watched)))).and_then(|unwatch| {
                    event_loop.call_method1(intern!(py, "call_soon_threadsafe"), (unwatch,))
                });
            // A closed loop watches nothing: the socket just closes.
            drop(scheduled);
        });
    }
}

/// Run on the loop thread: stop watching a doorbell socket, then close it.
#[cfg(unix)]
#[pyclass(frozen)]
struct Unwatch(Mutex<Option<UnixStream>>);

#[cfg(unix)]
#[pymethods]
impl Unwatch {
    fn __call__(&self, py: Python<'_>) {
        if let Some(watched) = self.0.lock().take() {
            // Running on the loop: it is the running loop.
            if let Ok(event_loop) = pyo3_async_runtimes::get_running_loop(py) {
                let _ =
                    event_loop.call_method1(intern!(py, "remove_reader"), (watched.as_raw_fd(),));
            }
        }
    }
}

/// The done-callback of a launched asyncio task.
#[pyclass(frozen)]
struct TaskDone(Arc<PendingCall>, Weak<EventLoop>);

#[pymethods]
impl TaskDone {
    fn __call__(&self, task: &Bound<'_, PyAny>) {
        let py = task.py();
        // Dropping our reference to the task breaks the cycle task -> callback ->
        // pending call -> task.
        match self.1.upgrade() {
            Some(event_loop) => drop(event_loop.forget_task(&self.0)),
            None => drop(self.0.task.lock().take()),
        }
        let cancelled = task
            .call_method0(intern!(py, "cancelled"))
            .and_then(|c| c.is_truthy())
            .unwrap_or(false);
        let outcome = if cancelled {
            if cancelled_by_nobody(task) {
                // The CancelledError was raised by the code itself (a send
                // that raises it, an await on a future cancelled elsewhere):
                // a failure like any other, or the trigger would end untraced.
                task.call_method0(intern!(py, "result")).map(drop)
            } else {
                Ok(())
            }
        } else {
            match task.call_method0(intern!(py, "exception")) {
                Ok(exc) if exc.is_none() => Ok(()),
                Ok(exc) => {
                    let err = PyErr::from_value(exc);
                    // asyncio has already raised it out of the loop: the
                    // process is ending, the trigger did not fail.
                    if crate::logging::is_interrupt(py, &err) {
                        Ok(())
                    } else {
                        Err(err)
                    }
                }
                Err(err) => Err(err),
            }
        };
        report_unreceived(py, &self.0, outcome);
    }
}

/// Whether a cancelled task ended by a `CancelledError` its own code raised,
/// with no `cancel()` asked of it — by stop(), `asyncio.run()`'s shutdown or
/// anyone. Only Python 3.11+ counts the requests (`Task.cancelling()`); before
/// that every cancellation counts as asked for.
fn cancelled_by_nobody(task: &Bound<'_, PyAny>) -> bool {
    task.call_method0(intern!(task.py(), "cancelling"))
        .and_then(|requests| requests.extract::<usize>())
        .is_ok_and(|requests| requests == 0)
}

/// Finish `pending`; an error nobody is left to receive (say, raised by a
/// `finally` block while the trigger was being stopped) is logged, not lost.
fn report_unreceived(py: Python<'_>, pending: &PendingCall, outcome: CallOutcome) {
    if let Some(Err(err)) = pending.finish(outcome) {
        crate::logging::report_failure(py, &pending.spec.name, err);
    }
}

/// Await `call`; log its failure, with the traceback, under `name`.
pub async fn report_failure_of(name: &str, call: PythonCall) {
    if let Err(err) = call.await {
        crate::interpreter::with_python(|py| crate::logging::report_failure(py, name, err));
    }
}

/// What [`PythonCall::handle`] gives: a way to cancel the call's task now.
pub struct CallHandle(Arc<PendingCall>);

impl CallHandle {
    /// On the loop thread: cancel the call's task at once (if it has yet to
    /// finish); the cancel a dropped [`PythonCall`] queues is then not
    /// repeated, so the task is cancelled once.
    pub fn cancel_now(&self, py: Python<'_>) {
        self.0.cancel_task(py);
    }
}

/// A Python call running on the loop (see [`EventLoop::call`]).
///
/// Resolves with the call's outcome once its asyncio task has finished.
/// Dropping it before then cancels the asyncio task; the runner's stop() still
/// waits for that task to finish.
pub struct PythonCall {
    event_loop: Arc<EventLoop>,
    pending: Arc<PendingCall>,
    rx: oneshot::Receiver<CallOutcome>,
    done: bool,
}

impl PythonCall {
    /// A handle that can cancel the call while someone else awaits it.
    pub fn handle(&self) -> CallHandle {
        CallHandle(Arc::clone(&self.pending))
    }
}

impl Future for PythonCall {
    type Output = CallOutcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<CallOutcome> {
        let outcome = std::task::ready!(Pin::new(&mut self.rx).poll(cx));
        self.done = true;
        // A dropped sender means the loop closed before the call could run.
        Poll::Ready(outcome.unwrap_or(Ok(())))
    }
}

impl Drop for PythonCall {
    fn drop(&mut self) {
        if !self.done {
            // Closed before the cancel is queued: the loop may cancel the task
            // and run its done-callback before this drop returns, and an error
            // from its cleanup must then find nobody to hand it to (and so be
            // logged), not a receiver about to vanish.
            self.rx.close();
            self.event_loop.push(Job::Cancel(Arc::clone(&self.pending)));
        }
    }
}
