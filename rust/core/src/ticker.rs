//! The fixed-rate schedule behind periodic triggers.

use std::time::Duration;

use async_trait::async_trait;

use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::source::{Event, EventSource};

/// A fixed-rate schedule: tick `k` is due at `start + k·period` (`k ≥ 1`).
///
/// The first tick comes one period after the ticker is made, not at once. The
/// schedule never drifts: how long the caller takes between ticks does not move
/// later deadlines. A caller that falls behind gets one overdue tick at once and
/// then resumes on the original grid: the other ticks it missed are skipped, never
/// delivered as a burst (tokio's [`MissedTickBehavior::Skip`]).
#[derive(Debug)]
pub struct Ticker {
    interval: Interval,
}

impl Ticker {
    /// A schedule with the given `period`, starting now.
    ///
    /// Must be called within a tokio runtime.
    ///
    /// # Panics
    /// If `period` is zero.
    pub fn new(period: Duration) -> Self {
        assert!(!period.is_zero(), "a ticker's period must be positive");
        let mut interval = tokio::time::interval_at(Instant::now() + period, period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
        Self { interval }
    }

    /// The period between ticks.
    pub fn period(&self) -> Duration {
        self.interval.period()
    }

    /// Wait for the next due tick and return the instant it was due.
    ///
    /// Cancel safe: dropping the future does not consume a tick.
    pub async fn tick(&mut self) -> Instant {
        self.interval.tick().await
    }
}

#[async_trait]
impl EventSource for Ticker {
    async fn next(&mut self) -> Option<Event> {
        self.tick().await;
        Some(Event::Tick)
    }
}
