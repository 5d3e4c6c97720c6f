//! One-shot triggers: a single call after a delay or at a wall-clock time.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use tokio::time::Instant;

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
}

enum Wait {
    /// The deadline, and the same instant on the wall clock (what the call
    /// is told it was scheduled for).
    Until(Instant, DateTime<Utc>),
    UntilWall(DateTime<Utc>, Arc<dyn WallClock>),
    Fired,
}

impl OneShot {
    /// A one-shot counting from now. Must be called within a tokio runtime.
    pub fn new(deadline: Deadline) -> Self {
        let wait = match deadline {
            Deadline::After(delay) => Wait::Until(
                Instant::now() + delay,
                Utc::now() + TimeDelta::from_std(delay).unwrap_or(TimeDelta::MAX),
            ),
            Deadline::At(when, clock) => Wait::UntilWall(when, clock),
        };
        Self { wait }
    }
}

#[async_trait]
impl EventSource for OneShot {
    async fn next(&mut self) -> Option<Event> {
        let event = match &self.wait {
            Wait::Until(instant, wall) => {
                tokio::time::sleep_until(*instant).await;
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
