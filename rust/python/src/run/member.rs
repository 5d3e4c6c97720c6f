//! One trigger of a run, started: an `every` trigger as a schedule on the
//! timer thread, another native trigger as a tokio task driving its source,
//! a coroutine trigger as a call started at once. Each call goes through the
//! trigger's [`TriggerHandle`]: paused, no call starts (the tick is skipped);
//! calls never overlap; each is counted.

use std::sync::Arc;
use std::time::Instant;

use agent_triggers_core::fleet::Fleet;
use agent_triggers_core::{Event, EventSource, RecordTicks, SourceFactory, TaskId, drive};
use chrono::{DateTime, Utc};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use super::call::Due;
use super::handle::TriggerHandle;
use super::handle::Turn;
use super::plan::{Entry, PlanKind};
use super::schedule::Schedule;
use super::source::{OnceSpec, SourceSpec};
use super::{CallEnded, Run, fleet, releasing};
use crate::host::{self, CallOutcome};
use crate::process;

/// A trigger of a run and what drives it.
pub struct Member {
    pub handle: Arc<TriggerHandle>,
    driver: Driver,
}

enum Driver {
    /// `every`: armed on the timer thread.
    Schedule(Arc<Schedule>),
    /// Another native trigger: a task of the run driving its source.
    Task(TaskId),
    /// A coroutine trigger: its one call, started already.
    Call,
}

impl Member {
    /// Whether it runs until stopped (a schedule never returns).
    pub fn is_scheduled(&self) -> bool {
        matches!(self.driver, Driver::Schedule(_))
    }

    /// The task driving its source, if it has one.
    pub fn task(&self) -> Option<TaskId> {
        match self.driver {
            Driver::Task(id) => Some(id),
            _ => None,
        }
    }

    /// No new call: the schedule disarmed, the source task aborted (not
    /// waited for). Calls under way are the host's to cancel.
    pub fn stop_driving(&self, run: &Run) {
        match &self.driver {
            Driver::Schedule(schedule) => schedule.stop(),
            Driver::Task(id) => run.tasks.abort(*id),
            Driver::Call => {}
        }
        self.handle.stats.set_next_call_at(None);
    }
}

/// What makes a native trigger's source (not `every`'s: a schedule) — a file
/// watch set up now, so that its error is the caller's.
pub fn factory(entry: &Entry) -> PyResult<Option<SourceFactory>> {
    match &entry.kind {
        PlanKind::Native { source, .. } if !matches!(source, SourceSpec::Every(_)) => {
            source.factory().map(Some)
        }
        _ => Ok(None),
    }
}

/// Where a fleet's source records the ticks it skips: the trigger's stats.
fn recorder(entry: &Entry) -> Arc<dyn RecordTicks> {
    Arc::clone(&entry.handle) as Arc<dyn RecordTicks>
}

/// Whether it has a key (a fleet, if the runner has one, runs its ticks).
pub fn is_keyed(entry: &Entry) -> bool {
    matches!(&entry.kind, PlanKind::Native { key: Some(_), .. })
}

/// When a source trigger's next call is due, as far as its spec tells, for
/// `TriggerStats.next_call_at`: the first (`after`, that of the start) or the
/// one after `after`.
fn next_call(spec: &SourceSpec, after: DateTime<Utc>, first: bool) -> Option<DateTime<Utc>> {
    match spec {
        SourceSpec::Cron(schedule) => schedule.next_after(after),
        SourceSpec::Once(OnceSpec::After(delay)) if first => chrono::TimeDelta::from_std(*delay)
            .ok()
            .map(|delay| after + delay),
        SourceSpec::Once(OnceSpec::At(when, fired)) if first => {
            (!fired.load(std::sync::atomic::Ordering::Acquire)).then_some(*when)
        }
        _ => None,
    }
}

/// Log a failed call, then count the call (a trigger that pauses itself
/// says so after the failure that made it).
pub(super) fn report_then_count(name: &str, turn: Turn, outcome: CallOutcome) {
    if let Err(err) = &outcome {
        process::with_python(|py| crate::logging::report_failure(py, name, err.clone_ref(py)));
    }
    turn.ended(Some(&outcome));
}

impl Run {
    /// Start a coroutine trigger's call now. Its own failures are logged by
    /// `run_trigger`; what is left is a failure to run it at all (say, a task
    /// factory that raised).
    pub(super) fn start_coroutine(
        &self,
        py: Python<'_>,
        handle: &Arc<TriggerHandle>,
    ) -> PyResult<()> {
        let (name, handle) = (Arc::clone(&handle.name), Arc::clone(handle));
        host::start_now(
            &self.host,
            py,
            Arc::clone(&handle.name),
            handle.start_coroutine(),
            Box::new(move |outcome, _| {
                handle.finish();
                if let Some(Err(err)) = outcome {
                    process::with_python(|py| crate::logging::report_failure(py, &name, err));
                }
            }),
        )
    }

    /// Arm `entry`'s native trigger from `started` (a coroutine trigger was
    /// started already): a schedule, a fleet's ticks, or its own source.
    pub(super) fn arm(
        &self,
        entry: &Entry,
        factory: Option<SourceFactory>,
        started: Instant,
    ) -> PyResult<Member> {
        let member = |driver| Member {
            handle: Arc::clone(&entry.handle),
            driver,
        };
        let PlanKind::Native { source, key, .. } = &entry.kind else {
            return Ok(member(Driver::Call));
        };
        let fleet = self.fleet.lock().clone();
        if let (Some(fleet), Some(key)) = (fleet, key)
            && let Some(ticks) = fleet::keyed_source(&fleet, key, source, &recorder(entry))
        {
            let keyed = Some((fleet, Arc::clone(key)));
            let id = self.spawn_source(entry, source, ticks, keyed);
            return Ok(member(Driver::Task(id)));
        }
        if let SourceSpec::Every(period) = source {
            let schedule = Schedule::start(
                Arc::clone(&entry.handle),
                Arc::clone(&self.host),
                *period,
                started,
            );
            return Ok(member(Driver::Schedule(schedule)));
        }
        let factory = factory.expect("a factory per native source but `every`");
        let made = factory(started.into()).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        entry
            .handle
            .stats
            .set_next_call_at(next_call(source, Utc::now(), true));
        let id = self.spawn_source(entry, source, made, None);
        Ok(member(Driver::Task(id)))
    }

    /// Call the trigger for each event of `source`, as a task of the run, unless
    /// the trigger is paused or an extra call runs (then the event is
    /// skipped). A failing callback is logged and the trigger goes on. A
    /// keyed trigger's fleet claim is released when its call starts on the
    /// loop (not before: a call cancelled while queued, by a stop, leaves it
    /// to be given back).
    fn spawn_source(
        &self,
        entry: &Entry,
        spec: &SourceSpec,
        source: Box<dyn EventSource>,
        keyed: Option<(Arc<Fleet>, Arc<str>)>,
    ) -> TaskId {
        let (host, handle, spec) = (
            Arc::clone(&self.host),
            Arc::clone(&entry.handle),
            spec.clone(),
        );
        self.tasks.spawn(handle.name.to_string(), async move {
            let (name, spec) = (Arc::clone(&handle.name), &spec);
            drive(source, &name, |event| {
                let (host, handle) = (&host, &handle);
                let keyed = keyed.clone();
                // A fleet's source records its next tick itself.
                let from_fleet = keyed.is_some();
                async move {
                    let due = match &event {
                        Event::Scheduled(due) => Due::Wall(*due),
                        _ => Due::Never,
                    };
                    let release = match (keyed, &event) {
                        (Some((fleet, key)), Event::Scheduled(due)) => {
                            let due = *due;
                            Some(move || fleet.release(&key, due))
                        }
                        _ => None,
                    };
                    let after = match due {
                        Due::Wall(due) => due.max(Utc::now()),
                        _ => Utc::now(),
                    };
                    if !from_fleet {
                        handle.stats.set_next_call_at(next_call(spec, after, false));
                    }
                    // A tick falling due during an extra call is skipped;
                    // file changes wait for it (they are no tick: dropped
                    // only while paused).
                    let turn = match &event {
                        _ if handle.is_paused() => None,
                        Event::Changes(_) => Some(handle.turn().await),
                        _ => handle.try_turn(),
                    };
                    let Some(turn) = turn else {
                        handle.skip();
                        if let Some(release) = release {
                            release();
                        }
                        return Ok(());
                    };
                    let start = match release {
                        Some(release) => releasing(handle.start(event, due, false), release),
                        None => handle.start(event, due, false),
                    };
                    let python = host::call(host, Arc::clone(&handle.name), start);
                    // `ctx.scheduled_at` goes back to `None` when the call
                    // ends — or when a stop drops it unfinished.
                    let ended = CallEnded(Arc::clone(handle));
                    let outcome = python.await;
                    report_then_count(&handle.name, turn, outcome);
                    drop(ended);
                    Ok(())
                }
            })
            .await;
            // Exhausted (a one-shot made its call, or skipped it).
            handle.stats.set_next_call_at(None);
            handle.finish();
            Ok(())
        })
    }
}
