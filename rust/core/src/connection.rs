//! What a trigger needs from the agent's connection.

use async_trait::async_trait;

use crate::Result;

/// The agent-side endpoint that trigger messages are pushed into.
///
/// Only [`send_trigger`](Connection::send_trigger) is required: a connection that
/// cannot tell whether its agent is busy is treated as always idle.
#[async_trait]
pub trait Connection: Send + Sync {
    /// Push one trigger message into the agent. An error is returned to the
    /// trigger that sent it.
    async fn send_trigger(&self, content: String) -> Result<()>;

    /// Whether the agent is idle (not mid-turn) right now.
    fn is_idle(&self) -> bool {
        true
    }

    /// Resolve once the agent is idle. Dropping the future abandons the wait.
    async fn wait_for_idle(&self) -> Result<()> {
        Ok(())
    }

    /// Stop the agent's current turn (what [`TriggerDelivery::Interrupt`]
    /// does before it sends). A connection that cannot says so with an error.
    ///
    /// [`TriggerDelivery::Interrupt`]: crate::TriggerDelivery::Interrupt
    async fn cancel(&self) -> Result<()> {
        Err(crate::Error::InvalidArgument(
            "the connection has no cancel(): an INTERRUPT delivery needs one".into(),
        ))
    }
}
