//! Keyed triggers under a runner with a fleet: their ticks come from the
//! core's [`FleetTicks`] — the ticks this replica wins in Redis, and those
//! given back to it — instead of a local schedule.

use std::sync::Arc;

use agent_triggers_core::fleet::grid::EpochGrid;
use agent_triggers_core::fleet::{Fleet, FleetConfig, FleetSchedule, FleetTicks};
use agent_triggers_core::{EventSource as CoreSource, RecordTicks};
use pyo3::prelude::*;

use super::source::{FiresOnce, OnceSpec, SourceSpec};

/// The fleet source of a trigger keyed `key` whose own source is `spec`;
/// `None` if its kind cannot be shared by a fleet (the api layer refuses a
/// key there already); the ticks it skips are counted in `stats`. Must be
/// called within the tokio runtime.
pub fn keyed_source(
    fleet: &Arc<Fleet>,
    key: &Arc<str>,
    spec: &SourceSpec,
    stats: &Arc<dyn RecordTicks>,
) -> Option<Box<dyn CoreSource>> {
    let ticks = |schedule| {
        FleetTicks::new(fleet, Arc::clone(key), schedule).recording_in(Arc::clone(stats))
    };
    Some(match spec {
        SourceSpec::Every(period) => {
            Box::new(ticks(FleetSchedule::Every(EpochGrid::new(key, *period))))
        }
        SourceSpec::Cron(schedule) => Box::new(ticks(FleetSchedule::Cron(Arc::clone(schedule)))),
        SourceSpec::Once(OnceSpec::At(when, fired)) => Box::new(FiresOnce {
            inner: Box::new(ticks(FleetSchedule::At(*when))),
            fired: Arc::clone(fired),
        }),
        SourceSpec::Once(OnceSpec::After(_)) | SourceSpec::Files(_) => return None,
    })
}

/// This replica's name: the one configured, else `"{hostname}:{pid}"` as of
/// now (a child forked after the fleet was made gets its own).
pub fn replica_name(py: Python<'_>, config: &FleetConfig) -> PyResult<String> {
    if let Some(replica) = config.replica() {
        return Ok(replica.to_owned());
    }
    let host: String = py
        .import(pyo3::intern!(py, "socket"))?
        .call_method0(pyo3::intern!(py, "gethostname"))?
        .extract()?;
    Ok(format!("{host}:{}", std::process::id()))
}
