//! `TriggerDelivery` across the boundary: the Python enum
//! (`agent_triggers.TriggerDelivery`) to and from the core's enum.

use agent_triggers_core::TriggerDelivery;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyString, PyType};

use crate::arguments::type_name;

fn python_enum(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    Ok(crate::python::bound(py)?.delivery_enum.bind(py))
}

/// The Python member for `delivery`.
pub fn to_python(py: Python<'_>, delivery: TriggerDelivery) -> PyResult<Bound<'_, PyAny>> {
    let member = match delivery {
        TriggerDelivery::WaitIdle => "WAIT_IDLE",
        TriggerDelivery::SendImmediately => "SEND_IMMEDIATELY",
        TriggerDelivery::Interrupt => "INTERRUPT",
    };
    python_enum(py)?.getattr(member)
}

/// `@trigger(delivery=...)`'s check, the one every native trigger makes: a
/// `TriggerDelivery` member, or its string value, as the member.
#[pyfunction]
pub fn delivery_argument<'py>(value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    to_python(value.py(), from_python(value, "delivery")?)
}

/// A `TriggerDelivery` member (or its string value) as the core's enum;
/// `argument` names the parameter in the error.
pub fn from_python(value: &Bound<'_, PyAny>, argument: &str) -> PyResult<TriggerDelivery> {
    let py = value.py();
    let class = python_enum(py)?;
    let member = if value.is_instance(class)? {
        value.clone()
    } else if value.is_instance_of::<PyString>() {
        class.call1((value,)).map_err(|_| {
            PyValueError::new_err(format!(
                "{argument} must be TriggerDelivery.WAIT_IDLE, TriggerDelivery.SEND_IMMEDIATELY \
                 or TriggerDelivery.INTERRUPT, got {value}"
            ))
        })?
    } else {
        return Err(PyTypeError::new_err(format!(
            "{argument} must be a TriggerDelivery, not {}",
            type_name(value)
        )));
    };
    for delivery in [TriggerDelivery::SendImmediately, TriggerDelivery::Interrupt] {
        if member.is(&to_python(py, delivery)?) {
            return Ok(delivery);
        }
    }
    Ok(TriggerDelivery::WaitIdle)
}
