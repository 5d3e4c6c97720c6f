//! The trigger trait: one long-lived task that pushes messages into the agent.

use async_trait::async_trait;

use crate::{Result, TriggerContext, TriggerDelivery};

/// A background task that pushes messages into the agent.
///
/// A [`crate::TriggerRunner`] runs each trigger in its own tokio task until
/// [`run`](Trigger::run) returns or the runner aborts it. Abort drops the `run`
/// future at its current await point, so anything that must be cleaned up has to
/// be owned by the future (and cleaned up in `Drop`).
#[async_trait]
pub trait Trigger: Send + Sync {
    /// Name used in diagnostics.
    fn name(&self) -> &str;

    /// Whether messages wait for the agent to be idle (the default) or not.
    fn delivery(&self) -> TriggerDelivery {
        TriggerDelivery::WaitIdle
    }

    /// The trigger's main loop. An `Err` is logged by the runner; it does not
    /// affect other triggers, and the trigger is not restarted.
    async fn run(&self, ctx: TriggerContext) -> Result<()>;
}
