//! The instants a fleet's replicas agree on: a keyed trigger's ticks, named
//! by the Unix-epoch millisecond they are due at.
//!
//! A periodic keyed trigger ticks at `phase + k·period` after the epoch, with
//! `phase` derived from its key by FNV-1a (64 bits) — a published hash, so the
//! grid is the same in every process, on every machine and in every version
//! of this crate: `phase` is that hash modulo the period in microseconds, in
//! microseconds (Python's `datetime` resolution, so a tick shown as
//! `ctx.scheduled_at` is exact when the period is a whole number of them). Spreading phases by key keeps a fleet's ticks from all
//! falling on the same instant (and Redis from seeing them all at once).

use std::hash::Hasher;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

/// The shortest period of a keyed periodic trigger: ticks are named by the
/// millisecond, so two ticks of one key must not share one.
pub const MIN_PERIOD: Duration = Duration::from_millis(1);

/// The epoch-aligned grid of a keyed periodic trigger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochGrid {
    period_ns: i128,
    phase_ns: i128,
}

impl EpochGrid {
    /// The grid of `period` for `key`.
    ///
    /// # Panics
    /// If `period` is under [`MIN_PERIOD`].
    pub fn new(key: &str, period: Duration) -> Self {
        assert!(period >= MIN_PERIOD, "a keyed period must be at least 1 ms");
        let period_ns = period.as_nanos() as i128;
        let mut hash = fnv::FnvHasher::default();
        hash.write(key.as_bytes());
        Self {
            period_ns,
            phase_ns: i128::from(hash.finish()) % (period_ns / 1000) * 1000,
        }
    }

    /// The period between ticks.
    pub fn period(&self) -> Duration {
        Duration::from_nanos(self.period_ns as u64)
    }

    /// The offset of the grid from the epoch, in `0..period`.
    pub fn phase(&self) -> Duration {
        Duration::from_nanos(self.phase_ns as u64)
    }

    /// The first tick strictly after `now`.
    pub fn next_after(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let now_ns = i128::from(now.timestamp_nanos_opt().unwrap_or(i64::MAX));
        let k = (now_ns - self.phase_ns).div_euclid(self.period_ns) + 1;
        let tick_ns = self.phase_ns + k * self.period_ns;
        DateTime::from_timestamp_nanos(i64::try_from(tick_ns).unwrap_or(i64::MAX))
    }
}

/// A tick's name in Redis: the millisecond it is due at, since the epoch.
pub fn tick_id(due: DateTime<Utc>) -> i64 {
    due.timestamp_millis()
}

/// `due` as a deadline on the monotonic clock, read now (past: now).
pub fn monotonic(due: DateTime<Utc>) -> std::time::Instant {
    let now = std::time::Instant::now();
    match (due - Utc::now()).to_std() {
        Ok(ahead) => now + ahead,
        Err(_) => now,
    }
}

/// How far past `due` the clock reads (zero if `due` is ahead).
pub fn late(due: DateTime<Utc>) -> Duration {
    (Utc::now() - due)
        .max(TimeDelta::zero())
        .to_std()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phase_is_the_published_fnv1a_of_the_key() {
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c (the published test vector).
        let grid = EpochGrid::new("a", Duration::from_secs(1000));
        assert_eq!(
            grid.phase().as_nanos(),
            0xaf63_dc4c_8601_ec8c_u64 as u128 % 1_000_000_000 * 1000
        );
    }

    #[test]
    fn ticks_lie_on_the_grid_and_come_strictly_after_now() {
        let grid = EpochGrid::new("heartbeat", Duration::from_millis(250));
        let now = Utc::now();
        let next = grid.next_after(now);
        assert!(next > now && next - now <= TimeDelta::milliseconds(250));
        let offset = (next.timestamp_nanos_opt().unwrap() as i128) % 250_000_000;
        assert_eq!(offset as u128, grid.phase().as_nanos());
        assert_eq!(grid.next_after(next), next + TimeDelta::milliseconds(250));
    }

    #[test]
    fn a_tick_is_named_by_its_millisecond() {
        let due = DateTime::from_timestamp_nanos(1_765_000_000_123_456_789);
        assert_eq!(tick_id(due), 1_765_000_000_123);
    }
}
