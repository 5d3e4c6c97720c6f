//! The error type shared by connections, triggers and the runner.

/// Errors of the trigger runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// [`crate::TriggerRunner::start`] was called while the runner was started.
    #[error("the trigger runner is already started; stop() it before starting again")]
    AlreadyStarted,
    /// A bad argument (an invalid cron expression, an unknown time zone, ...):
    /// the message says what and why.
    #[error("{0}")]
    InvalidArgument(String),
    /// Anything a connection or a trigger reports: the message is shown as is.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// An error carrying a free-form message.
    pub fn other(message: impl Into<String>) -> Self {
        Self::Other(message.into())
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
