//! Trigger failures and Rust diagnostics, reported through Python's `logging`.
//!
//! Python exceptions from triggers and callbacks go to the `agent_triggers`
//! logger at ERROR with the exception attached (one formatter, in
//! `agent_triggers/_logging.py`, serves the Rust and the Python paths alike).
//! The core's `tracing` events reach the same logger through `pyo3-log`
//! (installed by [`crate::process::init`]).

use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError, PySystemExit};
use pyo3::prelude::*;

use crate::python;

/// Log that trigger `name` failed with `err`. Never raises: a logging failure
/// is reported as unraisable rather than lost, and a Ctrl-C that lands while
/// logging is delivered again (see [`redeliver_interrupt`]).
pub fn report_failure(py: Python<'_>, name: &str, err: PyErr) {
    let reported = python::bound(py)
        .and_then(|bound| bound.report_failure.bind(py).call1((name, err.value(py))));
    if let Err(logging_err) = reported {
        if logging_err.is_instance_of::<PyKeyboardInterrupt>(py) {
            redeliver_interrupt();
        } else {
            logging_err.write_unraisable(py, None);
        }
    }
}

/// Log (WARNING, logger `agent_triggers`) what a stop left running.
pub fn report_abandoned(py: Python<'_>, unfinished: &[String], timeout: std::time::Duration) {
    let reported = python::bound(py).and_then(|bound| {
        bound
            .report_abandoned
            .bind(py)
            .call1((unfinished.to_vec(), timeout.as_secs_f64()))
    });
    if let Err(err) = reported {
        err.write_unraisable(py, None);
    }
}

/// Log (WARNING, logger `agent_triggers`) that trigger `name` paused itself
/// after `failures` failing calls in a row.
pub fn report_paused(py: Python<'_>, name: &str, failures: u32) {
    let reported =
        python::bound(py).and_then(|bound| bound.report_paused.bind(py).call1((name, failures)));
    if let Err(err) = reported {
        err.write_unraisable(py, None);
    }
}

/// The error a caught Rust panic becomes: a bug of ours, said so.
pub fn internal_error(panic_message: &str) -> PyErr {
    PyRuntimeError::new_err(format!(
        "internal error in agent-triggers (a bug; please report it): {panic_message}"
    ))
}

/// Whether `err` must reach the event loop rather than be logged as a trigger
/// failure: asyncio itself re-raises these two out of `run_forever()`.
pub fn is_interrupt(py: Python<'_>, err: &PyErr) -> bool {
    err.is_instance_of::<PyKeyboardInterrupt>(py) || err.is_instance_of::<PySystemExit>(py)
}

/// A Ctrl-C caught where it cannot be raised (in a callback that must not
/// fail): signal it again, so that the main thread's next Python step raises
/// it — or runs the SIGINT handler in force, such as `asyncio.run()`'s.
pub fn redeliver_interrupt() {
    // SAFETY: only sets a flag the interpreter checks; callable with the GIL.
    unsafe { pyo3::ffi::PyErr_SetInterrupt() };
}
