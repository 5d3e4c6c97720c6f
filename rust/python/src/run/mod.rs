//! One run of a runner's triggers, from `start()` to `stop()`.
//!
//! [`Run::start`] captures a host (the loop that awaited `start()`), starts
//! each trigger as its kind runs — an `every` trigger as a schedule on the
//! timer thread, another native trigger as a tokio task driving its source,
//! a coroutine trigger as a call started at once — and [`Run::stop`] stops
//! them: it takes no new call, cancels every unfinished one by name (the
//! reason recorded on it), stops the schedules and source tasks, and waits
//! until every call has finished, cleanup included.

pub mod connection;
pub mod fleet;
pub mod plan;
mod schedule;
pub mod source;

use std::sync::Arc;
use std::time::Instant;

use agent_triggers_core::fleet::{Fleet, FleetConfig, listen_for_given_back};
use agent_triggers_core::{Event, EventSource, Tasks, drive};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};
use tokio_util::task::AbortOnDropHandle;

use crate::gc::Traverse;
use crate::host::asyncio::AsyncioHost;
use crate::host::{self, CancelReason, Host, report_failure_of};
use crate::process::{self, runtime};
use connection::PyConnection;
use plan::{MakeContext, Plan, PlanKind, TriggerCall};
use schedule::Schedule;
use source::SourceSpec;

/// What one `start()` set going.
pub struct Run {
    /// The process generation that started it: a child made by `fork()`
    /// inherits this record but none of the threads its triggers run on.
    generation: u64,
    host: Arc<dyn Host>,
    /// The `every` triggers, which run on the timer thread, not as tasks.
    schedules: Vec<Arc<Schedule>>,
    /// The other native triggers, each a task driving its source.
    tasks: Tasks,
    /// The Python calls the triggers make, for the garbage collector.
    calls: Vec<Arc<TriggerCall>>,
    /// The fleet the keyed triggers share, if the runner has one and any
    /// trigger a key: its unrun claims are given back at stop.
    fleet: Option<Arc<Fleet>>,
    /// The fleet's listener for ticks given back by other replicas (taken
    /// by the stop that waits for it).
    listener: agent_triggers_core::sync::Mutex<Option<AbortOnDropHandle<()>>>,
}

/// How long a stop waits to give back its unrun claims (Redis may be down).
const GIVE_BACK_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

impl Run {
    /// Start `plans` on the calling thread's running loop (attached, on the
    /// loop thread). Coroutine triggers' tasks are made, in list order,
    /// before this returns: after `await start(); await asyncio.sleep(0)`
    /// every one has run to its first `await`, as under Antigravity's runner.
    ///
    /// In order: file watches are set up (their errors are `start()`'s, with
    /// nothing started), coroutine triggers started, then the schedules'
    /// origin taken and the native triggers armed — an `every` trigger's
    /// first call comes one interval after that, not sooner. Keyed triggers,
    /// with a `fleet`, take their ticks from it instead (on its shared grid).
    pub fn start(
        py: Python<'_>,
        plans: &[Plan],
        connection: &Arc<PyConnection>,
        make_context: MakeContext,
        fleet: Option<&FleetConfig>,
    ) -> PyResult<Self> {
        let host: Arc<dyn Host> = AsyncioHost::capture(py)?;
        let handle = runtime::handle()?;
        let _runtime = handle.enter();
        let factories = plans
            .iter()
            .map(|plan| match &plan.kind {
                PlanKind::Native { source, .. } if !matches!(source, SourceSpec::Every(_)) => {
                    source.factory().map(Some)
                }
                _ => Ok(None),
            })
            .collect::<PyResult<Vec<_>>>()?;
        let mut run = Self {
            generation: process::generation(),
            host,
            schedules: Vec::new(),
            tasks: Tasks::default(),
            calls: Vec::with_capacity(plans.len()),
            fleet: None,
            listener: Default::default(),
        };
        let keyed = |plan: &Plan| matches!(&plan.kind, PlanKind::Native { key: Some(_), .. });
        if let Some(config) = fleet
            && plans.iter().any(keyed)
        {
            let replica = fleet::replica_name(py, config)?;
            let fleet = Fleet::connect(config, replica)
                .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
            // Not one of the run's tasks: it never ends by itself, and the run
            // counts as running only while a trigger does.
            run.listener = agent_triggers_core::sync::Mutex::new(Some(AbortOnDropHandle::new(
                handle.spawn(listen_for_given_back(Arc::clone(&fleet))),
            )));
            run.fleet = Some(fleet);
        }
        for plan in plans {
            let callable = match &plan.kind {
                PlanKind::Native { callback, .. } => callback.clone_ref(py),
                // Run inside `run_trigger`, which logs a failure in the step that raises.
                PlanKind::Coroutine { callable } => run_trigger(py, &plan.name, callable)?,
            };
            let call = Arc::new(TriggerCall::new(
                Arc::clone(&plan.name),
                callable,
                Arc::clone(connection),
                plan.delivery,
                make_context,
            ));
            if let PlanKind::Coroutine { .. } = plan.kind {
                run.start_coroutine(py, &call)?;
            }
            run.calls.push(call);
        }
        let started = Instant::now();
        for ((plan, factory), call) in plans.iter().zip(factories).zip(&run.calls) {
            if let (
                Some(fleet),
                PlanKind::Native {
                    key: Some(key),
                    source,
                    ..
                },
            ) = (&run.fleet, &plan.kind)
                && let Some(ticks) = fleet::keyed_source(fleet, key, source)
            {
                run.spawn_source(ticks, call, Some((Arc::clone(fleet), Arc::clone(key))));
                continue;
            }
            match (&plan.kind, factory) {
                (
                    PlanKind::Native {
                        source: SourceSpec::Every(period),
                        ..
                    },
                    _,
                ) => {
                    let host = Arc::clone(&run.host);
                    let schedule = Schedule::start(Arc::clone(call), host, *period, started);
                    run.schedules.push(schedule);
                }
                (PlanKind::Native { .. }, Some(factory)) => {
                    let source = factory(started.into())
                        .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
                    run.spawn_source(source, call, None);
                }
                (PlanKind::Native { .. }, None) => unreachable!("a factory per native source"),
                (PlanKind::Coroutine { .. }, _) => {}
            }
        }
        Ok(run)
    }

    /// Start a coroutine trigger's call now. Its own failures are logged by
    /// `run_trigger`; what is left is a failure to run it at all (say, a task
    /// factory that raised).
    fn start_coroutine(&self, py: Python<'_>, call: &Arc<TriggerCall>) -> PyResult<()> {
        let name = Arc::clone(&call.name);
        host::start_now(
            &self.host,
            py,
            Arc::clone(&call.name),
            call.start(Event::Tick),
            Box::new(move |outcome, _| {
                if let Some(Err(err)) = outcome {
                    process::with_python(|py| crate::logging::report_failure(py, &name, err));
                }
            }),
        )
    }

    /// Run `call` for each event of `source`, as a task of the run. A failing
    /// callback is logged and the trigger goes on. A keyed trigger's fleet
    /// claim is released when its call starts on the loop (not before: a call
    /// cancelled while queued, by a stop, leaves it to be given back).
    fn spawn_source(
        &self,
        source: Box<dyn EventSource>,
        call: &Arc<TriggerCall>,
        keyed: Option<(Arc<Fleet>, Arc<str>)>,
    ) {
        let (host, call) = (Arc::clone(&self.host), Arc::clone(call));
        self.tasks.spawn(call.name.to_string(), async move {
            let name = Arc::clone(&call.name);
            drive(source, &name, |event| {
                let start = match (&keyed, &event) {
                    (Some((fleet, key)), Event::Scheduled(due)) => {
                        let (fleet, key, due) = (Arc::clone(fleet), Arc::clone(key), *due);
                        releasing(call.start(event), move || fleet.release(&key, due))
                    }
                    _ => call.start(event),
                };
                let python = host::call(&host, Arc::clone(&call.name), start);
                let name = Arc::clone(&call.name);
                // `ctx.scheduled_at` goes back to `None` when the call ends —
                // or when a stop drops it unfinished.
                let ended = CallEnded(Arc::clone(&call));
                async move {
                    report_failure_of(&name, python).await;
                    drop(ended);
                    Ok(())
                }
            })
            .await;
            Ok(())
        });
    }

    pub fn host(&self) -> &Arc<dyn Host> {
        &self.host
    }

    /// `RuntimeError` in a forked child: the run's tasks live in the parent's
    /// tokio runtime and its calls on the parent's loop, none of which runs
    /// here — a stop would wait for ever.
    pub fn ensure_started_in_this_process(&self) -> PyResult<()> {
        if self.generation == process::generation() {
            return Ok(());
        }
        Err(PyRuntimeError::new_err(
            "the trigger runner was started in another process (before a fork): its \
             triggers run there, on threads this process does not have, so it can be \
             neither stopped nor started here. Make a new TriggerRunner in this process",
        ))
    }

    /// On the runner's own loop (attached): cancel every call now, before a
    /// stop first waits, as Antigravity's runner does — a trigger stopped
    /// right after `start()` never runs.
    pub fn cancel_now(&self, py: Python<'_>) {
        host::cancel_all_now(&*self.host, py, CancelReason::Stop);
    }

    /// Cancel every trigger and wait until each has finished, Python cleanup
    /// included. Safe to call from several stops at once: each waits.
    pub async fn stop(&self) {
        host::close_and_cancel_all(&*self.host, CancelReason::Stop);
        for schedule in &self.schedules {
            schedule.stop();
        }
        self.tasks.stop().await;
        if let Some(fleet) = &self.fleet {
            // The sources are gone: no new claim. Give back the unrun ones
            // (the listener, still up, pushes back any it pops itself), then
            // let the listener finish its pop under way.
            fleet.give_back_unrun(GIVE_BACK_WITHIN).await;
            fleet.stop_listening();
            let listener = self.listener.lock().take();
            if let Some(listener) = listener {
                let abort = listener.abort_handle();
                if tokio::time::timeout(GIVE_BACK_WITHIN, listener)
                    .await
                    .is_err()
                {
                    abort.abort();
                }
            }
        }
        host::wait_until_done(&*self.host).await;
    }

    /// Whether something of the run may still call Python.
    pub fn is_running(&self) -> bool {
        !self.host.is_known_closed()
            // A schedule runs until stopped: periodic triggers never return.
            && (!self.schedules.is_empty()
                || self.tasks.is_running()
                || !self.host.registry().is_empty())
    }

    /// The names of the triggers with a call yet to finish, in list order,
    /// each once: what a stop that gives up left running.
    pub fn unfinished(&self) -> Vec<String> {
        let running = self.host.registry().unfinished();
        let mut names: Vec<String> = Vec::new();
        for call in &self.calls {
            if running
                .iter()
                .any(|unfinished| unfinished.name == call.name)
                && !names.iter().any(|name| **name == *call.name)
            {
                names.push(call.name.to_string());
            }
        }
        names
    }
}

impl Traverse for Run {
    fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.calls.traverse(visit)
    }
}

impl Drop for Run {
    /// A runner collected without `stop()`: nothing it started keeps firing,
    /// and its calls are cancelled (the source tasks are aborted as `tasks`
    /// drops).
    fn drop(&mut self) {
        host::close_and_cancel_all(&*self.host, CancelReason::RunnerCollected);
        for schedule in &self.schedules {
            schedule.stop();
        }
        // Best effort: the fleet sources are aborted as `tasks` drops, and
        // nothing waits for this. Not in a forked child: the claims are the
        // parent's.
        if let Some(fleet) = self.fleet.take()
            && self.generation == process::generation()
            && let Ok(handle) = runtime::handle()
        {
            handle.spawn(async move { fleet.give_back_unrun(GIVE_BACK_WITHIN).await });
        }
    }
}

/// `start`, running `release` first (on the loop thread, as the call starts).
fn releasing(start: host::Start, release: impl FnOnce() + Send + 'static) -> host::Start {
    Box::new(move |py| {
        release();
        start(py)
    })
}

/// Marks a trigger's call as ended when dropped (see [`TriggerCall::ended`]).
struct CallEnded(Arc<TriggerCall>);

impl Drop for CallEnded {
    fn drop(&mut self) {
        self.0.ended();
    }
}

/// `functools.partial(run_trigger, name, callable)`: the trigger run inside
/// `agent_triggers._trigger_task.run_trigger`.
fn run_trigger(py: Python<'_>, name: &str, callable: &Py<PyAny>) -> PyResult<Py<PyAny>> {
    let bound = crate::python::bound(py)?;
    Ok(bound
        .partial
        .bind(py)
        .call1((bound.run_trigger.bind(py), name, callable))?
        .unbind())
}
