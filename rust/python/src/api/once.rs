//! `after` and `at`: one-shot triggers (docs/contract.md §6).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;

use super::native::NativeTrigger;
use crate::arguments::{parse_seconds, type_name};
use crate::run::source::{OnceSpec, SourceSpec};

/// A one-shot trigger made by ``after()`` or ``at()``: one call, then it ends.
#[pyclass(frozen, extends = NativeTrigger, module = "agent_triggers._core")]
pub struct OneShotTrigger {}

fn one_shot(py: Python<'_>, base: PyResult<NativeTrigger>) -> PyResult<Py<OneShotTrigger>> {
    Py::new(
        py,
        PyClassInitializer::from(base?).add_subclass(OneShotTrigger {}),
    )
}

/// after(delay, callback, *, name=None, delivery=TriggerDelivery.WAIT_IDLE, key=None, max_consecutive_failures=None)
/// --
///
/// A trigger that calls ``await callback(ctx)`` once, ``delay`` seconds after
/// it starts (``int``/``float``/``timedelta``; ``0`` is at once), then ends.
/// ``ValueError`` for a negative or non-finite delay, ``TypeError`` for a
/// non-number. ``name`` defaults to ``f"after_{delay}s"``. ``key`` is refused
/// (``ValueError``): a delay from each replica's own start is no instant a
/// fleet shares.
#[pyfunction]
#[pyo3(signature = (delay, callback, *, name = None, delivery = None, key = None, max_consecutive_failures = None))]
pub fn after(
    py: Python<'_>,
    delay: &Bound<'_, PyAny>,
    callback: &Bound<'_, PyAny>,
    name: Option<&Bound<'_, PyAny>>,
    delivery: Option<&Bound<'_, PyAny>>,
    key: Option<&Bound<'_, PyAny>>,
    max_consecutive_failures: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<OneShotTrigger>> {
    NativeTrigger::refuse_key(key, "after")?;
    let (delay, spelled) = parse_seconds(delay, "delay", true)?;
    one_shot(
        py,
        NativeTrigger::new(
            || format!("after_{spelled}s"),
            callback,
            name,
            delivery,
            SourceSpec::Once(OnceSpec::After(delay)),
        )
        .and_then(|base| base.failure_limit(max_consecutive_failures)),
    )
}

/// at(when, callback, *, name=None, delivery=TriggerDelivery.WAIT_IDLE, key=None, max_consecutive_failures=None)
/// --
///
/// A trigger that calls ``await callback(ctx)`` once, at the wall-clock time
/// ``when`` — an aware ``datetime.datetime`` (``ValueError`` if naive,
/// ``TypeError`` if not a datetime) — then ends. A time already past fires as
/// soon as the trigger starts. The call happens once per trigger object: a
/// runner restarted after it does not call it again (``after`` instead counts
/// from each start). ``name`` defaults to ``f"at_{when.isoformat()}"``.
/// ``key``: under a runner with a ``fleet``, one replica only makes the call.
#[pyfunction]
#[pyo3(signature = (when, callback, *, name = None, delivery = None, key = None, max_consecutive_failures = None))]
pub fn at(
    py: Python<'_>,
    when: &Bound<'_, PyAny>,
    callback: &Bound<'_, PyAny>,
    name: Option<&Bound<'_, PyAny>>,
    delivery: Option<&Bound<'_, PyAny>>,
    key: Option<&Bound<'_, PyAny>>,
    max_consecutive_failures: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<OneShotTrigger>> {
    if !when.is_instance(crate::python::bound(py)?.datetime.bind(py))? {
        return Err(PyTypeError::new_err(format!(
            "when must be a datetime.datetime, not {}",
            type_name(when)
        )));
    }
    if when.call_method0(intern!(py, "utcoffset"))?.is_none() {
        return Err(PyValueError::new_err(
            "when must be an aware datetime (with tzinfo, e.g. datetime.now(timezone.utc)); \
             a naive datetime has no defined instant",
        ));
    }
    let timestamp: f64 = when.call_method0(intern!(py, "timestamp"))?.extract()?;
    let micros = (timestamp * 1e6).round() as i64;
    let instant = DateTime::<Utc>::from_timestamp_micros(micros)
        .ok_or_else(|| PyValueError::new_err(format!("when is out of range: {when}")))?;
    let iso: String = when.call_method0(intern!(py, "isoformat"))?.extract()?;
    one_shot(
        py,
        NativeTrigger::new(
            || format!("at_{iso}"),
            callback,
            name,
            delivery,
            SourceSpec::Once(OnceSpec::At(instant, Arc::default())),
        )
        .and_then(|base| base.keyed(key))
        .and_then(|base| base.failure_limit(max_consecutive_failures)),
    )
}
