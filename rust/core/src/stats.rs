//! What a runner records about one trigger's calls — counts, lateness
//! percentiles, the last error — and the snapshot `runner.stats()` shows.
//!
//! Counts are atomics. Lateness goes into an HDR histogram (one significant
//! digit, microseconds, growing with the largest value seen), made on the
//! first scheduled call: a trigger that never fired holds none. Its lock is
//! never contended in practice — calls start, and snapshots are taken, on one
//! thread (the runner's loop) — and a snapshot copies three numbers out of
//! it, nothing per call.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use once_cell::race::OnceBox;

use crate::sync::Mutex;

/// "No instant" in the atomics that hold one (µs since the Unix epoch).
const NONE: i64 = i64::MIN;

/// Significant decimal digits the lateness histogram keeps: one, so values
/// are told apart within 1/16 (6%) — enough to tell 0.4 ms from 0.5 ms or a
/// p99 of 2 ms from one of 20 — in a few hundred bytes per trigger (two
/// digits cost 5–8 KB: 10,000 ticking triggers would carry 80 MB of them).
const SIGNIFICANT_DIGITS: u8 = 1;

/// The calls of one trigger, as they happen. Small (it is kept for every
/// trigger, most of them idle): the counts every call touches inline, the
/// rest in a box made by the first failure or scheduled call.
#[derive(Debug)]
pub struct CallStats {
    calls: AtomicU64,
    consecutive_failures: AtomicU64,
    skipped: AtomicU64,
    last_call_at: AtomicI64,
    next_call_at: AtomicI64,
    /// Made on first use: one word while the trigger has neither failed
    /// nor made a scheduled call.
    rare: OnceBox<Mutex<Rare>>,
}

/// What only a trigger that has failed, or made a scheduled call, needs.
#[derive(Debug, Default)]
struct Rare {
    failures: u64,
    last_error: Option<Arc<str>>,
    lateness: Option<Histogram<u32>>,
    /// Microseconds late, exactly (the histogram rounds).
    lateness_max: u64,
}

impl Default for CallStats {
    fn default() -> Self {
        Self {
            calls: AtomicU64::new(0),
            consecutive_failures: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            last_call_at: AtomicI64::new(NONE),
            next_call_at: AtomicI64::new(NONE),
            rare: OnceBox::new(),
        }
    }
}

/// How late a trigger's scheduled calls started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lateness {
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

/// A copy of a trigger's [`CallStats`] at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub calls: u64,
    pub failures: u64,
    pub consecutive_failures: u64,
    pub skipped: u64,
    pub last_call_at: Option<DateTime<Utc>>,
    pub next_call_at: Option<DateTime<Utc>>,
    /// `None` before the first scheduled call.
    pub lateness: Option<Lateness>,
    pub last_error: Option<Arc<str>>,
}

/// Where a source that skips ticks on its own (a fleet's) records them, and
/// its next tick.
pub trait RecordTicks: Send + Sync {
    /// `count` ticks came due and made no call.
    fn skipped(&self, count: u64);
    /// When the next call is due, as far as is known (`None`: no call is).
    fn set_next_call_at(&self, at: Option<DateTime<Utc>>);
}

impl RecordTicks for CallStats {
    fn skipped(&self, count: u64) {
        CallStats::skipped(self, count);
    }

    fn set_next_call_at(&self, at: Option<DateTime<Utc>>) {
        CallStats::set_next_call_at(self, at);
    }
}

/// An instant kept in one atomic word, as the tick path gives it — without
/// reading a clock there: a monotonic [`Instant`] (nanoseconds since a
/// process-wide origin, low bit 1) or a wall-clock time (µs since the Unix
/// epoch, low bit 0); [`NONE`] for none. Turned into wall-clock time when a
/// snapshot is taken (a monotonic one as of that moment's clocks).
mod stamp {
    use std::sync::OnceLock;
    use std::time::Instant;

    use chrono::{DateTime, TimeDelta, Utc};

    use super::NONE;

    fn origin() -> Instant {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        *ORIGIN.get_or_init(Instant::now)
    }

    pub fn monotonic(at: Instant) -> i64 {
        let nanos = at.saturating_duration_since(origin()).as_nanos();
        i64::try_from(nanos).map_or(NONE, |nanos| nanos << 1 | 1)
    }

    pub fn wall(at: Option<DateTime<Utc>>) -> i64 {
        at.map_or(NONE, |at| at.timestamp_micros() << 1)
    }

    /// `stamp` as wall-clock time; `clocks` the two clocks read once by the
    /// snapshot taking it.
    pub fn read(stamp: i64, clocks: (Instant, DateTime<Utc>)) -> Option<DateTime<Utc>> {
        if stamp == NONE {
            return None;
        }
        if stamp & 1 == 0 {
            return DateTime::from_timestamp_micros(stamp >> 1);
        }
        let at = origin() + std::time::Duration::from_nanos((stamp >> 1) as u64);
        let (now, wall) = clocks;
        Some(match now.checked_duration_since(at) {
            Some(ago) => wall - TimeDelta::from_std(ago).unwrap_or_default(),
            None => wall + TimeDelta::from_std(at - now).unwrap_or_default(),
        })
    }
}

impl CallStats {
    /// A call started at `at`; `late` after its due time, if it had one (a
    /// scheduled tick, not an extra call or a file change).
    pub fn started(&self, at: Instant, late: Option<Duration>) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.last_call_at
            .store(stamp::monotonic(at), Ordering::Relaxed);
        let Some(late) = late else { return };
        let micros = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        let mut rare = self.rare.get_or_init(Box::default).lock();
        rare.lateness_max = rare.lateness_max.max(micros);
        let histogram = rare.lateness.get_or_insert_with(|| {
            let mut histogram = Histogram::new(SIGNIFICANT_DIGITS)
                .expect("one significant digit is within the histogram's range");
            histogram.auto(true);
            histogram
        });
        // With auto-resize a value is out of range only past what memory can
        // index: then it counts as the largest trackable one.
        if histogram.record(micros).is_err() {
            histogram.saturating_record(micros);
        }
    }

    /// A call ended normally (or was cancelled by a stop): the failures in a
    /// row start over.
    pub fn succeeded(&self) {
        self.consecutive_failures.store(0, Ordering::Relaxed);
    }

    /// A call failed with `error`; returns the failures in a row so far.
    pub fn failed(&self, error: &str) -> u64 {
        {
            let mut rare = self.rare.get_or_init(Box::default).lock();
            rare.failures += 1;
            rare.last_error = Some(error.into());
        }
        self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The failures in a row start over (the trigger was resumed).
    pub fn reset_consecutive_failures(&self) {
        self.consecutive_failures.store(0, Ordering::Relaxed);
    }

    /// `count` ticks came due and made no call (overrun, pause, fleet).
    pub fn skipped(&self, count: u64) {
        self.skipped.fetch_add(count, Ordering::Relaxed);
    }

    /// When the next call is due, as far as is known (`None`: no call is).
    pub fn set_next_call_at(&self, at: Option<DateTime<Utc>>) {
        self.next_call_at.store(stamp::wall(at), Ordering::Relaxed);
    }

    /// The next call is due at `due` on the monotonic clock (a precise
    /// timer's deadline): no clock is read.
    pub fn set_next_due(&self, due: Instant) {
        self.next_call_at
            .store(stamp::monotonic(due), Ordering::Relaxed);
    }

    /// A copy of the figures now; allocates nothing per call recorded.
    pub fn snapshot(&self) -> StatsSnapshot {
        let (failures, last_error, lateness) = match self.rare.get().map(Mutex::lock).as_deref() {
            None => (0, None, None),
            Some(rare) => {
                let lateness = rare.lateness.as_ref().map(|histogram| {
                    // The histogram rounds within its resolution, the max is
                    // exact: a percentile is never shown above it.
                    let max = rare.lateness_max;
                    let at = |quantile| {
                        Duration::from_micros(histogram.value_at_quantile(quantile).min(max))
                    };
                    Lateness {
                        p50: at(0.50),
                        p99: at(0.99),
                        max: Duration::from_micros(max),
                    }
                });
                (rare.failures, rare.last_error.clone(), lateness)
            }
        };
        let clocks = (Instant::now(), Utc::now());
        StatsSnapshot {
            calls: self.calls.load(Ordering::Relaxed),
            failures,
            consecutive_failures: self.consecutive_failures.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            last_call_at: stamp::read(self.last_call_at.load(Ordering::Relaxed), clocks),
            next_call_at: stamp::read(self.next_call_at.load(Ordering::Relaxed), clocks),
            lateness,
            last_error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_failures_in_a_row() {
        let stats = CallStats::default();
        let (now, wall) = (Instant::now(), Utc::now());
        stats.started(now, None);
        assert_eq!(stats.failed("ValueError: one"), 1);
        assert_eq!(stats.failed("ValueError: two"), 2);
        stats.succeeded();
        stats.skipped(3);
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.calls, 1);
        assert_eq!(snapshot.failures, 2);
        assert_eq!(snapshot.consecutive_failures, 0);
        assert_eq!(snapshot.skipped, 3);
        assert_eq!(snapshot.last_error.as_deref(), Some("ValueError: two"));
        let shown = snapshot.last_call_at.unwrap();
        assert!(
            (shown - wall).abs() < chrono::TimeDelta::milliseconds(5),
            "{shown} {wall}"
        );
        // No scheduled call yet: no lateness.
        assert_eq!(snapshot.lateness, None);
        assert_eq!(snapshot.next_call_at, None);
    }

    #[test]
    fn lateness_percentiles_within_their_resolution_and_an_exact_max() {
        let stats = CallStats::default();
        for micros in 1..=1000 {
            stats.started(Instant::now(), Some(Duration::from_micros(micros)));
        }
        stats.started(Instant::now(), Some(Duration::from_micros(123_457)));
        let lateness = stats.snapshot().lateness.unwrap();
        assert!(lateness.p50 <= lateness.p99 && lateness.p99 <= lateness.max);
        let close = |got: Duration, want: f64| (got.as_micros() as f64 - want).abs() <= want / 16.0;
        assert!(close(lateness.p50, 501.0), "{lateness:?}");
        assert!(close(lateness.p99, 991.0), "{lateness:?}");
        assert_eq!(lateness.max, Duration::from_micros(123_457));
    }

    #[test]
    fn a_histogram_of_lateness_up_to_100_ms_stays_under_a_kilobyte() {
        let stats = CallStats::default();
        for micros in [1, 10, 100, 1_000, 10_000, 100_000] {
            stats.started(Instant::now(), Some(Duration::from_micros(micros)));
        }
        let rare = stats.rare.get().unwrap().lock();
        let histogram = rare.lateness.as_ref().unwrap();
        assert!(
            histogram.distinct_values() * 4 <= 1024,
            "{}",
            histogram.distinct_values()
        );
    }

    #[test]
    fn a_monotonic_next_due_reads_as_wall_clock_time() {
        let stats = CallStats::default();
        let (now, wall) = (Instant::now(), Utc::now());
        stats.set_next_due(now + Duration::from_secs(2));
        let next = stats.snapshot().next_call_at.unwrap();
        let expected = wall + chrono::TimeDelta::seconds(2);
        assert!(
            (next - expected).abs() < chrono::TimeDelta::milliseconds(5),
            "{next} {expected}"
        );
        stats.set_next_call_at(None);
        assert_eq!(stats.snapshot().next_call_at, None);
    }

    #[test]
    fn a_percentile_is_never_above_the_max() {
        let stats = CallStats::default();
        // 899 µs is stored in a bucket whose highest equivalent value is above it.
        for _ in 0..100 {
            stats.started(Instant::now(), Some(Duration::from_micros(899)));
        }
        let lateness = stats.snapshot().lateness.unwrap();
        assert_eq!(lateness.p99, Duration::from_micros(899));
        assert_eq!(lateness.max, Duration::from_micros(899));
    }

    #[test]
    fn an_idle_trigger_holds_no_histogram() {
        let stats = CallStats::default();
        stats.set_next_call_at(Some(Utc::now()));
        stats.started(Instant::now(), None);
        assert!(stats.rare.get().is_none());
        assert!(std::mem::size_of::<CallStats>() <= 48);
        assert!(stats.snapshot().next_call_at.is_some());
    }
}
