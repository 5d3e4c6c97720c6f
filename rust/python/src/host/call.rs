//! One Python call handed to a host: its single state, and who learns how it
//! ended.

use std::sync::Arc;
use std::time::Instant;

use agent_triggers_core::sync::Mutex;
use pyo3::prelude::*;
use tokio::sync::oneshot;

use crate::process::ForkSafeDrop;

/// How a Python call ended. A cancellation asked for counts as `Ok`: it is how
/// a stop ends a trigger, not a failure of it.
pub type CallOutcome = Result<(), PyErr>;

/// Makes the call's awaitable, on the loop thread: what the call is.
pub type Start = Box<dyn for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyAny>> + Send>;

/// Run where a call ends (on the loop thread, unless its loop closed first):
/// `None` if the call did not run at all (refused, cancelled while queued, or
/// its loop closed), and when the callable was called, if it was.
pub type OnDone = Box<dyn FnOnce(Option<CallOutcome>, Option<Instant>) + Send>;

/// Why a call was cancelled: recorded on it, and given to the task's
/// `cancel()` as its message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelReason {
    /// `stop()`: the runner is stopping.
    Stop,
    /// `remove()`: the trigger was removed from its runner.
    Removed,
    /// The runner was collected without `stop()`.
    RunnerCollected,
    /// The Rust side awaiting the call let go of it (the safety net of a
    /// runner collected without `stop()`).
    Dropped,
}

impl CancelReason {
    /// The message the cancelled task's `CancelledError` carries.
    pub fn message(self) -> &'static str {
        match self {
            Self::Stop => "agent_triggers: the runner was stopped",
            Self::Removed => "agent_triggers: the trigger was removed",
            Self::RunnerCollected => "agent_triggers: the runner was garbage-collected",
            Self::Dropped => "agent_triggers: the call was let go of",
        }
    }
}

/// Who learns how a call ended.
pub(super) enum Completion {
    /// A [`super::PythonCall`] future.
    Future(oneshot::Sender<CallOutcome>),
    /// A callback (see [`OnDone`]).
    Callback(OnDone),
}

impl Completion {
    /// Tell the outcome; `None`: the call did not run. Returns the outcome
    /// if nobody was left to receive it.
    pub(super) fn deliver(
        self,
        outcome: Option<CallOutcome>,
        launched: Option<Instant>,
    ) -> Option<CallOutcome> {
        match self {
            Self::Future(tx) => tx.send(outcome.unwrap_or(Ok(()))).err(),
            Self::Callback(callback) => {
                callback(outcome, launched);
                None
            }
        }
    }
}

/// One Python call: queued until the loop starts it, running until its task
/// ends, then done. Only its host's registry moves it to `Done`.
pub struct Call {
    /// What the call is, for the names a stop that gives up logs: the
    /// trigger's name.
    pub name: Arc<str>,
    /// Its key in the registry.
    pub(super) id: u64,
    pub(super) state: Mutex<State>,
}

pub(super) enum State {
    Queued {
        start: Start,
        to: Completion,
    },
    Running {
        /// The task running the awaitable; `None` while it is being made.
        task: Option<ForkSafeDrop<Py<PyAny>>>,
        to: Completion,
        launched: Instant,
        /// Set once the task was asked to cancel: it is asked once, whoever
        /// asks first.
        cancelled: Option<CancelReason>,
    },
    Done,
}

impl Call {
    pub(super) fn new(name: Arc<str>, id: u64, start: Start, to: Completion) -> Self {
        Self {
            name,
            id,
            state: Mutex::new(State::Queued { start, to }),
        }
    }

    /// Whether the call is over.
    pub fn is_done(&self) -> bool {
        matches!(*self.state.lock(), State::Done)
    }

    /// Whether the call is still queued.
    pub(super) fn is_queued(&self) -> bool {
        matches!(*self.state.lock(), State::Queued { .. })
    }

    /// Queued → Running: the maker of its awaitable, now to be called.
    pub(super) fn begin(&self) -> Option<Start> {
        let mut state = self.state.lock();
        let State::Queued { .. } = &*state else {
            return None;
        };
        let State::Queued { start, to } = std::mem::replace(&mut *state, State::Done) else {
            unreachable!("matched above");
        };
        *state = State::Running {
            task: None,
            to,
            launched: Instant::now(),
            cancelled: None,
        };
        Some(start)
    }

    /// Record the task made for a running call. Returns the reason it must be
    /// cancelled at once, if a cancel was asked while it was being made.
    pub(super) fn running_as(&self, task: ForkSafeDrop<Py<PyAny>>) -> Option<CancelReason> {
        let mut state = self.state.lock();
        if let State::Running {
            task: slot,
            cancelled,
            ..
        } = &mut *state
        {
            *slot = Some(task);
            return *cancelled;
        }
        None
    }

    /// Ask for the call's cancellation with `reason`. A running call's task
    /// is returned (cloned out, to be cancelled with the GIL, outside the
    /// lock), unless a cancel was asked already; a queued one is left as it
    /// is (the registry finishes it).
    pub(super) fn ask_cancel(&self, py: Python<'_>, reason: CancelReason) -> Option<Py<PyAny>> {
        let mut state = self.state.lock();
        let State::Running {
            task, cancelled, ..
        } = &mut *state
        else {
            return None;
        };
        if cancelled.is_some() {
            return None;
        }
        *cancelled = Some(reason);
        task.as_ref().map(|task| task.clone_ref(py))
    }

    /// The task of a running call, let go of.
    pub(super) fn take_task(&self) -> Option<ForkSafeDrop<Py<PyAny>>> {
        match &mut *self.state.lock() {
            State::Running { task, .. } => task.take(),
            _ => None,
        }
    }

    /// → Done (only from `Queued` if `queued_only`): who to tell, and when
    /// the callable was called (if it was).
    pub(super) fn end(&self, queued_only: bool) -> Option<(Completion, Option<Instant>)> {
        let ended = {
            let mut state = self.state.lock();
            if queued_only && !matches!(*state, State::Queued { .. }) {
                return None;
            }
            std::mem::replace(&mut *state, State::Done)
        };
        // Outside the lock: the maker and the task are Python references,
        // whose release may run a finalizer.
        match ended {
            State::Queued { to, .. } => Some((to, None)),
            State::Running { to, launched, .. } => Some((to, Some(launched))),
            State::Done => None,
        }
    }
}
