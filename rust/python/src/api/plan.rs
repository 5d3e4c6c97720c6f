//! Checking a runner's trigger list: each item classified once, when the
//! runner is built, so that a bad item fails there with its index.
//!
//! A trigger is one of: a native trigger (`every`, `cron`, `after`, `at`,
//! `on_file_change`); an instance of the Python `Trigger` base class (its
//! `run` method is called); or any callable that takes the context and
//! returns an awaitable.

use agent_triggers_core::TriggerDelivery;
use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyString;

use super::native::NativeTrigger;
use crate::arguments::{str_argument, type_name};
use crate::delivery;
use crate::python;
use crate::run::plan::{Plan, PlanKind};

/// The name of `triggers[index]`: its `name` attribute if it is a `str`, else
/// its `__name__`, else its type's name.
fn trigger_name(index: usize, object: &Bound<'_, PyAny>) -> PyResult<String> {
    let py = object.py();
    for attribute in [intern!(py, "name"), intern!(py, "__name__")] {
        if let Some(value) = object.getattr_opt(attribute)?
            && value.is_instance_of::<PyString>()
        {
            return str_argument(&value, &format!("triggers[{index}].{attribute}"));
        }
    }
    Ok(type_name(object))
}

/// `ValueError` if two triggers share a key: in a fleet they would claim the
/// same ticks, and only one of them would run each.
pub fn check_keys(plans: &[Plan]) -> PyResult<()> {
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (index, plan) in plans.iter().enumerate() {
        if let PlanKind::Native { key: Some(key), .. } = &plan.kind
            && let Some(first) = seen.insert(key, index)
        {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "triggers[{first}] and triggers[{index}] have the same key {key:?}: a key \
                 names one trigger of the fleet"
            )));
        }
    }
    Ok(())
}

/// Classify `triggers[index]`; `TypeError` naming the index if it is no trigger.
pub fn classify(index: usize, object: &Bound<'_, PyAny>) -> PyResult<Plan> {
    let py = object.py();
    if let Ok(native) = object.cast::<NativeTrigger>() {
        let native = native.get();
        return Ok(Plan {
            object: object.clone().unbind(),
            name: native.name().into(),
            delivery: native.delivery(),
            kind: PlanKind::Native {
                source: native.source().clone(),
                callback: native.callback().clone_ref(py),
                key: native.key().cloned(),
            },
        });
    }
    let callable = if object.is_instance(python::bound(py)?.trigger_class.bind(py))? {
        object.getattr(intern!(py, "run"))?
    } else if object.is_callable() {
        object.clone()
    } else {
        return Err(PyTypeError::new_err(format!(
            "triggers[{index}] is not a trigger: expected an async callable taking the \
             context, a Trigger instance or a native trigger such as every(...), got {}",
            type_name(object)
        )));
    };
    let delivery = match object.getattr_opt(intern!(py, "delivery"))? {
        Some(value) if !value.is_none() => {
            delivery::from_python(&value, &format!("triggers[{index}].delivery"))?
        }
        _ => TriggerDelivery::WaitIdle,
    };
    Ok(Plan {
        object: object.clone().unbind(),
        name: trigger_name(index, object)?.into(),
        delivery,
        kind: PlanKind::Coroutine {
            callable: callable.unbind(),
        },
    })
}
