//! The runner: owns one tokio task per trigger and their lifecycle.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use crate::sync::Mutex;
use futures_util::FutureExt;
use tokio::task::JoinHandle;
use tracing::error;

use crate::{Connection, Error, LOG_TARGET, Result, Trigger, TriggerContext, fault};

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
    tasks: Mutex<Option<Vec<JoinHandle<()>>>>,
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
        let mut tasks = self.tasks.lock();
        if tasks.is_some() {
            return Err(Error::AlreadyStarted);
        }
        // One origin for every trigger's schedule: the call, not when each
        // task happens to run first.
        let started = tokio::time::Instant::now();
        let handles = self
            .triggers
            .iter()
            .map(|trigger| {
                let trigger = Arc::clone(trigger);
                let ctx =
                    TriggerContext::with_delivery(Arc::clone(&self.connection), trigger.delivery())
                        .started_at(started);
                tokio::spawn(run_isolated(trigger, ctx))
            })
            .collect();
        *tasks = Some(handles);
        Ok(())
    }

    /// Abort every trigger task and wait until all have ended. A no-op when not
    /// started; afterwards the runner may be started again.
    pub async fn stop(&self) {
        let Some(handles) = self.tasks.lock().take() else {
            return;
        };
        for handle in &handles {
            handle.abort();
        }
        for handle in handles {
            // Aborted, returned and panicked tasks all end here; a panic was
            // already logged inside the task.
            let _ = handle.await;
        }
    }

    /// Whether any trigger task is still running.
    pub fn is_running(&self) -> bool {
        self.tasks
            .lock()
            .as_ref()
            .is_some_and(|handles| handles.iter().any(|h| !h.is_finished()))
    }

    /// Whether the runner is started (and not stopped since), even if its
    /// triggers have all returned.
    pub fn is_started(&self) -> bool {
        self.tasks.lock().is_some()
    }
}

impl Drop for TriggerRunner {
    fn drop(&mut self) {
        if let Some(handles) = self.tasks.get_mut().take() {
            for handle in handles {
                handle.abort();
            }
        }
    }
}

/// Run one trigger to its end, logging an error or a panic instead of letting it
/// reach the runtime: a failing trigger never disturbs its siblings.
async fn run_isolated(trigger: Arc<dyn Trigger>, ctx: TriggerContext) {
    let run = async {
        fault::hit(fault::Site::Trigger);
        trigger.run(ctx).await
    };
    let outcome = AssertUnwindSafe(run).catch_unwind().await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            error!(target: LOG_TARGET, trigger = trigger.name(), "trigger {:?} failed: {e}", trigger.name());
        }
        Err(panic) => {
            let message = fault::panic_message(&*panic);
            error!(target: LOG_TARGET, trigger = trigger.name(), "trigger {:?} panicked: {message}", trigger.name());
        }
    }
}
