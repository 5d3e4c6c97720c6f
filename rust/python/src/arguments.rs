//! Checking the arguments users pass: one place for the type and value errors
//! every factory raises, so they read the same everywhere.

use std::time::Duration;

use pyo3::Borrowed;
use pyo3::exceptions::{PyOverflowError, PyTypeError, PyUnicodeEncodeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyString};

use crate::python;

/// The name of `value`'s type, for error messages.
pub fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|name| name.to_string())
        .unwrap_or_else(|_| "object".to_owned())
}

/// `value` as a Rust string; `TypeError` naming `argument` if it is not a `str`.
/// A `str` may hold lone surrogates, which no Rust string can: a `ValueError`
/// naming `argument`, not the bare `UnicodeEncodeError` that does not say
/// which text it could not encode.
pub fn str_argument(value: &Bound<'_, PyAny>, argument: &str) -> PyResult<String> {
    let text = value.cast::<PyString>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{argument} must be a str, not {}",
            type_name(value)
        ))
    })?;
    match text.to_cow() {
        Ok(text) => Ok(text.into_owned()),
        Err(err) if err.is_instance_of::<PyUnicodeEncodeError>(value.py()) => {
            Err(PyValueError::new_err(format!(
                "{argument} must not contain lone surrogates ({})",
                err.value(value.py())
            )))
        }
        Err(err) => Err(err),
    }
}

/// `value` as an error message shows it: its `str()`, cut short if long (an
/// int of thousands of digits; one past Python's 4,300-digit limit has none).
fn shown(value: &Bound<'_, PyAny>) -> String {
    const LONGEST: usize = 40;
    let Ok(text) = value.str() else {
        return format!("a value too long to print ({})", type_name(value));
    };
    let text = text.to_string_lossy();
    match text.char_indices().nth(LONGEST) {
        Some((end, _)) => format!("{}... ({} characters)", &text[..end], text.chars().count()),
        None => text.into_owned(),
    }
}

/// A plain number read without calling into Python (the common case, made
/// cheap: `every()` may be called for each of hundreds of thousands of
/// triggers).
enum Plain {
    Float(f64),
    /// An `int` a float holds exactly.
    Int(i64),
}

impl Plain {
    /// A plain `float`, or an `int` a float holds exactly. Subclasses, which
    /// may redefine `__float__` or `__str__`, and larger ints: `None`.
    fn of(value: &Bound<'_, PyAny>) -> Option<Self> {
        const EXACT: i64 = 1 << 53;
        if let Ok(float) = value.cast_exact::<PyFloat>() {
            return Some(Self::Float(float.value()));
        }
        let int = value.cast_exact::<PyInt>().ok()?.extract::<i64>().ok()?;
        // Exact: every integer of magnitude up to 2^53 is a float.
        (-EXACT..=EXACT).contains(&int).then_some(Self::Int(int))
    }

    fn seconds(&self) -> f64 {
        match *self {
            Self::Float(seconds) => seconds,
            #[expect(clippy::cast_precision_loss, reason = "exact below 2^53")]
            Self::Int(seconds) => seconds as f64,
        }
    }
}

/// The longest duration accepted: about 100 years. Longer ones are surely a
/// mistake, and would overflow the timer's clock arithmetic.
const MAX_SECONDS: f64 = 3.2e9;

/// Parse a duration argument: seconds as int/float (or any real number), or a
/// `timedelta`. Zero is accepted only if `allow_zero`. Returns the duration and
/// how a default name spells it. `argument` names the parameter in errors.
pub fn parse_seconds(
    value: &Bound<'_, PyAny>,
    argument: &str,
    allow_zero: bool,
) -> PyResult<(Duration, String)> {
    let py = value.py();
    let not_a_number = || -> PyErr {
        PyTypeError::new_err(format!(
            "{argument} must be a number of seconds (int or float) or a datetime.timedelta, \
             not {}",
            type_name(value)
        ))
    };
    let too_large = || {
        PyValueError::new_err(format!(
            "{argument} must be at most {MAX_SECONDS:e} seconds, got {}",
            shown(value)
        ))
    };
    let too_small = || {
        let bound = if allow_zero {
            "zero or more"
        } else {
            "positive"
        };
        PyValueError::new_err(format!("{argument} must be {bound}, got {}", shown(value)))
    };
    let not_finite = || {
        PyValueError::new_err(format!(
            "{argument} must be a finite number of seconds, got {}",
            shown(value)
        ))
    };
    if value.is_instance_of::<PyBool>() || value.is_instance_of::<PyString>() {
        return Err(not_a_number());
    }
    let is_plain_number = value.is_instance_of::<PyInt>() || value.is_instance_of::<PyFloat>();
    let is_decimal = !is_plain_number && value.is_instance(python::bound(py)?.decimal.bind(py))?;
    // float() refuses a signaling NaN: a value problem, as any NaN is.
    if is_decimal && value.call_method0(intern!(py, "is_nan"))?.is_truthy()? {
        return Err(not_finite());
    }
    let plain = Plain::of(value);
    let seconds: f64 = if let Some(plain) = &plain {
        plain.seconds()
    } else if is_plain_number
        || is_decimal
        || value.is_instance(python::bound(py)?.real.bind(py))?
    {
        // float() of a huge int overflows: that is a value problem, not a type one.
        match value.call_method0(intern!(py, "__float__")) {
            Ok(seconds) => seconds.extract()?,
            Err(err) if err.is_instance_of::<PyOverflowError>(py) => {
                return Err(if value.lt(0)? {
                    too_small()
                } else {
                    too_large()
                });
            }
            Err(err) => return Err(err),
        }
    } else if value.is_instance(python::bound(py)?.timedelta.bind(py))? {
        value
            .call_method0(intern!(py, "total_seconds"))?
            .extract()?
    } else {
        return Err(not_a_number());
    };
    // A Decimal beyond any float converts to an infinity without complaint:
    // finite itself, it is too large, or negative.
    if seconds.is_infinite()
        && is_decimal
        && !value
            .call_method0(intern!(py, "is_infinite"))?
            .is_truthy()?
    {
        return Err(if seconds < 0.0 {
            too_small()
        } else {
            too_large()
        });
    }
    if !seconds.is_finite() {
        return Err(not_finite());
    }
    if seconds < 0.0 || (seconds == 0.0 && !allow_zero) {
        return Err(too_small());
    }
    if seconds > MAX_SECONDS {
        return Err(too_large());
    }
    let duration = Duration::from_secs_f64(seconds);
    if duration.is_zero() && !allow_zero {
        return Err(PyValueError::new_err(format!(
            "{argument} must be at least one nanosecond, got {seconds:e} seconds"
        )));
    }
    // `every(300, cb).name == "every_300s"`: the number as the user wrote it;
    // a timedelta by its seconds (whole ones without a fraction).
    let spelled = if let Some(Plain::Int(int)) = plain {
        // What `str()` gives, without asking Python.
        int.to_string()
    } else if is_plain_number {
        value.str()?.to_string()
    } else if seconds.fract() == 0.0 {
        format!("{seconds:.0}")
    } else {
        format!("{seconds}")
    };
    Ok((duration, spelled))
}

/// `stop()`'s `timeout`: seconds (a real number or a `timedelta`), zero
/// included. (pyo3 extracts an async method's arguments when its coroutine
/// first runs: a bad timeout is raised by the `await`, as in an `async def`.)
pub struct StopTimeout(pub Duration);

impl<'a, 'py> FromPyObject<'a, 'py> for StopTimeout {
    type Error = PyErr;

    fn extract(value: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let (duration, _) = parse_seconds(&value.to_owned(), "timeout", true)?;
        Ok(Self(duration))
    }
}

/// A count of at least one (`max_consecutive_failures=`): an `int` (not a
/// `bool`), else `TypeError`; under 1 or past `u32::MAX`, `ValueError` — both
/// naming `argument`.
pub fn positive_count(value: &Bound<'_, PyAny>, argument: &str) -> PyResult<u32> {
    if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "{argument} must be an int or None, not {}",
            type_name(value)
        )));
    }
    match value.extract::<i64>() {
        Ok(count) if count >= 1 => u32::try_from(count).map_err(|_| {
            PyValueError::new_err(format!(
                "{argument} must be at most {}, not {count}",
                u32::MAX
            ))
        }),
        Ok(count) => Err(PyValueError::new_err(format!(
            "{argument} must be at least 1 (or None for no limit), not {count}"
        ))),
        Err(_) => Err(PyValueError::new_err(format!(
            "{argument} must be between 1 and {}, not {}",
            u32::MAX,
            shown(value)
        ))),
    }
}
