//! `every`: the native periodic trigger (docs/contract.md §5).

use agent_triggers_core::fleet::grid::MIN_PERIOD;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::native::NativeTrigger;
use crate::arguments::parse_seconds;
use crate::run::source::SourceSpec;

/// A periodic trigger made by ``every()``. Its period is its source's (no
/// copy here: every idle trigger would carry it).
#[pyclass(frozen, extends = NativeTrigger, module = "agent_triggers._core")]
pub struct PeriodicTrigger;

#[pymethods]
impl PeriodicTrigger {
    /// Seconds between calls, as a ``float``.
    #[getter]
    fn interval(slf: &Bound<'_, Self>) -> f64 {
        match slf.as_super().get().source() {
            SourceSpec::Every(period) => period.as_secs_f64(),
            _ => unreachable!("every() makes an Every source"),
        }
    }
}

/// every(interval, callback, *, name=None, delivery=TriggerDelivery.WAIT_IDLE, key=None, max_consecutive_failures=None)
/// --
///
/// A trigger that calls ``await callback(ctx)`` every ``interval`` seconds.
///
/// - ``interval``: seconds as ``int``/``float`` (or any real number), or a
///   ``datetime.timedelta``. ``TypeError`` if it is not a number (``str``,
///   ``None``, ``bool``, ...); ``ValueError`` if it is not finite, ``<= 0``,
///   under a nanosecond or over about 100 years.
/// - ``callback``: async callable taking the context; ``TypeError`` if not callable.
/// - ``name``: defaults to ``f"every_{interval}s"`` (``every(300, cb).name ==
///   "every_300s"``); also the object's ``__name__``.
/// - ``delivery``: how ``ctx.deliver()`` sends from the callback.
/// - ``key``: under a runner with a ``fleet``, each tick runs on one replica
///   only, on a grid all replicas share: Unix-epoch instants ``phase +
///   k*interval`` (``phase`` derived from the key), so the first call comes
///   within one interval of start. ``ValueError`` if the interval is under
///   1 ms. Without a fleet the key changes nothing.
/// - ``max_consecutive_failures``: after that many failing calls in a row the
///   trigger pauses itself (a WARNING names it); ``runner.resume()`` resets
///   the count. ``None`` (the default): never.
///
/// The first call comes one interval after start, not at start. Calls are
/// fixed-rate: call ``k`` is due at ``t0 + k*interval`` whatever the callback's
/// duration, so the schedule does not drift. A callback that overruns is never
/// overlapped: the overdue tick runs as soon as it returns and the other missed
/// ticks are skipped, not burst. A callback that raises is logged (logger
/// ``agent_triggers``, ERROR, with the traceback) and the schedule goes on.
///
/// The timing is kept by the Rust runtime; under a ``TriggerRunner`` each call
/// runs as a task of the runner's event loop. The object is itself an async
/// callable: ``trig(ctx)`` returns a coroutine that runs the schedule until
/// cancelled, handing ``ctx`` (any object) to the callback as is — so it also
/// runs under other runners.
#[pyfunction]
#[pyo3(signature = (interval, callback, *, name = None, delivery = None, key = None, max_consecutive_failures = None))]
pub fn every(
    py: Python<'_>,
    interval: &Bound<'_, PyAny>,
    callback: &Bound<'_, PyAny>,
    name: Option<&Bound<'_, PyAny>>,
    delivery: Option<&Bound<'_, PyAny>>,
    key: Option<&Bound<'_, PyAny>>,
    max_consecutive_failures: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<PeriodicTrigger>> {
    let (period, spelled) = parse_seconds(interval, "interval", false)?;
    let base = NativeTrigger::new(
        || format!("every_{spelled}s"),
        callback,
        name,
        delivery,
        SourceSpec::Every(period),
    )?
    .keyed(key)?
    .failure_limit(max_consecutive_failures)?;
    if base.key().is_some() && period < MIN_PERIOD {
        return Err(PyValueError::new_err(format!(
            "a keyed interval must be at least 0.001 seconds (ticks are named by the \
             millisecond in Redis), not {spelled}"
        )));
    }
    Py::new(
        py,
        PyClassInitializer::from(base).add_subclass(PeriodicTrigger),
    )
}
