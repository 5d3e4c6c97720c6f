//! The runner: owns one tokio task per trigger and their lifecycle.

use std::sync::Arc;

use crate::sync::Mutex;
use crate::{Connection, Error, Result, Tasks, Trigger, TriggerContext};

/// Owns trigger tasks and manages their lifecycle.
///
/// [`start`](Self::start) spawns one task per trigger, each with its own
/// [`TriggerContext`]; [`stop`](Self::stop) aborts them and waits until every task
/// has ended. The runner can be started again after a stop. Dropping a started
/// runner aborts its tasks (without waiting): nothing it started outlives it.
///
/// A trigger that returns `Err` or panics is logged and ends; the other triggers
/// are not affected and nothing is restarted.
pub struct TriggerRunner {
    triggers: Vec<Arc<dyn Trigger>>,
    connection: Arc<dyn Connection>,
    tasks: Mutex<Option<Arc<Tasks>>>,
}

impl TriggerRunner {
    /// A runner for `triggers`, all bound to `connection`. Nothing runs until
    /// [`start`](Self::start).
    pub fn new(triggers: Vec<Arc<dyn Trigger>>, connection: Arc<dyn Connection>) -> Self {
        Self {
            triggers,
            connection,
            tasks: Mutex::new(None),
        }
    }

    /// Spawn every trigger on the current tokio runtime.
    ///
    /// Returns [`Error::AlreadyStarted`] if the runner was started and not stopped
    /// since — even if every trigger has already returned.
    ///
    /// # Panics
    /// If called outside a tokio runtime.
    pub fn start(&self) -> Result<()> {
        let mut slot = self.tasks.lock();
        if slot.is_some() {
            return Err(Error::AlreadyStarted);
        }
        // One origin for every trigger's schedule: the call, not when each
        // task happens to run first.
        let started = tokio::time::Instant::now();
        let tasks = Tasks::default();
        for trigger in &self.triggers {
            let trigger = Arc::clone(trigger);
            let ctx =
                TriggerContext::with_delivery(Arc::clone(&self.connection), trigger.delivery())
                    .started_at(started);
            let name = trigger.name().to_owned();
            tasks.spawn(name, async move { trigger.run(ctx).await });
        }
        *slot = Some(Arc::new(tasks));
        Ok(())
    }

    /// Abort every trigger task and wait until all have ended. A no-op when not
    /// started; afterwards the runner may be started again.
    pub async fn stop(&self) {
        let Some(tasks) = self.tasks.lock().take() else {
            return;
        };
        tasks.stop().await;
    }

    /// Whether any trigger task is still running.
    pub fn is_running(&self) -> bool {
        self.tasks
            .lock()
            .as_ref()
            .is_some_and(|tasks| tasks.is_running())
    }

    /// Whether the runner is started (and not stopped since), even if its
    /// triggers have all returned.
    pub fn is_started(&self) -> bool {
        self.tasks.lock().is_some()
    }
}
