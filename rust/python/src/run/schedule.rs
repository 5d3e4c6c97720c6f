//! `every` under a runner: armed on the core's precise timer thread
//! ([`PeriodicTimer`]), with nothing running between ticks — no task of its
//! own, only an entry in the timer's map.
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

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_triggers_core::{Event, FixedRate, PeriodicTimer};
use chrono::{DateTime, Utc};

use super::plan::TriggerCall;
use crate::host::{self, CallOutcome, Host};

/// `due` on the wall clock (what `ctx.scheduled_at` shows).
fn wall_clock(due: Instant) -> DateTime<Utc> {
    let (now, wall) = (Instant::now(), Utc::now());
    match now.checked_duration_since(due) {
        Some(past) => wall - past,
        None => wall + due.duration_since(now),
    }
}

/// The schedule of one `every(...)` trigger under a runner.
pub struct Schedule {
    call: Arc<TriggerCall>,
    host: Arc<dyn Host>,
    timer: PeriodicTimer,
}

impl Schedule {
    /// `call` made on `host` every `period` from `started`, until [`stop`](Self::stop).
    pub fn start(
        call: Arc<TriggerCall>,
        host: Arc<dyn Host>,
        period: Duration,
        started: Instant,
    ) -> Arc<Self> {
        let schedule = Arc::new(Self {
            call,
            host,
            timer: PeriodicTimer::new(FixedRate::new(period)),
        });
        schedule.arm(started + period);
        schedule
    }

    /// Arm the tick due at `due` (at once if it has passed), unless stopped.
    fn arm(self: &Arc<Self>, due: Instant) {
        let this = Arc::clone(self);
        self.timer.arm(due, Arc::new(move || this.fire(due)));
    }

    /// On the timer thread: hand the callback to the host. A host that is
    /// stopping takes no new call: `done` then hears it did not run.
    fn fire(self: &Arc<Self>, due: Instant) {
        if !self.timer.fired() {
            return;
        }
        let this = Arc::clone(self);
        host::submit(
            &self.host,
            Arc::clone(&self.call.name),
            self.call.start(Event::Scheduled(wall_clock(due))),
            Box::new(move |outcome, launched| this.done(due, outcome, launched)),
        );
    }

    /// Where a call ends: report a failure, arm the next tick — counted from
    /// when the call really started, so a loop blocked past a deadline gives
    /// one late call, then the grid, never a burst.
    fn done(
        self: &Arc<Self>,
        due: Instant,
        outcome: Option<CallOutcome>,
        launched: Option<Instant>,
    ) {
        self.call.ended();
        let next = self
            .timer
            .rate()
            .next_due(due, launched.unwrap_or_else(Instant::now));
        match outcome {
            Some(Ok(())) => self.arm(next),
            Some(Err(err)) => {
                crate::process::with_python(|py| {
                    crate::logging::report_failure(py, &self.call.name, err);
                });
                self.arm(next);
            }
            // Not run: the host is closed (stopping, or its loop is gone) —
            // or holds new calls for a stop that may yet fail: then the
            // schedule goes on, and a stop that goes ahead stops it.
            None => {
                if !self.host.registry().is_closed() && !self.host.is_known_closed() {
                    self.arm(next);
                }
            }
        }
    }

    /// Disarm. A call under way is the host's to cancel.
    pub fn stop(&self) {
        self.timer.stop();
    }
}
