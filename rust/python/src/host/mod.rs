//! The host: hands Python calls to the event loop that awaited `start()`,
//! and knows nothing of triggers.
//!
//! A [`Call`] is made by whoever needs Python code run (a schedule's tick, a
//! source's event, a coroutine trigger): it names the call and gives a maker
//! of its awaitable ([`Start`]). The host runs that awaitable as a task of its
//! loop, and keeps every call in its [`Registry`] until the task has really
//! finished, so that a stop can cancel each one by name — the reason recorded
//! on it — and wait for their cleanup. asyncio is the first implementation
//! ([`asyncio::AsyncioHost`]), trio the second ([`trio::TrioHost`]); which
//! one serves a `start()` is the library that awaits it ([`capture`]).

pub mod asyncio;
mod call;
mod doorbell;
mod queue;
mod registry;
pub mod trio;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use pyo3::prelude::*;
use tokio::sync::oneshot;
use tokio_util::sync::WaitForCancellationFutureOwned;

use call::Completion;
pub use call::{Call, CallOutcome, CancelReason, OnDone, Start};
pub use registry::Registry;

/// An event loop that runs calls.
pub trait Host: Send + Sync {
    /// The calls yet to finish.
    fn registry(&self) -> &Registry;
    /// Hand a queued call to the loop; from any thread, without waiting.
    fn submit(&self, call: Arc<Call>);
    /// On the loop thread: start `call` now, its task made (none of its code
    /// run) before this returns. An interrupt raised by the call is returned.
    fn start(&self, py: Python<'_>, call: &Arc<Call>) -> PyResult<()>;
    /// Cancel `call` with `reason`, from any thread: a queued call ends at
    /// once, a running one's task is cancelled on the loop thread.
    fn cancel(&self, call: &Arc<Call>, reason: CancelReason);
    /// As [`cancel`](Self::cancel), on the loop thread, now.
    fn cancel_now(&self, py: Python<'_>, call: &Arc<Call>, reason: CancelReason);
    /// Whether the loop is the calling thread's running loop.
    fn is_running_here(&self, py: Python<'_>) -> bool;
    /// `RuntimeError` if a stop awaited here could wait for ever.
    fn ensure_stoppable_from_here(&self, py: Python<'_>) -> PyResult<()>;
    /// Whether the loop is known to be closed (see [`closing`](Self::closing)).
    fn is_known_closed(&self) -> bool;
    /// Resolves once the loop is known to be closed.
    fn closing(&self) -> WaitForCancellationFutureOwned;
    /// Find out whether the loop closed without telling.
    fn look_whether_closed(&self);
    /// Resolves once the host can start calls, if it cannot yet (trio's
    /// nursery opens in a task of its own); `None`: it can now.
    fn opened(&self) -> Option<WaitForCancellationFutureOwned> {
        None
    }
}

/// The host of the calling task: trio's run if trio awaits `start()` (as
/// sniffio tells, anyio's trio backend included), else the running asyncio
/// loop (any loop, uvloop included). Attached, in a task of that host.
pub fn capture(py: Python<'_>) -> PyResult<Arc<dyn Host>> {
    let library = crate::python::bound(py)?
        .current_async_library
        .bind(py)
        .call0();
    match library {
        Ok(library) if library.eq("trio")? => Ok(trio::TrioHost::capture(py)?),
        // None found: asyncio's capture says what is wrong.
        _ => Ok(asyncio::AsyncioHost::capture(py)?),
    }
}

/// Wait until `host` can start calls (see [`Host::opened`]).
pub async fn opened(host: &dyn Host) -> PyResult<()> {
    let Some(opened) = host.opened() else {
        return Ok(());
    };
    tokio::select! {
        () = opened => Ok(()),
        () = host.closing() => Err(pyo3::exceptions::PyRuntimeError::new_err(
            "the trio run ended before the runner could start",
        )),
    }
}

/// Run a call on `host`; the returned future resolves with its outcome once
/// its task has finished. Dropping the future first cancels the call
/// ([`CancelReason::Dropped`]): the safety net of a runner collected without
/// `stop()`.
pub fn call(host: &Arc<dyn Host>, name: Arc<str>, start: Start) -> PythonCall {
    let (tx, rx) = oneshot::channel();
    let call = host
        .registry()
        .open_call(name, start, Completion::Future(tx));
    if let Some(call) = &call {
        host.submit(Arc::clone(call));
    }
    PythonCall {
        host: Arc::clone(host),
        call,
        rx,
        done: false,
    }
}

/// Run a call on `host`; `on_done` is run where it ends (see [`OnDone`]).
pub fn submit(host: &Arc<dyn Host>, name: Arc<str>, start: Start, on_done: OnDone) {
    if let Some(call) = host
        .registry()
        .open_call(name, start, Completion::Callback(on_done))
    {
        host.submit(call);
    }
}

/// On the loop thread: start a call now (see [`Host::start`]); `on_done` is
/// run where it ends.
pub fn start_now(
    host: &Arc<dyn Host>,
    py: Python<'_>,
    name: Arc<str>,
    start: Start,
    on_done: OnDone,
) -> PyResult<()> {
    match host
        .registry()
        .open_call(name, start, Completion::Callback(on_done))
    {
        Some(call) => host.start(py, &call),
        None => Ok(()),
    }
}

/// Take no new call, and cancel every unfinished one with `reason` (from
/// any thread: queued for the loop).
pub fn close_and_cancel_all(host: &dyn Host, reason: CancelReason) {
    for call in host.registry().close() {
        host.cancel(&call, reason);
    }
}

/// On the loop thread: hold new calls and cancel every unfinished one with
/// `reason`, now. Held, not closed: a stop that fails after this lifts the
/// hold ([`Registry::lift_hold`]) and the triggers go on as they were; one
/// that goes ahead closes. (Not held, a schedule re-armed by a cancelled
/// call could start a new call before the stop closes.)
pub fn cancel_all_now(host: &dyn Host, py: Python<'_>, reason: CancelReason) {
    for call in host.registry().hold() {
        host.cancel_now(py, &call, reason);
    }
}

/// How long a stop waits between looks at whether the loop closed unseen.
const LOOK_EVERY: Duration = Duration::from_millis(100);

/// Wait until no call of `host` is unfinished (cleanup included).
pub async fn wait_until_done(host: &dyn Host) {
    let emptied = host.registry().emptied();
    tokio::pin!(emptied);
    loop {
        tokio::select! {
            () = &mut emptied => return,
            () = tokio::time::sleep(LOOK_EVERY) => host.look_whether_closed(),
        }
    }
}

/// Finish `call`; an error nobody is left to receive (say, raised by a
/// `finally` block while the trigger was being stopped) is logged, not lost.
fn report_unreceived(py: Python<'_>, registry: &Registry, call: &Call, outcome: CallOutcome) {
    if let Some(Err(err)) = registry.finish(call, Some(outcome)) {
        crate::logging::report_failure(py, &call.name, err);
    }
}

/// A Python call running on the loop (see [`call()`]).
pub struct PythonCall {
    host: Arc<dyn Host>,
    /// `None` if the host took no new call (it was stopping).
    call: Option<Arc<Call>>,
    rx: oneshot::Receiver<CallOutcome>,
    done: bool,
}

impl Future for PythonCall {
    type Output = CallOutcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<CallOutcome> {
        let outcome = std::task::ready!(Pin::new(&mut self.rx).poll(cx));
        self.done = true;
        // A dropped sender: the call did not run.
        Poll::Ready(outcome.unwrap_or(Ok(())))
    }
}

impl Drop for PythonCall {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Some(call) = &self.call {
            // Closed before the cancel is asked: the loop may cancel the task
            // and run its done-callback before this drop returns, and an
            // error from its cleanup must then find nobody to hand it to (and
            // so be logged), not a receiver about to vanish.
            self.rx.close();
            self.host.cancel(call, CancelReason::Dropped);
        }
    }
}
