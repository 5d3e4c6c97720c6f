//! The failures of coroutine triggers, recorded from `run_trigger` into their
//! handle (a native trigger's calls are counted by the handle itself).

use std::sync::Weak;

use pyo3::prelude::*;

use super::handle::{Life, TriggerHandle, error_text};

/// Called by `run_trigger` when a coroutine trigger raised (the failure is
/// logged there): counted, and the trigger marked failed.
#[pyclass(frozen, module = "agent_triggers._core")]
pub struct RecordFailure(pub Weak<TriggerHandle>);

#[pymethods]
impl RecordFailure {
    fn __call__(&self, exception: &Bound<'_, PyAny>) {
        let Some(handle) = self.0.upgrade() else {
            return;
        };
        let err = PyErr::from_value(exception.clone());
        // A coroutine trigger has no failure limit: only counted.
        handle.stats.failed(&error_text(exception.py(), &err));
        handle.set_life(Life::Failed);
    }
}
