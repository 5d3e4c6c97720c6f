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

/// The deliveries in the order of `Imports::delivery_members`.
const DELIVERIES: [TriggerDelivery; 3] = [
    TriggerDelivery::WaitIdle,
    TriggerDelivery::SendImmediately,
    TriggerDelivery::Interrupt,
];

/// The Python member for `delivery`.
pub fn to_python(py: Python<'_>, delivery: TriggerDelivery) -> PyResult<Bound<'_, PyAny>> {
    let members = &crate::python::bound(py)?.delivery_members;
    let at = DELIVERIES
        .iter()
        .position(|known| *known == delivery)
        .expect("every delivery is listed");
    Ok(members[at].bind(py).clone())
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
    let members = &crate::python::bound(py)?.delivery_members;
    if let Some(at) = members.iter().position(|member| value.is(member)) {
        return Ok(DELIVERIES[at]);
    }
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
    let at = members.iter().position(|known| member.is(known));
    Ok(at.map_or(TriggerDelivery::WaitIdle, |at| DELIVERIES[at]))
}
