//! One-shot triggers: a single call after a delay or at a wall-clock time.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use tokio::time::Instant;

use crate::periodic::sleep_precisely_until;
use crate::source::{Event, EventSource};
use crate::wall_clock::{WallClock, sleep_until};

/// When a one-shot fires.
#[derive(Clone)]
pub enum Deadline {
    /// This long after the trigger starts.
    After(Duration),
    /// At this wall-clock time (at once if it has passed).
    At(DateTime<Utc>, Arc<dyn WallClock>),
}

/// Ticks once, at its deadline, then is exhausted.
pub struct OneShot {
    wait: Wait,
    /// An `After` deadline is timed by the precise timer thread at its end.
    precise: bool,
}

enum Wait {
    /// The deadline, and the same instant on the wall clock (what the call
    /// is told it was scheduled for).
    Until(Instant, DateTime<Utc>),
    UntilWall(DateTime<Utc>, Arc<dyn WallClock>),
    Fired,
}

impl OneShot {
    /// A one-shot counting from now. An `After` deadline is timed by tokio
    /// alone (it follows tokio's paused clock in tests); an `At` one as its
    /// clock says ([`WallClock::is_real_time`]). Must be called within a
    /// tokio runtime.
    pub fn new(deadline: Deadline) -> Self {
        Self::from(Instant::now(), deadline, false)
    }

    /// A one-shot counting from `start` (an `After` delay does) whose call
    /// comes microseconds, not milliseconds, after its deadline: the last
    /// stretch of the wait is on the precise timer thread (a wall-clock
    /// deadline's is, if its clock [is real time](WallClock::is_real_time)).
    /// Must be called within a tokio runtime.
    pub fn precise(start: Instant, deadline: Deadline) -> Self {
        Self::from(start, deadline, true)
    }

    fn from(start: Instant, deadline: Deadline, precise: bool) -> Self {
        let wait = match deadline {
            Deadline::After(delay) => {
                let due = start + delay;
                // The same instant on the wall clock (`due` may be past).
                let (now, wall_now) = (Instant::now(), Utc::now());
                let wall = if due >= now {
                    wall_now + TimeDelta::from_std(due - now).unwrap_or(TimeDelta::MAX)
                } else {
                    wall_now - TimeDelta::from_std(now - due).unwrap_or_default()
                };
                Wait::Until(due, wall)
            }
            Deadline::At(when, clock) => Wait::UntilWall(when, clock),
        };
        Self { wait, precise }
    }
}

#[async_trait]
impl EventSource for OneShot {
    async fn next(&mut self) -> Option<Event> {
        let event = match &self.wait {
            Wait::Until(instant, wall) => {
                if self.precise {
                    sleep_precisely_until(*instant).await;
                } else {
                    tokio::time::sleep_until(*instant).await;
                }
                Event::Scheduled(*wall)
            }
            Wait::UntilWall(when, clock) => {
                sleep_until(&**clock, *when).await;
                Event::Scheduled(*when)
            }
            Wait::Fired => return None,
        };
        self.wait = Wait::Fired;
        Some(event)
    }
}
