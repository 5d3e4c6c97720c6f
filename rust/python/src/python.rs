//! The Python classes and functions the Rust code calls, bound once, here.
//!
//! Everything Rust needs from Python — the package's own helpers (its private
//! modules) and a few of the standard library's — is looked up in one place,
//! on first use (by then the package has finished importing: `_core` is
//! imported first, and the helpers import it), and kept for the process.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{IntoPyDict, PyType};

/// The bound objects; see [`bound`].
pub struct Imports {
    /// `agent_triggers._trigger.Trigger`: the base class of class-based triggers.
    pub trigger_class: Py<PyType>,
    /// `agent_triggers._trigger_task.run_trigger`: runs a coroutine trigger.
    pub run_trigger: Py<PyAny>,
    /// `agent_triggers._schedule.run_native`: `trig(ctx)` for a native trigger.
    pub run_native: Py<PyAny>,
    /// `agent_triggers._delivery.send_when_idle`.
    pub send_when_idle: Py<PyAny>,
    /// `agent_triggers._delivery.interrupt_then_send`.
    pub interrupt_then_send: Py<PyAny>,
    /// `agent_triggers._delivery.TriggerDelivery`, and its members
    /// `WAIT_IDLE`, `SEND_IMMEDIATELY` and `INTERRUPT`, in that order.
    pub delivery_enum: Py<PyType>,
    pub delivery_members: [Py<PyAny>; 3],
    /// `agent_triggers._file_change.FileChange` and `FileChangeKind`.
    pub file_change: Py<PyType>,
    pub file_change_kind: Py<PyType>,
    /// `agent_triggers._logging.report_failure`, `report_abandoned` and
    /// `report_paused`.
    pub report_failure: Py<PyAny>,
    pub report_abandoned: Py<PyAny>,
    pub report_paused: Py<PyAny>,
    /// `agent_triggers._awaiting.drive`: awaits a Rust future on any host.
    pub drive: Py<PyAny>,
    /// `agent_triggers._trigger_task.nothing`: what a declined call awaits.
    pub nothing: Py<PyAny>,
    /// `agent_triggers._stats.TriggerStats`.
    pub trigger_stats: Py<PyAny>,
    /// `sniffio.current_async_library`: asyncio or trio (see `host::capture`).
    pub current_async_library: Py<PyAny>,
    /// The standard library's.
    pub partial: Py<PyAny>,
    pub coroutine_type: Py<PyType>,
    pub ensure_future: Py<PyAny>,
    pub coroutine_state: Py<PyAny>,
    pub decimal: Py<PyType>,
    pub real: Py<PyType>,
    pub timedelta: Py<PyType>,
    pub datetime: Py<PyType>,
    pub timezone: Py<PyType>,
    pub fspath: Py<PyAny>,
}

/// The bound objects, looked up on the first call.
pub fn bound(py: Python<'_>) -> PyResult<&Imports> {
    static BOUND: PyOnceLock<Imports> = PyOnceLock::new();
    BOUND.get_or_try_init(py, || {
        let get = |module: &str, name: &str| -> PyResult<Py<PyAny>> {
            Ok(py.import(module)?.getattr(name)?.unbind())
        };
        let class = |module: &str, name: &str| -> PyResult<Py<PyType>> {
            Ok(py
                .import(module)?
                .getattr(name)?
                .cast_into::<PyType>()?
                .unbind())
        };
        let delivery_member = |name: &str| -> PyResult<Py<PyAny>> {
            get("agent_triggers._delivery", "TriggerDelivery")?.getattr(py, name)
        };
        Ok(Imports {
            trigger_class: class("agent_triggers._trigger", "Trigger")?,
            run_trigger: get("agent_triggers._trigger_task", "run_trigger")?,
            run_native: get("agent_triggers._schedule", "run_native")?,
            send_when_idle: get("agent_triggers._delivery", "send_when_idle")?,
            interrupt_then_send: get("agent_triggers._delivery", "interrupt_then_send")?,
            delivery_enum: class("agent_triggers._delivery", "TriggerDelivery")?,
            delivery_members: [
                delivery_member("WAIT_IDLE")?,
                delivery_member("SEND_IMMEDIATELY")?,
                delivery_member("INTERRUPT")?,
            ],
            file_change: class("agent_triggers._file_change", "FileChange")?,
            file_change_kind: class("agent_triggers._file_change", "FileChangeKind")?,
            report_failure: get("agent_triggers._logging", "report_failure")?,
            report_abandoned: get("agent_triggers._logging", "report_abandoned")?,
            report_paused: get("agent_triggers._logging", "report_paused")?,
            drive: get("agent_triggers._awaiting", "drive")?,
            nothing: get("agent_triggers._trigger_task", "nothing")?,
            trigger_stats: get("agent_triggers._stats", "TriggerStats")?,
            current_async_library: get("sniffio", "current_async_library")?,
            partial: get("functools", "partial")?,
            coroutine_type: class("types", "CoroutineType")?,
            ensure_future: get("asyncio", "ensure_future")?,
            coroutine_state: get("inspect", "getcoroutinestate")?,
            decimal: class("decimal", "Decimal")?,
            real: class("numbers", "Real")?,
            timedelta: class("datetime", "timedelta")?,
            datetime: class("datetime", "datetime")?,
            timezone: class("datetime", "timezone")?,
            fspath: get("os", "fspath")?,
        })
    })
}

/// `at` as an aware `datetime` in UTC, to the microsecond.
pub fn utc_datetime(
    py: Python<'_>,
    at: chrono::DateTime<chrono::Utc>,
) -> PyResult<Bound<'_, PyAny>> {
    let bound = bound(py)?;
    let utc = bound.timezone.bind(py).getattr(pyo3::intern!(py, "utc"))?;
    let epoch = bound
        .datetime
        .bind(py)
        .call1((1970, 1, 1, 0, 0, 0, 0, utc))?;
    let since = bound.timedelta.bind(py).call(
        (),
        Some(&[("microseconds", at.timestamp_micros())].into_py_dict(py)?),
    )?;
    epoch.call_method1(pyo3::intern!(py, "__add__"), (since,))
}
