//! How a trigger's messages reach the agent.

/// Whether a trigger's messages wait for the agent to be idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TriggerDelivery {
    /// Wait until the agent is idle, then send: never interrupts a turn.
    #[default]
    WaitIdle,
    /// Send at once, even while the agent is mid-turn.
    SendImmediately,
    /// Stop the agent's current turn ([`Connection::cancel`](crate::Connection::cancel)),
    /// then send.
    Interrupt,
}
