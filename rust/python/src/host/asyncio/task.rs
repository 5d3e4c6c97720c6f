//! An asyncio task of a call: how it ended, and letting go of one that never ran.

use std::sync::{Arc, Weak};

use pyo3::intern;
use pyo3::prelude::*;

use super::AsyncioHost;
use crate::host::call::{Call, CallOutcome};
use crate::host::report_unreceived;
use crate::python;

/// Close the coroutine of a task that never ran a step (see
/// [`AsyncioHost::abandon_running`]). A task that did run is left to Python:
/// its coroutine is finalized, its `finally` blocks run, when it is collected.
pub(super) fn close_if_unstarted(task: &Bound<'_, PyAny>) {
    let py = task.py();
    let closed = (|| -> PyResult<()> {
        let coroutine = task.call_method0(intern!(py, "get_coro"))?;
        let state = python::bound(py)?
            .coroutine_state
            .bind(py)
            .call1((&coroutine,))?;
        if state.eq(intern!(py, "CORO_CREATED"))? {
            coroutine.call_method0(intern!(py, "close"))?;
        }
        Ok(())
    })();
    // Not a coroutine task (an awaitable's future): nothing to close.
    drop(closed);
}

/// The done-callback of a call's asyncio task.
#[pyclass(frozen)]
pub(super) struct TaskDone(pub(super) Arc<Call>, pub(super) Weak<AsyncioHost>);

#[pymethods]
impl TaskDone {
    fn __call__(&self, task: &Bound<'_, PyAny>) {
        let py = task.py();
        // Dropping our reference to the task breaks the cycle task ->
        // callback -> call -> task.
        drop(self.0.take_task());
        let cancelled = task
            .call_method0(intern!(py, "cancelled"))
            .and_then(|c| c.is_truthy())
            .unwrap_or(false);
        let outcome: CallOutcome = if cancelled {
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
        match self.1.upgrade() {
            Some(host) => report_unreceived(py, &host.registry, &self.0, outcome),
            None => {
                if let Some(Err(err)) = crate::host::registry::finish_orphan(&self.0, outcome) {
                    crate::logging::report_failure(py, &self.0.name, err);
                }
            }
        }
    }
}

/// Whether a cancelled task ended by a `CancelledError` its own code raised,
/// with no `cancel()` asked of it — by anyone: `asyncio.run()`'s shutdown,
/// say. Only Python 3.11+ counts the requests (`Task.cancelling()`); before
/// that every cancellation counts as asked for.
fn cancelled_by_nobody(task: &Bound<'_, PyAny>) -> bool {
    task.call_method0(intern!(task.py(), "cancelling"))
        .and_then(|requests| requests.extract::<usize>())
        .is_ok_and(|requests| requests == 0)
}
