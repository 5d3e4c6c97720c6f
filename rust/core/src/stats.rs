//! What a runner records about one trigger's calls — counts, lateness
//! percentiles, the last error — and the snapshot `runner.stats()` shows.
//!
//! Counts are atomics. Lateness goes into an HDR histogram (two significant
//! digits, microseconds, growing with the largest value seen), made on the
//! first scheduled call: a trigger that never fired holds none. Its lock is
//! never contended in practice — calls start, and snapshots are taken, on one
//! thread (the runner's loop) — and a snapshot copies three numbers out of
//! it, nothing per call.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;

use crate::sync::Mutex;

/// "No instant" in the atomics that hold one (µs since the Unix epoch).
const NONE: i64 = i64::MIN;

/// Significant decimal digits the lateness histogram keeps (1% resolution).
const SIGNIFICANT_DIGITS: u8 = 2;

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
    rare: Mutex<Option<Box<Rare>>>,
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
            rare: Mutex::new(None),
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

fn to_micros(at: Option<DateTime<Utc>>) -> i64 {
    at.map_or(NONE, |at| at.timestamp_micros())
}

fn from_micros(micros: i64) -> Option<DateTime<Utc>> {
    (micros != NONE)
        .then(|| DateTime::from_timestamp_micros(micros))
        .flatten()
}

impl CallStats {
    /// A call started at `at`; `late` after its due time, if it had one (a
    /// scheduled tick, not an extra call or a file change).
    pub fn started(&self, at: DateTime<Utc>, late: Option<Duration>) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.last_call_at
            .store(at.timestamp_micros(), Ordering::Relaxed);
        let Some(late) = late else { return };
        let micros = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        let mut rare = self.rare.lock();
        let rare = rare.get_or_insert_with(Box::default);
        rare.lateness_max = rare.lateness_max.max(micros);
        let histogram = rare.lateness.get_or_insert_with(|| {
            let mut histogram = Histogram::new(SIGNIFICANT_DIGITS)
                .expect("two significant digits are within the histogram's range");
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
            let mut rare = self.rare.lock();
            let rare = rare.get_or_insert_with(Box::default);
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
        self.next_call_at.store(to_micros(at), Ordering::Relaxed);
    }

    /// The instant [`set_next_call_at`](Self::set_next_call_at) last gave.
    pub fn next_call_at(&self) -> Option<DateTime<Utc>> {
        from_micros(self.next_call_at.load(Ordering::Relaxed))
    }

    /// A copy of the figures now; allocates nothing per call recorded.
    pub fn snapshot(&self) -> StatsSnapshot {
        let (failures, last_error, lateness) = match self.rare.lock().as_deref() {
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
        StatsSnapshot {
            calls: self.calls.load(Ordering::Relaxed),
            failures,
            consecutive_failures: self.consecutive_failures.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            last_call_at: from_micros(self.last_call_at.load(Ordering::Relaxed)),
            next_call_at: self.next_call_at(),
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
        let now = Utc::now();
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
        assert_eq!(
            snapshot.last_call_at.map(|at| at.timestamp_micros()),
            Some(now.timestamp_micros())
        );
        // No scheduled call yet: no lateness.
        assert_eq!(snapshot.lateness, None);
        assert_eq!(snapshot.next_call_at, None);
    }

    #[test]
    fn lateness_percentiles_within_one_percent_and_an_exact_max() {
        let stats = CallStats::default();
        for micros in 1..=1000 {
            stats.started(Utc::now(), Some(Duration::from_micros(micros)));
        }
        stats.started(Utc::now(), Some(Duration::from_micros(123_457)));
        let lateness = stats.snapshot().lateness.unwrap();
        assert!(lateness.p50 <= lateness.p99 && lateness.p99 <= lateness.max);
        let close =
            |got: Duration, want: f64| (got.as_micros() as f64 - want).abs() <= want / 100.0;
        assert!(close(lateness.p50, 501.0), "{lateness:?}");
        assert!(close(lateness.p99, 991.0), "{lateness:?}");
        assert_eq!(lateness.max, Duration::from_micros(123_457));
    }

    #[test]
    fn a_percentile_is_never_above_the_max() {
        let stats = CallStats::default();
        // 899 µs is stored in a bucket whose highest equivalent value is above it.
        for _ in 0..100 {
            stats.started(Utc::now(), Some(Duration::from_micros(899)));
        }
        let lateness = stats.snapshot().lateness.unwrap();
        assert_eq!(lateness.p99, Duration::from_micros(899));
        assert_eq!(lateness.max, Duration::from_micros(899));
    }

    #[test]
    fn an_idle_trigger_holds_no_histogram() {
        let stats = CallStats::default();
        stats.set_next_call_at(Some(Utc::now()));
        stats.started(Utc::now(), None);
        assert!(stats.rare.lock().is_none());
        assert!(std::mem::size_of::<CallStats>() <= 64);
        assert!(stats.snapshot().next_call_at.is_some());
    }
}
