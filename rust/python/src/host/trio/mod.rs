//! The trio host: calls run as trio tasks in a nursery the runner keeps in
//! the trio run that awaited `start()`, inside the contextvars captured there
//! (see `agent_triggers/_trio_host.py`, which holds the trio side).
//!
//! `start()` spawns the serve task (a trio system task: the run's end cancels
//! it) and waits until its nursery is open. Calls are queued from any thread
//! ([`super::queue`]) and a socket is rung, without the GIL, once per batch
//! ([`super::doorbell`]); the serve task, waiting on the socket
//! (`trio.lowlevel.wait_readable`), starts the batch. Each call runs inside a
//! `CancelScope` of its own, kept as the call's task: cancelling a call is
//! cancelling that scope. The serve task ends once the host is gone and
//! every call in its nursery has finished; its end — or the run's — tells
//! the host that nothing can run on it any more.

use std::sync::{Arc, OnceLock, Weak};

use agent_triggers_core::{LOG_TARGET, fault};
#[cfg(unix)]
use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

mod serving;

use super::call::{Call, CancelReason};
use super::doorbell::{Doorbell, Rang, Reader};
use super::queue::{Job, Queue};
use super::registry::Registry;
use super::{Host, report_unreceived};
use crate::process::ForkSafeDrop;
use crate::python;
pub use serving::{CallDone, TrioServing};

/// What the trio host needs of trio and of `agent_triggers._trio_host`,
/// imported when a runner is first started under trio (trio is optional).
struct TrioImports {
    current_trio_token: Py<PyAny>,
    spawn_system_task: Py<PyAny>,
    cancel_scope: Py<PyAny>,
    serve: Py<PyAny>,
    run_call: Py<PyAny>,
    copy_context: Py<PyAny>,
}

fn imports(py: Python<'_>) -> PyResult<&TrioImports> {
    static IMPORTS: PyOnceLock<TrioImports> = PyOnceLock::new();
    IMPORTS.get_or_try_init(py, || {
        let get = |module: &str, name: &str| -> PyResult<Py<PyAny>> {
            Ok(py.import(module)?.getattr(name)?.unbind())
        };
        Ok(TrioImports {
            current_trio_token: get("trio.lowlevel", "current_trio_token")?,
            spawn_system_task: get("trio.lowlevel", "spawn_system_task")?,
            cancel_scope: get("trio", "CancelScope")?,
            serve: get("agent_triggers._trio_host", "serve")?,
            run_call: get("agent_triggers._trio_host", "run_call")?,
            copy_context: get("contextvars", "copy_context")?,
        })
    })
}

/// The trio run (and contextvars) of one `start()`.
pub struct TrioHost {
    me: Weak<TrioHost>,
    /// The run's `TrioToken`: which run is "here".
    token: ForkSafeDrop<Py<PyAny>>,
    context: ForkSafeDrop<Py<PyAny>>,
    /// Set once the serve task has opened it.
    nursery: OnceLock<ForkSafeDrop<Py<PyAny>>>,
    opened: CancellationToken,
    registry: Registry,
    queue: Queue<Arc<TrioHost>>,
    /// Cancelled once the serve task has ended: nothing runs here again.
    closed: CancellationToken,
    #[cfg(unix)]
    doorbell: Doorbell,
}

impl TrioHost {
    /// The trio run of the calling task and a copy of the caller's
    /// contextvars; spawns the serve task. Must be called from a trio task.
    #[cfg(unix)]
    pub fn capture(py: Python<'_>) -> PyResult<Arc<Self>> {
        let imports = imports(py)?;
        let token = imports.current_trio_token.bind(py).call0()?;
        let context = imports.copy_context.bind(py).call0()?;
        let (ring, watched) = std::os::unix::net::UnixStream::pair()
            .and_then(|(ring, watched)| {
                ring.set_nonblocking(true)?;
                watched.set_nonblocking(true)?;
                Ok((ring, watched))
            })
            .map_err(|e| PyRuntimeError::new_err(format!("no socket pair for trio: {e}")))?;
        let mut reader = None;
        let this = Arc::new_cyclic(|me: &Weak<Self>| {
            let me_closing = me.clone();
            // Dropped by the serve task as it ends (or by its collection).
            let made = Reader::new(Box::new(move || {
                if let Some(host) = me_closing.upgrade() {
                    host.has_closed();
                }
            }));
            let doorbell = Doorbell::ringing(ring, &made);
            reader = Some(made);
            Self {
                me: me.clone(),
                token: ForkSafeDrop::new(token.unbind()),
                context: ForkSafeDrop::new(context.unbind()),
                nursery: OnceLock::new(),
                opened: CancellationToken::new(),
                registry: Registry::default(),
                queue: Queue::default(),
                closed: CancellationToken::new(),
                doorbell,
            }
        });
        let serving = TrioServing::new(Arc::downgrade(&this), watched, reader);
        let kwargs = PyDict::new(py);
        kwargs.set_item(intern!(py, "name"), "agent_triggers runner")?;
        imports.spawn_system_task.bind(py).call(
            (imports.serve.bind(py), Bound::new(py, serving)?),
            Some(&kwargs),
        )?;
        Ok(this)
    }

    #[cfg(not(unix))]
    pub fn capture(_py: Python<'_>) -> PyResult<Arc<Self>> {
        Err(pyo3::exceptions::PyNotImplementedError::new_err(
            "running triggers under trio needs a Unix system in this release",
        ))
    }

    fn this(&self) -> Arc<Self> {
        self.me
            .upgrade()
            .expect("a host method runs on a live host")
    }

    fn push(&self, job: Job) {
        if !self.queue.push(job, || self.this()) {
            return;
        }
        #[cfg(unix)]
        if let Rang::Closed = self.doorbell.ring() {
            self.abandon_queue();
        }
    }

    /// Nothing runs once the serve task has ended: every call with a job
    /// queued is over.
    fn abandon_queue(&self) {
        self.queue.abandon(&self.registry);
    }

    /// The serve task has ended: its nursery waited for every call in it,
    /// so what is unfinished never started; whoever waits for
    /// [`closing`](Host::closing) learns it last.
    fn has_closed(&self) {
        for call in self.registry.unfinished() {
            drop(call.take_task());
            self.registry.finish(&call, None);
        }
        self.abandon_queue();
        self.closed.cancel();
    }

    /// On the trio thread (the serve task): run everything queued, in order.
    /// A Ctrl-C cannot reach here (the serve task is protected from it); one
    /// raised by a trigger's own code as its call is made is logged.
    fn drain(&self, py: Python<'_>) {
        let (jobs, _keep_alive) = self.queue.take();
        for job in jobs {
            match job {
                Job::Start(call) => {
                    let started = fault::catch(|| {
                        fault::hit(fault::Site::LoopJob);
                        self.start(py, &call)
                    });
                    match started {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => crate::logging::report_failure(py, &call.name, err),
                        Err(message) => {
                            let err = crate::logging::internal_error(&message);
                            report_unreceived(py, &self.registry, &call, Err(err));
                        }
                    }
                }
                Job::Cancel(call, reason) => {
                    if let Err(message) = fault::catch(|| self.cancel_now(py, &call, reason)) {
                        tracing::error!(target: LOG_TARGET, "cancelling a trio call panicked: {message}");
                    }
                }
            }
        }
    }

    /// Spawn `awaitable` into the nursery, inside the captured context, in
    /// `scope`; `done` hears how it ended.
    fn spawn<'py>(
        &self,
        call: &Arc<Call>,
        awaitable: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = awaitable.py();
        let imports = imports(py)?;
        let nursery = self
            .nursery
            .get()
            .ok_or_else(|| crate::logging::internal_error("the trio nursery is not open"))?;
        let scope = imports.cancel_scope.bind(py).call0()?;
        let done = Bound::new(py, CallDone::new(Arc::clone(call), self.me.clone()))?;
        let kwargs = PyDict::new(py);
        kwargs.set_item(intern!(py, "name"), &*call.name)?;
        let start_soon = python::bound(py)?.partial.bind(py).call(
            (nursery.bind(py).getattr(intern!(py, "start_soon"))?,),
            Some(&kwargs),
        )?;
        // The new task gets a copy of the context it is spawned in.
        self.context.bind(py).call_method1(
            intern!(py, "run"),
            (
                start_soon,
                imports.run_call.bind(py),
                awaitable,
                &scope,
                done,
            ),
        )?;
        Ok(scope)
    }
}

impl Host for TrioHost {
    fn registry(&self) -> &Registry {
        &self.registry
    }

    fn submit(&self, call: Arc<Call>) {
        self.push(Job::Start(call));
    }

    fn start(&self, py: Python<'_>, call: &Arc<Call>) -> PyResult<()> {
        let Some(start) = call.begin() else {
            return Ok(());
        };
        let awaitable = match start(py) {
            Ok(awaitable) => awaitable,
            Err(err) if crate::logging::is_interrupt(py, &err) => {
                self.registry.finish(call, Some(Ok(())));
                return Err(err);
            }
            Err(err) => {
                report_unreceived(py, &self.registry, call, Err(err));
                return Ok(());
            }
        };
        let scope = match self.spawn(call, &awaitable) {
            Ok(scope) => scope,
            Err(err) => {
                // Never to be awaited: closed, not warned about.
                let _ = awaitable.call_method0(intern!(py, "close"));
                report_unreceived(py, &self.registry, call, Err(err));
                return Ok(());
            }
        };
        if let Some(reason) = call.running_as(ForkSafeDrop::new(scope.clone().unbind())) {
            cancel_scope(&scope, reason);
        }
        Ok(())
    }

    fn cancel(&self, call: &Arc<Call>, reason: CancelReason) {
        self.registry.finish_if_queued(call);
        if !call.is_done() {
            self.push(Job::Cancel(Arc::clone(call), reason));
        }
    }

    fn cancel_now(&self, py: Python<'_>, call: &Arc<Call>, reason: CancelReason) {
        self.registry.finish_if_queued(call);
        if let Some(scope) = call.ask_cancel(py, reason) {
            cancel_scope(scope.bind(py), reason);
        }
    }

    fn is_running_here(&self, py: Python<'_>) -> bool {
        imports(py)
            .and_then(|imports| imports.current_trio_token.bind(py).call0())
            .is_ok_and(|here| here.is(self.token.bind(py)))
    }

    /// A trio run is running (in its thread) or over (its calls are over):
    /// a stop can always wait for its calls, from anywhere.
    fn ensure_stoppable_from_here(&self, _py: Python<'_>) -> PyResult<()> {
        Ok(())
    }

    fn is_known_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    fn closing(&self) -> WaitForCancellationFutureOwned {
        self.closed.clone().cancelled_owned()
    }

    /// The serve task always says when it ends (its `finally`), the run's
    /// end included: nothing to look for.
    fn look_whether_closed(&self) {}

    fn opened(&self) -> Option<WaitForCancellationFutureOwned> {
        Some(self.opened.clone().cancelled_owned())
    }
}

/// Cancel a call's scope, saying why (trio 0.31+ takes a reason; before,
/// `cancel()` takes none). A scope that cannot be cancelled would leave a
/// stop waiting for ever: that is logged, never dropped silently.
fn cancel_scope(scope: &Bound<'_, PyAny>, reason: CancelReason) {
    let py = scope.py();
    let cancelled = scope
        .call_method1(intern!(py, "cancel"), (reason.message(),))
        .or_else(|_| scope.call_method0(intern!(py, "cancel")));
    if let Err(err) = cancelled {
        crate::logging::report_failure(py, "the trio host", err);
    }
}

impl Drop for TrioHost {
    fn drop(&mut self) {
        for call in self.registry.unfinished() {
            drop(call.take_task());
        }
        // Wake the serve task: it finds the host gone and ends once its
        // nursery is empty.
        #[cfg(unix)]
        let _ = self.doorbell.ring();
    }
}
