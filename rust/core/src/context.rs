//! The handle each running trigger uses to talk to the agent.

use std::sync::Arc;

use tokio::time::Instant;

use crate::{Connection, Result, TriggerDelivery};

/// Runtime context given to a trigger: sends messages into the agent.
///
/// Cheap to clone; every clone talks to the same connection.
#[derive(Clone)]
pub struct TriggerContext {
    connection: Arc<dyn Connection>,
    delivery: TriggerDelivery,
    started: Instant,
}

impl TriggerContext {
    /// A context bound to `connection`, delivering with [`TriggerDelivery::WaitIdle`].
    pub fn new(connection: Arc<dyn Connection>) -> Self {
        Self::with_delivery(connection, TriggerDelivery::default())
    }

    /// A context whose [`deliver`](Self::deliver) follows `delivery`, started now.
    pub fn with_delivery(connection: Arc<dyn Connection>, delivery: TriggerDelivery) -> Self {
        Self {
            connection,
            delivery,
            started: Instant::now(),
        }
    }

    /// The same context, for a trigger started at `started`.
    pub fn started_at(self, started: Instant) -> Self {
        Self { started, ..self }
    }

    /// When the trigger was started: the origin of its schedule (the runner's
    /// `start()`, not the moment its task first ran).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Send a message into the agent now, even mid-turn.
    pub async fn send(&self, content: impl Into<String>) -> Result<()> {
        self.connection.send_trigger(content.into()).await
    }

    /// Wait until the agent is idle, then send: never lands mid-turn.
    pub async fn send_when_idle(&self, content: impl Into<String>) -> Result<()> {
        self.connection.wait_for_idle().await?;
        self.send(content).await
    }

    /// Send according to the owning trigger's [`TriggerDelivery`].
    pub async fn deliver(&self, content: impl Into<String>) -> Result<()> {
        match self.delivery {
            TriggerDelivery::WaitIdle => self.send_when_idle(content).await,
            TriggerDelivery::SendImmediately => self.send(content).await,
            TriggerDelivery::Interrupt => {
                self.connection.cancel().await?;
                self.send(content).await
            }
        }
    }

    /// Whether the agent is idle right now.
    pub fn is_idle(&self) -> bool {
        self.connection.is_idle()
    }

    /// The delivery [`deliver`](Self::deliver) uses.
    pub fn delivery(&self) -> TriggerDelivery {
        self.delivery
    }
}
