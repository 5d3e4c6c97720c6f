//! Trigger failures and Rust diagnostics, reported through Python's `logging`.
//!
//! Python exceptions from triggers and callbacks go to the `agent_triggers`
//! logger at ERROR with the exception attached (one formatter, in
//! `agent_triggers/_logging.py`, serves the Rust and the Python paths alike).
//! The core's `tracing` events reach the same logger through `pyo3-log`.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// Log that trigger `name` failed with `err`. Never raises: a logging failure
/// is reported as unraisable rather than lost.
pub fn report_failure(py: Python<'_>, name: &str, err: PyErr) {
    static REPORT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let reported = REPORT
        .import(py, "agent_triggers._logging", "report_failure")
        .and_then(|report| report.call1((name, err.value(py))));
    if let Err(logging_err) = reported {
        logging_err.write_unraisable(py, None);
    }
}

/// Route the core's `tracing` events (emitted as `log` records) to Python's
/// `logging`, under the logger named by their target (`agent_triggers`).
pub fn install_bridge() {
    // Another copy of this module in the process may have installed it first.
    let _ = pyo3_log::try_init();
}
