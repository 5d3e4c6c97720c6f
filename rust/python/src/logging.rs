//! Trigger failures and Rust diagnostics, reported through Python's `logging`.
//!
//! Python exceptions from triggers and callbacks go to the `agent_triggers`
//! logger at ERROR with the exception attached (one formatter, in
//! `agent_triggers/_logging.py`, serves the Rust and the Python paths alike).
//! The core's `tracing` events reach the same logger through `pyo3-log`.

use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError, PySystemExit};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// Log that trigger `name` failed with `err`. Never raises: a logging failure
/// is reported as unraisable rather than lost, and a Ctrl-C that lands while
/// logging is delivered again (see [`redeliver_interrupt`]).
pub fn report_failure(py: Python<'_>, name: &str, err: PyErr) {
    static REPORT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let reported = REPORT
        .import(py, "agent_triggers._logging", "report_failure")
        .and_then(|report| report.call1((name, err.value(py))));
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
    static REPORT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let reported = REPORT
        .import(py, "agent_triggers._logging", "report_abandoned")
        .and_then(|report| report.call1((unfinished.to_vec(), timeout.as_secs_f64())));
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

/// Route the core's `tracing` events (emitted as `log` records) to Python's
/// `logging`, under the logger named by their target (`agent_triggers`),
/// through the interpreter gate.
pub fn install_bridge(py: Python<'_>) -> PyResult<()> {
    let logger = pyo3_log::Logger::new(py, pyo3_log::Caching::LoggersAndLevels)?;
    // Another copy of this module in the process may have installed one first.
    if log::set_boxed_logger(Box::new(crate::interpreter::GatedLogger(logger))).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
    Ok(())
}

/// `_inject_panic(site)`: make the next pass through `site` panic, to test
/// that it is survived (see `agent_triggers_core::fault`); `"now"` panics in
/// this very call, which Python sees as pyo3's `PanicException`. Private: for
/// the test suite only.
#[pyfunction]
pub fn _inject_panic(site: &str) -> PyResult<()> {
    use agent_triggers_core::fault::{self, Site};
    if site == "now" {
        panic!("panic injected in a call, for a test");
    }
    let site = Site::from_name(site).ok_or_else(|| {
        pyo3::exceptions::PyValueError::new_err(format!("no panic site named {site:?}"))
    })?;
    fault::arm(site);
    Ok(())
}
