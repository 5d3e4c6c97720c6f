//! `cron`: calls at wall-clock boundaries (docs/contract.md §6).

use std::sync::Arc;

use agent_triggers_core::CronSchedule;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyString;

use super::native::NativeTrigger;
use crate::arguments::{str_argument, type_name};
use crate::run::source::SourceSpec;

/// A cron-scheduled trigger made by ``cron()``.
#[pyclass(frozen, extends = NativeTrigger, module = "agent_triggers._core")]
pub struct CronTrigger {
    expression: String,
    tz: Option<String>,
}

#[pymethods]
impl CronTrigger {
    /// The cron expression, as given.
    #[getter]
    fn expression(&self) -> &str {
        &self.expression
    }

    /// The IANA time zone its fields are read in (``None``: local time).
    #[getter]
    fn tz(&self) -> Option<&str> {
        self.tz.as_deref()
    }
}

/// The time zone argument as an IANA name: a ``str``, a ``zoneinfo.ZoneInfo``
/// (its ``key``), or ``datetime.timezone.utc`` (or another zero offset).
fn zone_name(tz: &Bound<'_, PyAny>) -> PyResult<String> {
    let py = tz.py();
    if tz.is_instance(crate::python::bound(py)?.timezone.bind(py))? {
        return fixed_offset_zone(tz);
    }
    let key = if tz.is_instance_of::<PyString>() {
        tz.clone()
    } else {
        match tz.getattr_opt("key")? {
            Some(key) if key.is_instance_of::<PyString>() => key,
            _ => {
                return Err(PyTypeError::new_err(format!(
                    "tz must be an IANA time zone name (str) or a zoneinfo.ZoneInfo, not {}",
                    type_name(tz)
                )));
            }
        }
    };
    str_argument(&key, "tz")
}

/// A ``datetime.timezone``: UTC if its offset is zero. The schedule knows
/// only IANA zones, so another offset is a ``ValueError`` that names the
/// equivalent ``Etc/GMT`` zone when there is one (whose sign is reversed).
fn fixed_offset_zone(tz: &Bound<'_, PyAny>) -> PyResult<String> {
    let seconds: f64 = tz
        .call_method1("utcoffset", (tz.py().None(),))?
        .call_method0("total_seconds")?
        .extract()?;
    if seconds == 0.0 {
        return Ok("UTC".to_owned());
    }
    let hours = seconds / 3600.0;
    let instead = if hours.fract() == 0.0 && (-12.0..=14.0).contains(&hours) {
        format!("\"Etc/GMT{:+}\"", -(hours as i64))
    } else {
        "the IANA name of the place".to_owned()
    };
    Err(PyValueError::new_err(format!(
        "tz must be an IANA time zone or UTC: the fixed offset {tz} is not supported; \
         use {instead}"
    )))
}

/// cron(expression, callback, *, tz=None, name=None, delivery=TriggerDelivery.WAIT_IDLE, key=None, max_consecutive_failures=None)
/// --
///
/// A trigger that calls ``await callback(ctx)`` at each time ``expression``
/// matches, read in the time zone ``tz``.
///
/// - ``expression``: 5 fields (``minute hour day month weekday``) or 6 (a
///   leading seconds field), with ranges, steps, names, ``L``, ``#``, ``W``
///   and aliases such as ``@hourly`` (the ``croner`` crate's syntax).
///   ``ValueError`` with the parser's reason if it is invalid, or if it can
///   never match (``"0 0 30 2 *"``).
/// - ``tz``: an IANA name (``"Europe/Paris"``), a ``zoneinfo.ZoneInfo`` or
///   ``datetime.timezone.utc``;
///   ``None`` (the default) is the machine's local time. ``ValueError`` if unknown,
///   or a ``datetime.timezone`` with another offset (``"Etc/GMT-5"`` is UTC+05:00).
/// - ``name`` defaults to ``f"cron_{expression}"``.
/// - ``key``: under a runner with a ``fleet``, each occurrence runs on one
///   replica only.
///
/// Calls come at wall-clock boundaries (the clock is re-read at least every
/// minute, so a clock change is followed). DST follows ``croner``: a fixed-time
/// job that falls in a spring-forward gap runs right after the gap; interval
/// and wildcard jobs skip the missing times; in a fall-back overlap a
/// fixed-time job runs once. A call that overruns is never overlapped:
/// occurrences passed meanwhile are skipped. A callback that raises is logged
/// and the schedule goes on. ``trig(ctx)`` runs it on its own, as ``every``.
#[pyfunction]
#[allow(clippy::too_many_arguments)] // the contract's keywords, each checked
#[pyo3(signature = (expression, callback, *, tz = None, name = None, delivery = None, key = None, max_consecutive_failures = None))]
pub fn cron(
    py: Python<'_>,
    expression: &Bound<'_, PyAny>,
    callback: &Bound<'_, PyAny>,
    tz: Option<&Bound<'_, PyAny>>,
    name: Option<&Bound<'_, PyAny>>,
    delivery: Option<&Bound<'_, PyAny>>,
    key: Option<&Bound<'_, PyAny>>,
    max_consecutive_failures: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<CronTrigger>> {
    let expression = str_argument(expression, "expression")?;
    let tz = tz.filter(|tz| !tz.is_none()).map(zone_name).transpose()?;
    let schedule = CronSchedule::parse(&expression, tz.as_deref())
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    let base = NativeTrigger::new(
        || format!("cron_{expression}"),
        callback,
        name,
        delivery,
        SourceSpec::Cron(Arc::new(schedule)),
    )?
    .keyed(key)?
    .failure_limit(max_consecutive_failures)?;
    Py::new(
        py,
        PyClassInitializer::from(base).add_subclass(CronTrigger { expression, tz }),
    )
}
