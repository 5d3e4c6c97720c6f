//! Checking a runner's trigger list: each item classified once, when the
//! runner is built, so that a bad item fails there with its index.
//!
//! A trigger is one of: a native trigger (`every`, `cron`, `after`, `at`,
//! `on_file_change`); an instance of the Python `Trigger` base class (its
//! `run` method is called); or any callable that takes the context and
//! returns an awaitable.

use std::sync::Arc;

use agent_triggers_core::TriggerDelivery;
use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyString;

use super::native::NativeTrigger;
use crate::arguments::{str_argument, type_name};
use crate::delivery;
use crate::process::ForkSafeDrop;
use crate::python;
use crate::run::connection::PyConnection;
use crate::run::count::RecordFailure;
use crate::run::handle::{Identity, TriggerHandle};
use crate::run::plan::{Entry, Plan, PlanKind};

/// The name of `object` (the argument `argument`): its `name` attribute if it
/// is a `str`, else its `__name__`, else its type's name.
fn trigger_name(argument: &str, object: &Bound<'_, PyAny>) -> PyResult<String> {
    let py = object.py();
    for attribute in [intern!(py, "name"), intern!(py, "__name__")] {
        if let Some(value) = object.getattr_opt(attribute)?
            && value.is_instance_of::<PyString>()
        {
            return str_argument(&value, &format!("{argument}.{attribute}"));
        }
    }
    Ok(type_name(object))
}

/// `ValueError` if two triggers share a key: in a fleet they would claim the
/// same ticks, and only one of them would run each.
pub fn check_keys(triggers: &[Checked<'_>]) -> PyResult<()> {
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (index, checked) in triggers.iter().enumerate() {
        if let PlanKind::Native { key: Some(key), .. } = &checked.kind
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

/// A trigger checked, not yet bound to a connection (see [`Checked::plan`]).
pub struct Checked<'py> {
    object: Bound<'py, PyAny>,
    identity: Identity,
    kind: PlanKind,
    /// A native trigger's callback, or a coroutine trigger's callable.
    callable: Bound<'py, PyAny>,
}

/// How a trigger was passed, as errors name it: `triggers[3]`, `trigger`.
/// Spelled out only for an error (or a trigger that is not native): a
/// runner checks each of perhaps hundreds of thousands.
#[derive(Clone, Copy, Debug)]
pub enum Argument<'a> {
    /// An item of the runner's `triggers` list.
    Item(usize),
    Named(&'a str),
}

impl std::fmt::Display for Argument<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Item(index) => write!(f, "triggers[{index}]"),
            Self::Named(name) => f.write_str(name),
        }
    }
}

/// Check `object`, passed as `argument`; `TypeError` naming the argument if
/// it is no trigger.
pub fn check<'py>(argument: Argument<'_>, object: &Bound<'py, PyAny>) -> PyResult<Checked<'py>> {
    let py = object.py();
    if let Ok(native) = object.cast::<NativeTrigger>() {
        let native = native.get();
        return Ok(Checked {
            object: object.clone(),
            identity: Identity {
                name: Arc::clone(native.name()),
                delivery: native.delivery(),
                limit: native.max_consecutive_failures(),
            },
            kind: PlanKind::Native {
                source: native.source().clone(),
                key: native.key().cloned(),
            },
            callable: native.callback().bind(py).clone(),
        });
    }
    let argument = &argument.to_string();
    let callable = if object.is_instance(python::bound(py)?.trigger_class.bind(py))? {
        object.getattr(intern!(py, "run"))?
    } else if object.is_callable() {
        object.clone()
    } else {
        return Err(PyTypeError::new_err(format!(
            "{argument} is not a trigger: expected an async callable taking the \
             context, a Trigger instance or a native trigger such as every(...), got {}",
            type_name(object)
        )));
    };
    let delivery = match object.getattr_opt(intern!(py, "delivery"))? {
        Some(value) if !value.is_none() => {
            delivery::from_python(&value, &format!("{argument}.delivery"))?
        }
        _ => TriggerDelivery::WaitIdle,
    };
    Ok(Checked {
        object: object.clone(),
        identity: Identity {
            name: trigger_name(argument, object)?.into(),
            delivery,
            limit: None,
        },
        kind: PlanKind::Coroutine,
        callable,
    })
}

impl Checked<'_> {
    /// The trigger's plan, sending into `connection`.
    pub fn plan(self, connection: &Arc<PyConnection>) -> PyResult<Plan> {
        let py = self.object.py();
        let name = Arc::clone(&self.identity.name);
        let callable = self.callable;
        let coroutine = matches!(self.kind, PlanKind::Coroutine);
        let handle = TriggerHandle::new(self.identity, connection, |me| {
            if !coroutine {
                return Ok(callable.unbind());
            }
            // Run inside `run_trigger`, which logs a failure in the step that
            // raises and records it (through a weak reference: no cycle).
            let bound = python::bound(py)?;
            let record = Py::new(py, RecordFailure(me.clone()))?;
            Ok(bound
                .partial
                .bind(py)
                .call1((bound.run_trigger.bind(py), &*name, callable, record))?
                .unbind())
        })?;
        Ok(Plan {
            object: ForkSafeDrop::new(self.object.unbind()),
            handle,
        })
    }
}

/// `plan`'s key in a fleet (`key=`), read off its object; no copy of its
/// source. Runs no Python code: it may be called under the runner's lock.
pub fn key_of(py: Python<'_>, plan: &Plan) -> Option<Arc<str>> {
    let native = plan.object.bind(py).cast::<NativeTrigger>().ok()?;
    native.get().key().cloned()
}

/// What a run needs of `plan`: its kind, read off the object (a native
/// trigger is frozen: what `check` saw), and its record. Runs no Python
/// code: it may be called under the runner's lock.
pub fn entry(py: Python<'_>, plan: &Plan) -> Entry {
    let kind = match plan.object.bind(py).cast::<NativeTrigger>() {
        Ok(native) => {
            let native = native.get();
            PlanKind::Native {
                source: native.source().clone(),
                key: native.key().cloned(),
            }
        }
        Err(_) => PlanKind::Coroutine,
    };
    Entry {
        kind,
        handle: Arc::clone(&plan.handle),
    }
}
