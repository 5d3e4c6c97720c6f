//! A set of isolated tokio tasks: what a runner owns while started.

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use tokio::task::JoinHandle;
use tracing::error;

use crate::sync::Mutex;
use crate::{LOG_TARGET, Result, fault};

/// Named tasks spawned on the current runtime, each isolated: one that returns
/// `Err` or panics is logged and ends, and its siblings are not affected.
/// [`stop`](Self::stop) aborts them all and waits until every one has ended;
/// dropping the set aborts them (without waiting): nothing outlives it.
#[derive(Default)]
pub struct Tasks {
    handles: Mutex<Vec<(TaskId, JoinHandle<()>)>>,
    next_id: std::sync::atomic::AtomicU64,
}

/// One task of a [`Tasks`] set, to stop it alone ([`Tasks::stop_one`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskId(u64);

impl Tasks {
    /// Spawn `task`, named `name` in its log lines, on the current runtime.
    ///
    /// # Panics
    /// If called outside a tokio runtime.
    pub fn spawn<F>(&self, name: impl Into<String>, task: F) -> TaskId
    where
        F: Future<Output = Result<()>> + Send + 'static,
    {
        let id = TaskId(
            self.next_id
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        );
        let handle = tokio::spawn(run_isolated(name.into(), task));
        self.handles.lock().push((id, handle));
        id
    }

    /// Abort every task and wait until all have ended.
    pub async fn stop(&self) {
        let handles = std::mem::take(&mut *self.handles.lock());
        Self::abort_and_join(handles).await;
    }

    /// Abort the task `id`, without waiting (a [`stop`](Self::stop) still
    /// waits for it to end).
    pub fn abort(&self, id: TaskId) {
        for (task, handle) in self.handles.lock().iter() {
            if *task == id {
                handle.abort();
            }
        }
    }

    /// Abort the task `id` (if it is still in the set) and wait until it has ended.
    pub async fn stop_one(&self, id: TaskId) {
        let handles = {
            let mut all = self.handles.lock();
            let (this, others) = std::mem::take(&mut *all)
                .into_iter()
                .partition(|(task, _)| *task == id);
            *all = others;
            this
        };
        Self::abort_and_join(handles).await;
    }

    async fn abort_and_join(handles: Vec<(TaskId, JoinHandle<()>)>) {
        for (_, handle) in &handles {
            handle.abort();
        }
        for (_, handle) in handles {
            // Aborted, returned and panicked tasks all end here; a panic was
            // already logged inside the task.
            let _ = handle.await;
        }
    }

    /// Whether any task is still running.
    pub fn is_running(&self) -> bool {
        self.handles.lock().iter().any(|(_, h)| !h.is_finished())
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        for (_, handle) in self.handles.get_mut().drain(..) {
            handle.abort();
        }
    }
}

/// Run one task to its end, logging an error or a panic instead of letting it
/// reach the runtime.
async fn run_isolated<F>(name: String, task: F)
where
    F: Future<Output = Result<()>> + Send + 'static,
{
    let run = async {
        fault::hit(fault::Site::Trigger);
        task.await
    };
    match AssertUnwindSafe(run).catch_unwind().await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            error!(target: LOG_TARGET, trigger = name, "trigger {name:?} failed: {e}");
        }
        Err(panic) => {
            let message = fault::panic_message(&*panic);
            error!(target: LOG_TARGET, trigger = name, "trigger {name:?} panicked: {message}");
        }
    }
}
