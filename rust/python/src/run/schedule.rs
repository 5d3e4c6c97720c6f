//! `every` under a runner: armed on the core's precise timer thread
//! ([`PeriodicTimer`]), with nothing running between ticks — no task of its
//! own, only an entry in the timer's queue.
//!
//! A periodic trigger spends nearly all its life waiting. When due, the timer
//! thread hands the callback to the host (one batch for all triggers due
//! together); when the callback's task ends, the host runs [`Schedule::done`]
//! there, which arms the next deadline. No tokio task is woken per tick and
//! no thread waits on the call, which keeps a tick's cost on the loop thread
//! low and an idle trigger small.
//!
//! The grid is the core's [`FixedRate`]: fixed rate from the runner's start,
//! one overdue tick at once after an overrun, then back on the grid; calls
//! never overlap, since the next deadline is armed only when a call ends.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use agent_triggers_core::{Event, FixedRate, OnDue, PeriodicTimer};
use chrono::{DateTime, Utc};

use super::call::Due;
use super::handle::{TriggerHandle, Turn};
use crate::host::{self, CallOutcome, Host};

/// `due` on the wall clock (what `ctx.scheduled_at` shows).
pub fn wall_clock(due: Instant) -> DateTime<Utc> {
    let (now, wall) = (Instant::now(), Utc::now());
    match now.checked_duration_since(due) {
        Some(past) => wall - past,
        None => wall + due.duration_since(now),
    }
}

/// The schedule of one `every(...)` trigger under a runner.
pub struct Schedule {
    handle: Arc<TriggerHandle>,
    host: Arc<dyn Host>,
    timer: PeriodicTimer,
}

impl Schedule {
    /// The trigger of `handle` called on `host` every `period` from
    /// `started`, until [`stop`](Self::stop).
    pub fn start(
        handle: Arc<TriggerHandle>,
        host: Arc<dyn Host>,
        period: Duration,
        started: Instant,
    ) -> Arc<Self> {
        let schedule = Arc::new(Self {
            handle,
            host,
            timer: PeriodicTimer::new(FixedRate::new(period)),
        });
        schedule.arm(started + period);
        schedule
    }

    /// Arm the tick due at `due` (at once if it has passed), unless stopped.
    fn arm(self: &Arc<Self>, due: Instant) {
        // Shown before it is armed, and taken back if it was not: a stop
        // between the two leaves `None`, never a stale instant.
        self.handle.stats.set_next_due(due);
        // The schedule itself is what the timer runs: nothing is allocated
        // per tick while it waits. The timer holds it weakly: the run's
        // member owns it, and a schedule dropped with its run is not run.
        let on_due: Weak<Self> = Arc::downgrade(self);
        if !self.timer.arm(due, on_due) {
            self.handle.stats.set_next_call_at(None);
        }
    }

    /// On the timer thread: hand the callback to the host. A host that is
    /// stopping takes no new call: `done` then hears it did not run. A
    /// trigger paused, or making an extra call (`run_now`), skips the tick:
    /// the next one is armed on the grid.
    fn fire(self: &Arc<Self>, due: Instant) {
        if !self.timer.fired() {
            return;
        }
        let turn = if self.handle.is_paused() {
            None
        } else {
            self.handle.try_turn()
        };
        let Some(turn) = turn else {
            self.handle.skip();
            self.arm(self.timer.rate().next_due(due, Instant::now()));
            return;
        };
        let this = Arc::clone(self);
        let start = self
            .handle
            .start(Event::Scheduled(wall_clock(due)), Due::Instant(due), false);
        host::submit(
            &self.host,
            Arc::clone(&self.handle.name),
            start,
            Box::new(move |outcome, launched| this.done(due, outcome, launched, turn)),
        );
    }

    /// Where a call ends: report a failure, arm the next tick — counted from
    /// when the call really started, so a loop blocked past a deadline gives
    /// one late call, then the grid, never a burst (the ticks passed over
    /// count as skipped).
    fn done(
        self: &Arc<Self>,
        due: Instant,
        outcome: Option<CallOutcome>,
        launched: Option<Instant>,
        turn: Turn,
    ) {
        self.handle.call_ended();
        let rate = self.timer.rate();
        let next = rate.next_due(due, launched.unwrap_or_else(Instant::now));
        if next > due + rate.period() {
            let periods = next.duration_since(due).as_nanos() / rate.period().as_nanos();
            self.handle
                .stats
                .skipped(u64::try_from(periods - 1).unwrap_or(u64::MAX));
        }
        match outcome {
            // The turn is given back (by `ended`) before the next tick is
            // armed: an overdue one fires at once.
            Some(Ok(())) => {
                turn.ended(Some(&Ok(())));
                self.arm(next);
            }
            Some(Err(err)) => {
                // Counted after it is logged: a trigger that pauses itself
                // now says so after the failure that made it.
                let err = crate::process::with_python(|py| {
                    crate::logging::report_failure(py, &self.handle.name, err.clone_ref(py));
                    err
                });
                turn.ended(err.map(Err).as_ref());
                self.arm(next);
            }
            // Not run: the host is closed (stopping, or its loop is gone) —
            // or holds new calls for a stop that may yet fail: then the
            // schedule goes on, and a stop that goes ahead stops it.
            None => {
                drop(turn);
                if !self.host.registry().is_closed() && !self.host.is_known_closed() {
                    self.arm(next);
                }
            }
        }
    }

    /// Disarm. A call under way is the host's to cancel.
    pub fn stop(&self) {
        self.timer.stop();
        self.handle.stats.set_next_call_at(None);
    }
}

impl OnDue for Schedule {
    fn on_due(self: Arc<Self>, deadline: Instant) {
        self.fire(deadline);
    }
}
