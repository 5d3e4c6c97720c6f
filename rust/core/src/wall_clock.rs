//! Wall-clock time for triggers that fire at calendar times (cron, `at`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::periodic::sleep_precisely_until;

/// Where "now" comes from. The system clock in production; tests substitute a
/// clock driven by tokio's paused time.
pub trait WallClock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;

    /// Whether the clock runs in real time, so that the last stretch of a
    /// sleep towards one of its deadlines can be timed by the precise timer
    /// thread (microseconds late, not tokio's 1–2 ms). A clock driven by
    /// tokio's paused time must say `false` (the default).
    fn is_real_time(&self) -> bool {
        false
    }
}

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl WallClock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn is_real_time(&self) -> bool {
        true
    }
}

/// The longest single sleep towards a wall-clock deadline: the clock is read
/// again at least this often, so a clock set forward or back (NTP, a resumed
/// laptop) moves the wake-up within a minute.
const RECHECK: Duration = Duration::from_secs(60);

/// Sleep until `clock` reads `deadline` or later. On a real-time clock, the
/// last stretch (under [`RECHECK`]) is one precise sleep on the monotonic
/// clock; the wall clock is read again after it, so a step of the clock
/// meanwhile only adds a further sleep.
pub async fn sleep_until(clock: &dyn WallClock, deadline: DateTime<Utc>) {
    loop {
        let Ok(left) = (deadline - clock.now()).to_std() else {
            return; // already past
        };
        if left.is_zero() {
            return;
        }
        if clock.is_real_time() && left <= RECHECK {
            sleep_precisely_until(Instant::now() + left).await;
        } else {
            tokio::time::sleep(left.min(RECHECK)).await;
        }
    }
}
