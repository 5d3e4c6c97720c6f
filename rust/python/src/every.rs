//! `every`: the native periodic trigger (API.md §5).

use std::sync::Arc;
use std::time::Duration;

use agent_triggers_core::{Ticker as CoreTicker, TriggerDelivery};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyFloat, PyInt, PyString};
use pyo3::{PyTraverseError, PyVisit};
use tokio_util::task::AbortOnDropHandle;

use crate::delivery;
use crate::interpreter::WakeThroughGate;
use crate::runtime;

/// The longest interval accepted: about 100 years. Longer ones are surely a
/// mistake, and would overflow the timer's clock arithmetic.
const MAX_INTERVAL_SECONDS: f64 = 3.2e9;

/// A periodic trigger made by ``every()``: calls ``callback(ctx)`` every
/// ``interval`` seconds.
#[pyclass(frozen, weakref, module = "agent_triggers._core")]
pub struct PeriodicTrigger {
    period: Duration,
    name: String,
    delivery: TriggerDelivery,
    callback: Py<PyAny>,
}

impl PeriodicTrigger {
    pub fn period(&self) -> Duration {
        self.period
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn delivery(&self) -> TriggerDelivery {
        self.delivery
    }

    pub fn callback(&self) -> &Py<PyAny> {
        &self.callback
    }
}

#[pymethods]
impl PeriodicTrigger {
    /// The trigger's name (``every_<interval>s`` unless given).
    #[getter(name)]
    fn py_name(&self) -> &str {
        &self.name
    }

    /// The trigger's name, as for a function.
    #[getter(__name__)]
    fn dunder_name(&self) -> &str {
        &self.name
    }

    /// Seconds between calls, as a ``float``.
    #[getter]
    fn interval(&self) -> f64 {
        self.period.as_secs_f64()
    }

    /// How ``ctx.deliver()`` sends from this trigger's callback.
    #[getter(delivery)]
    fn py_delivery<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        delivery::to_python(py, self.delivery)
    }

    /// The async callable run on each tick.
    #[getter(callback)]
    fn py_callback(&self, py: Python<'_>) -> Py<PyAny> {
        self.callback.clone_ref(py)
    }

    /// ``trig(ctx)``: a coroutine running the schedule until cancelled, calling
    /// ``callback(ctx)`` on each tick with ``ctx`` as given (any object).
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        ctx: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        static RUN_EVERY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        RUN_EVERY
            .import(slf.py(), "agent_triggers._schedule", "run_every")?
            .call1((slf, ctx))
    }

    /// A new fixed-rate schedule for this trigger, starting now. Used by
    /// ``trig(ctx)``; a runner keeps the schedule in Rust instead.
    fn _ticker(&self) -> PyResult<Ticker> {
        let handle = runtime::handle()?;
        let ticker = {
            let _runtime = handle.enter();
            CoreTicker::new(self.period)
        };
        Ok(Ticker {
            ticker: Arc::new(tokio::sync::Mutex::new(ticker)),
            handle,
        })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "<every {:?}: {} s, callback={}>",
            self.name,
            self.period.as_secs_f64(),
            self.callback.bind(py).repr()?
        ))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.callback)
    }
}

/// A fixed-rate schedule kept by the Rust runtime (see ``PeriodicTrigger._ticker``).
#[pyclass(frozen, weakref, module = "agent_triggers._core")]
pub struct Ticker {
    ticker: Arc<tokio::sync::Mutex<CoreTicker>>,
    handle: tokio::runtime::Handle,
}

#[pymethods]
impl Ticker {
    /// Wait for the next due tick. Cancelling the wait gives the tick back.
    async fn tick(&self) -> PyResult<()> {
        let ticker = Arc::clone(&self.ticker);
        let wait = AbortOnDropHandle::new(self.handle.spawn(async move {
            ticker.lock().await.tick().await;
        }));
        WakeThroughGate(wait)
            .await
            .map_err(|e| PyRuntimeError::new_err(format!("the schedule failed: {e}")))
    }
}

/// Parse an interval: seconds as int/float (or any real number), or a
/// `timedelta`. Returns the duration and how the default name spells it.
fn parse_interval(interval: &Bound<'_, PyAny>) -> PyResult<(Duration, String)> {
    static TIMEDELTA: PyOnceLock<Py<pyo3::types::PyType>> = PyOnceLock::new();
    static REAL: PyOnceLock<Py<pyo3::types::PyType>> = PyOnceLock::new();
    static DECIMAL: PyOnceLock<Py<pyo3::types::PyType>> = PyOnceLock::new();
    let py = interval.py();
    let type_name = || -> String {
        interval
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default()
    };
    let not_a_number = || {
        PyTypeError::new_err(format!(
            "interval must be a number of seconds (int or float) or a datetime.timedelta, not {}",
            type_name()
        ))
    };
    let too_large = || {
        PyValueError::new_err(format!(
            "interval must be at most {MAX_INTERVAL_SECONDS:e} seconds, got {interval}"
        ))
    };
    if interval.is_instance_of::<PyBool>() || interval.is_instance_of::<PyString>() {
        return Err(not_a_number());
    }
    let is_plain_number =
        interval.is_instance_of::<PyInt>() || interval.is_instance_of::<PyFloat>();
    let seconds: f64 = if is_plain_number
        || interval.is_instance(REAL.import(py, "numbers", "Real")?)?
        || interval.is_instance(DECIMAL.import(py, "decimal", "Decimal")?)?
    {
        // float() of a huge int overflows: that is a value problem, not a type one.
        match interval.call_method0(intern!(py, "__float__")) {
            Ok(value) => value.extract()?,
            Err(err) if err.is_instance_of::<pyo3::exceptions::PyOverflowError>(py) => {
                return Err(too_large());
            }
            Err(err) => return Err(err),
        }
    } else if interval.is_instance(TIMEDELTA.import(py, "datetime", "timedelta")?)? {
        interval
            .call_method0(intern!(py, "total_seconds"))?
            .extract()?
    } else {
        return Err(not_a_number());
    };
    if !seconds.is_finite() {
        return Err(PyValueError::new_err(format!(
            "interval must be a finite number of seconds, got {seconds}"
        )));
    }
    if seconds <= 0.0 {
        return Err(PyValueError::new_err(format!(
            "interval must be positive, got {}",
            interval.str()?
        )));
    }
    if seconds > MAX_INTERVAL_SECONDS {
        return Err(too_large());
    }
    let period = Duration::from_secs_f64(seconds);
    if period.is_zero() {
        return Err(PyValueError::new_err(format!(
            "interval must be at least one nanosecond, got {seconds:e} seconds"
        )));
    }
    // `every(300, cb).name == "every_300s"`: the number as the user wrote it;
    // a timedelta by its seconds (whole ones without a fraction).
    let spelled = if is_plain_number {
        interval.str()?.to_string()
    } else if seconds.fract() == 0.0 {
        format!("{seconds:.0}")
    } else {
        format!("{seconds}")
    };
    Ok((period, spelled))
}

/// every(interval, callback, *, name=None, delivery=TriggerDelivery.WAIT_IDLE)
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
#[pyo3(signature = (interval, callback, *, name = None, delivery = None))]
pub fn every(
    interval: &Bound<'_, PyAny>,
    callback: &Bound<'_, PyAny>,
    name: Option<&Bound<'_, PyAny>>,
    delivery: Option<&Bound<'_, PyAny>>,
) -> PyResult<PeriodicTrigger> {
    let (period, spelled) = parse_interval(interval)?;
    if !callback.is_callable() {
        return Err(PyTypeError::new_err(format!(
            "callback must be an async callable taking the context, not {}",
            callback.get_type().name()?
        )));
    }
    let name = match name {
        None => format!("every_{spelled}s"),
        Some(name) => name
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err("name must be a str"))?
            .to_cow()?
            .into_owned(),
    };
    let delivery = match delivery {
        None => TriggerDelivery::WaitIdle,
        Some(value) => delivery::from_python(value, "delivery")?,
    };
    Ok(PeriodicTrigger {
        period,
        name,
        delivery,
        callback: callback.clone().unbind(),
    })
}
