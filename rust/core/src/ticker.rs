//! The fixed-rate schedule behind periodic triggers.

use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::precise_timer;
use crate::source::{Event, EventSource};

/// How far before a deadline a precise ticker hands over from tokio's
/// millisecond timer wheel to the high-resolution timer thread.
const HANDOVER: Duration = Duration::from_millis(2);

/// A tick this late (or later) counts as missed: the schedule realigns.
const MISSED: Duration = Duration::from_millis(5);

/// A fixed-rate schedule: tick `k` is due at `start + k·period` (`k ≥ 1`).
///
/// The first tick comes one period after the ticker is made, not at once. The
/// schedule never drifts: how long the caller takes between ticks does not move
/// later deadlines. A caller that falls behind gets one overdue tick at once and
/// then resumes on the original grid: the other ticks it missed are skipped, never
/// delivered as a burst (the semantics of tokio's `MissedTickBehavior::Skip`).
///
/// A [`precise`](Self::precise) ticker finishes each wait on a high-resolution
/// timer (tens of microseconds late instead of 1–2 ms); a [`new`](Self::new)
/// one waits on tokio alone, so it follows tokio's paused clock in tests.
#[derive(Debug)]
pub struct Ticker {
    period: Duration,
    next: Instant,
    precise: bool,
}

impl Ticker {
    /// A schedule with the given `period`, starting now, timed by tokio alone.
    ///
    /// # Panics
    /// If `period` is zero.
    pub fn new(period: Duration) -> Self {
        Self::starting_at(Instant::now(), period, false)
    }

    /// A schedule with the given `period`, starting now, whose ticks are timed
    /// to the microsecond rather than the millisecond.
    ///
    /// # Panics
    /// If `period` is zero.
    pub fn precise(period: Duration) -> Self {
        Self::starting_at(Instant::now(), period, true)
    }

    /// A schedule whose first tick is due one `period` after `start`; `precise`
    /// as for [`precise`](Self::precise).
    ///
    /// # Panics
    /// If `period` is zero.
    pub fn starting_at(start: Instant, period: Duration, precise: bool) -> Self {
        assert!(!period.is_zero(), "a ticker's period must be positive");
        Self {
            period,
            next: start + period,
            precise,
        }
    }

    /// The period between ticks.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Wait for the next due tick and return the instant it was due.
    ///
    /// Cancel safe: dropping the future does not consume a tick.
    pub async fn tick(&mut self) -> Instant {
        let due = self.next;
        if self.precise {
            if let Some(handover) = due.checked_sub(HANDOVER) {
                tokio::time::sleep_until(handover).await;
            }
            precise_timer::sleep_until(due.into_std()).await;
        } else {
            tokio::time::sleep_until(due).await;
        }
        self.next = next_due(due, Instant::now(), self.period);
        due
    }
}

/// The deadline after a tick due at `due` fired at `now`: one period on, or,
/// if the tick came late enough to count as missed — 5 ms, or a whole period if
/// that is shorter — the first grid point after `now` (the overdue tick itself
/// has just run: the ones between are skipped, never burst).
pub fn next_due<I>(due: I, now: I, period: Duration) -> I
where
    I: Copy
        + PartialOrd
        + std::ops::Add<Duration, Output = I>
        + std::ops::Sub<I, Output = Duration>,
{
    if now >= due + MISSED.min(period) {
        let behind = (now - due).as_nanos() / period.as_nanos();
        due + period * u32::try_from(behind + 1).unwrap_or(u32::MAX)
    } else {
        due + period
    }
}

#[async_trait]
impl EventSource for Ticker {
    async fn next(&mut self) -> Option<Event> {
        self.tick().await;
        Some(Event::Tick)
    }
}
