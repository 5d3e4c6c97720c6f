//! The fixed-rate schedule of periodic triggers, in one place: its grid and
//! what it does with missed ticks ([`FixedRate`]), waited for either as an
//! async source ([`Ticker`], what `trig(ctx)` runs on its own) or as entries
//! of the precise timer thread ([`PeriodicTimer`], what a runner arms: no
//! task, nothing running between ticks).

use std::num::NonZeroU64;
use std::sync::Weak;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::precise_timer::{self, OnDue, TimerKey, call_at};
use crate::source::{Event, EventSource};

/// How far before a deadline a precise ticker hands over from tokio's
/// millisecond timer wheel to the high-resolution timer thread.
const HANDOVER: Duration = Duration::from_millis(2);

/// What a schedule does with the ticks it missed (its caller ran past them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissedTicks {
    /// One overdue tick at once, then back on the original grid: the other
    /// missed ticks are skipped, never delivered as a burst (tokio's
    /// `MissedTickBehavior::Skip`). A tick counts as missed once it is
    /// `late` or later (or a whole period, if that is shorter).
    Skip { late: Duration },
}

impl Default for MissedTicks {
    fn default() -> Self {
        Self::Skip {
            late: Duration::from_millis(5),
        }
    }
}

/// A fixed-rate grid: tick `k` is due at `start + k·period` (`k ≥ 1`). How
/// long the caller takes between ticks does not move later deadlines.
/// (Only the default [`MissedTicks`] is built: a grid keeps no policy of its
/// own, and its period is 8 bytes of nanoseconds — every armed schedule
/// holds one.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedRate {
    nanos: NonZeroU64,
}

impl FixedRate {
    /// A grid of `period`, skipping missed ticks ([`MissedTicks::default`]).
    ///
    /// # Panics
    /// If `period` is zero, or over 584 years (`u64` nanoseconds).
    pub fn new(period: Duration) -> Self {
        let nanos = u64::try_from(period.as_nanos()).expect("a schedule's period fits in u64 ns");
        Self {
            nanos: NonZeroU64::new(nanos).expect("a schedule's period must be positive"),
        }
    }

    /// The period between ticks.
    pub fn period(&self) -> Duration {
        Duration::from_nanos(self.nanos.get())
    }

    /// The deadline after the tick due at `due`, whose call began at `now`:
    /// one period on — or, if the tick came late enough to count as missed,
    /// the first grid point after `now` (the overdue tick itself has just
    /// run: the ones between are skipped).
    pub fn next_due<I>(&self, due: I, now: I) -> I
    where
        I: Copy
            + PartialOrd
            + std::ops::Add<Duration, Output = I>
            + std::ops::Sub<I, Output = Duration>,
    {
        let MissedTicks::Skip { late } = MissedTicks::default();
        let period = self.period();
        if now >= due + late.min(period) {
            let behind = (now - due).as_nanos() / period.as_nanos();
            due + period * u32::try_from(behind + 1).unwrap_or(u32::MAX)
        } else {
            due + period
        }
    }
}

/// A [`FixedRate`] schedule as an async source: the first tick comes one
/// period after the ticker is made, not at once.
///
/// A [`precise`](Self::precise) ticker finishes each wait on the
/// high-resolution timer thread (tens of microseconds late instead of
/// 1–2 ms); a [`new`](Self::new) one waits on tokio alone, so it follows
/// tokio's paused clock in tests.
#[derive(Debug)]
pub struct Ticker {
    rate: FixedRate,
    next: Instant,
    precise: bool,
}

impl Ticker {
    /// A schedule with the given `period`, starting now, timed by tokio alone.
    ///
    /// # Panics
    /// If `period` is zero, or over 584 years.
    pub fn new(period: Duration) -> Self {
        Self::starting_at(Instant::now(), period, false)
    }

    /// A schedule with the given `period`, starting now, whose ticks are timed
    /// to the microsecond rather than the millisecond.
    ///
    /// # Panics
    /// If `period` is zero, or over 584 years.
    pub fn precise(period: Duration) -> Self {
        Self::starting_at(Instant::now(), period, true)
    }

    /// A schedule whose first tick is due one `period` after `start`; `precise`
    /// as for [`precise`](Self::precise).
    ///
    /// # Panics
    /// If `period` is zero, or over 584 years.
    pub fn starting_at(start: Instant, period: Duration, precise: bool) -> Self {
        Self {
            rate: FixedRate::new(period),
            next: start + period,
            precise,
        }
    }

    /// The period between ticks.
    pub fn period(&self) -> Duration {
        self.rate.period()
    }

    /// Wait for the next due tick and return the instant it was due.
    ///
    /// Cancel safe: dropping the future does not consume a tick.
    pub async fn tick(&mut self) -> Instant {
        let due = self.next;
        if self.precise {
            sleep_precisely_until(due).await;
        } else {
            tokio::time::sleep_until(due).await;
        }
        self.next = self.rate.next_due(due, Instant::now());
        due
    }
}

/// Sleep until `due`: on tokio's timer wheel until shortly before, then on
/// the high-resolution timer thread (tens of microseconds late, not 1–2 ms).
pub(crate) async fn sleep_precisely_until(due: Instant) {
    if let Some(handover) = due.checked_sub(HANDOVER) {
        tokio::time::sleep_until(handover).await;
    }
    precise_timer::sleep_until(due.into_std()).await;
}

#[async_trait]
impl EventSource for Ticker {
    async fn next(&mut self) -> Option<Event> {
        self.tick().await;
        Some(Event::Tick)
    }
}

/// A [`FixedRate`] schedule armed on the precise timer thread, one tick at a
/// time: the owner arms a tick, is called on the timer thread when it is due
/// (it must hand the work elsewhere at once), and arms the next one when that
/// work ends — so calls never overlap.
///
/// 16 bytes: the grid, and one word: the key of the tick armed last (0 if
/// none was; it may have fired already), or `STOPPED` for good.
#[derive(Debug)]
pub struct PeriodicTimer {
    rate: FixedRate,
    armed: AtomicU64,
}

/// The `armed` word of a stopped timer (no key is `u64::MAX`: keys count up
/// from 1, one per deadline the process ever armed).
const STOPPED: u64 = u64::MAX;

impl PeriodicTimer {
    pub fn new(rate: FixedRate) -> Self {
        Self {
            rate,
            armed: AtomicU64::new(0),
        }
    }

    /// The schedule's grid.
    pub fn rate(&self) -> FixedRate {
        self.rate
    }

    /// Run `on_due` on the timer thread at `due` (at once if it has passed),
    /// unless stopped, or dropped by then (the timer holds it weakly: see
    /// [`call_at`]); returns whether it was armed.
    pub fn arm(&self, due: std::time::Instant, on_due: Weak<dyn OnDue>) -> bool {
        if self.armed.load(Ordering::Acquire) == STOPPED {
            return false;
        }
        let key = call_at(due, on_due);
        // Kept for `stop` unless it stopped meanwhile: then this tick is
        // taken back (and, if it fired already, `fired` said so). Keys only
        // grow: if this tick fired and the next was armed (on the timer
        // thread) before this store, the newer key stays.
        let kept = self
            .armed
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |armed| {
                (armed != STOPPED).then_some(armed.max(key.get()))
            });
        if kept.is_err() {
            key.cancel();
        }
        kept.is_ok()
    }

    /// On the timer thread, as an armed tick runs: `false` if the schedule
    /// was stopped meanwhile (the tick must not run).
    pub fn fired(&self) -> bool {
        self.armed
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |armed| {
                (armed != STOPPED).then_some(0)
            })
            .is_ok()
    }

    /// Disarm for good.
    pub fn stop(&self) {
        let armed = self.armed.swap(STOPPED, Ordering::AcqRel);
        if let Some(key) = TimerKey::from_u64(armed).filter(|_| armed != STOPPED) {
            key.cancel();
        }
    }
}
