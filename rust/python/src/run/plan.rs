//! A runner's triggers, as planned: what each one is, and its record.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};

use super::handle::TriggerHandle;
use super::source::SourceSpec;
use crate::gc::Traverse;
use crate::process::ForkSafeDrop;

/// One trigger of a runner, checked by the api layer. What kind of trigger
/// it is is read off `object` when a run needs it (the api layer's
/// `entry`): kept here, a copy would cost every idle trigger ~50 bytes.
pub struct Plan {
    /// The object the user passed (in a [`ForkSafeDrop`]: a plan may be let
    /// go of on a tokio thread).
    pub object: ForkSafeDrop<Py<PyAny>>,
    /// Its call, paused or not, its stats: what a run calls, and what
    /// `pause`, `resume`, `run_now` and `stats()` act on, kept across runs.
    pub handle: Arc<TriggerHandle>,
}

/// What a trigger is (no Python object: a run takes a copy).
#[derive(Clone)]
pub enum PlanKind {
    /// A native trigger (`every`, `cron`, `after`, `at`, `on_file_change`):
    /// events from a Rust source, `callback(ctx, ...)` run on the loop for each.
    Native {
        source: SourceSpec,
        /// Its key in a fleet: under a runner with one, each tick runs on
        /// one replica only.
        key: Option<Arc<str>>,
    },
    /// A coroutine trigger: `callable(ctx)` run once on the loop.
    Coroutine,
}

impl PlanKind {
    pub fn is_native(&self) -> bool {
        matches!(self, Self::Native { .. })
    }

    /// Whether it watches files (its callback also takes the changes).
    pub fn is_files(&self) -> bool {
        matches!(
            self,
            Self::Native {
                source: SourceSpec::Files(_),
                ..
            }
        )
    }

    /// `TriggerStats.kind`: the native factory's name, or `"coroutine"`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Native { source, .. } => source.kind_name(),
            Self::Coroutine => "coroutine",
        }
    }
}

/// A plan without the user's object: what a run starts.
#[derive(Clone)]
pub struct Entry {
    pub kind: PlanKind,
    pub handle: Arc<TriggerHandle>,
}

impl Traverse for Plan {
    fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&*self.object)?;
        self.handle.traverse(visit)
    }
}
