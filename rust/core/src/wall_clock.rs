//! Wall-clock time for triggers that fire at calendar times (cron, `at`).

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Where "now" comes from. The system clock in production; tests substitute a
/// clock driven by tokio's paused time.
pub trait WallClock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl WallClock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The longest single sleep towards a wall-clock deadline: the clock is read
/// again at least this often, so a clock set forward or back (NTP, a resumed
/// laptop) moves the wake-up within a minute.
const RECHECK: Duration = Duration::from_secs(60);

/// Sleep until `clock` reads `deadline` or later.
pub async fn sleep_until(clock: &dyn WallClock, deadline: DateTime<Utc>) {
    loop {
        let Ok(left) = (deadline - clock.now()).to_std() else {
            return; // already past
        };
        if left.is_zero() {
            return;
        }
        tokio::time::sleep(left.min(RECHECK)).await;
    }
}
