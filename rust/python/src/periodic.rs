//! `every` under a runner: armed on the timer thread, with nothing running
//! between ticks — no task of its own, only an entry in the timer's map.
//!
//! A periodic trigger spends nearly all its life waiting. Here it waits as one
//! entry of the core's timer thread: when due, the timer thread hands the
//! callback to the loop (one batch for all triggers due together); when the
//! callback's asyncio task ends, its done-callback arms the next deadline. No
//! tokio task is woken per tick and no thread waits on the call, which keeps a
//! tick's cost on the loop thread low and an idle trigger small.
//!
//! The schedule is the `Ticker`'s (`next_due`): fixed rate from the runner's
//! start, one overdue tick at once after an overrun, then back on the grid;
//! calls never overlap, since the next deadline is armed only when a call ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_triggers_core::sync::Mutex;
use agent_triggers_core::{Event, TimerKey, call_at, next_due};

use crate::event_loop::{CallOutcome, CallSpec, EventLoop, InFlight};
use crate::interpreter::with_python;
use crate::logging::report_failure;

/// Start the schedule of one `every(...)` trigger: `spec` called on
/// `event_loop` every `period` from `started`. It runs until [`Schedule::stop`].
pub fn start(
    spec: Arc<CallSpec>,
    event_loop: Arc<EventLoop>,
    period: Duration,
    started: Instant,
) -> Arc<Schedule> {
    let schedule = Arc::new(Schedule {
        spec,
        event_loop,
        period,
        state: Mutex::new(State::default()),
    });
    schedule.arm(started + period);
    schedule
}

/// Lock discipline: `state` is never held while waiting for the GIL (handing
/// a call to the loop or cancelling one), since the loop thread, holding the
/// GIL, takes it when a call ends.
pub struct Schedule {
    spec: Arc<CallSpec>,
    event_loop: Arc<EventLoop>,
    period: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    stopped: bool,
    armed: Option<TimerKey>,
    call: Option<InFlight>,
}

impl Schedule {
    /// Arm the tick due at `due` (at once if it has passed), unless stopped.
    fn arm(self: &Arc<Self>, due: Instant) {
        let mut state = self.state.lock();
        if state.stopped {
            return;
        }
        let this = Arc::clone(self);
        state.armed = Some(call_at(due, Arc::new(move || this.fire(due))));
    }

    /// On the timer thread: hand the callback to the loop.
    fn fire(self: &Arc<Self>, due: Instant) {
        let this = Arc::clone(self);
        // Prepared before the check: from here a stop waits for this call.
        let prepared = self.event_loop.prepare(
            Arc::clone(&self.spec),
            Event::Tick,
            Box::new(move |outcome, launched| this.done(due, outcome, launched)),
        );
        {
            let mut state = self.state.lock();
            if state.stopped {
                drop(state);
                drop(prepared);
                return;
            }
            state.armed = None;
        }
        // Not under the lock: handing over may take the GIL (on a loop
        // without add_reader), and the loop thread takes this lock when a call
        // ends.
        let call = prepared.launch();
        let mut state = self.state.lock();
        if state.stopped {
            drop(state);
            call.cancel();
        } else if !call.is_finished() {
            state.call = Some(call);
        }
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
        self.state.lock().call = None;
        let next = next_due(due, launched.unwrap_or_else(Instant::now), self.period);
        match outcome {
            Some(Ok(())) => self.arm(next),
            Some(Err(err)) => {
                with_python(|py| report_failure(py, &self.spec.name, err));
                self.arm(next);
            }
            // The loop is closed: nothing could run the next call either.
            None => {}
        }
    }

    /// Disarm, and cancel a call under way (stop() still waits for it).
    pub fn stop(&self) {
        let call = {
            let mut state = self.state.lock();
            state.stopped = true;
            if let Some(key) = state.armed.take() {
                key.cancel();
            }
            state.call.take()
        };
        // Outside the lock: cancelling may wait for the GIL, and the loop
        // thread takes the lock when a call ends.
        if let Some(call) = call {
            call.cancel();
        }
    }
}
