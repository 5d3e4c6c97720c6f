//! One run of a runner's triggers, from `start()` to `stop()`.
//!
//! [`Run::start`] captures a host (the loop that awaited `start()`), starts
//! each trigger as its kind runs — an `every` trigger as a schedule on the
//! timer thread, another native trigger as a tokio task driving its source,
//! a coroutine trigger as a call started at once — and [`Run::stop`] stops
//! them: it takes no new call, cancels every unfinished one by name (the
//! reason recorded on it), stops the schedules and source tasks, and waits
//! until every call has finished, cleanup included. While it runs, a trigger
//! can be added ([`Run::add`]), removed ([`Run::remove`]) or called once more
//! ([`Run::run_now`]) — each a [`Member`] of the run.

pub mod call;
pub mod connection;
pub mod count;
pub mod fleet;
pub mod handle;
mod member;
mod operate;
pub mod plan;
mod schedule;
pub mod source;

use std::sync::Arc;
use std::time::Instant;

use agent_triggers_core::Tasks;
use agent_triggers_core::fleet::{Fleet, FleetConfig, listen_for_given_back};
use agent_triggers_core::sync::Mutex;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use tokio_util::task::AbortOnDropHandle;

use crate::host::{self, CancelReason, Host};
use crate::process::{self, runtime};
use handle::{Life, TriggerHandle};
use member::Member;
use plan::{Entry, PlanKind};

/// What one `start()` set going.
pub struct Run {
    /// The process generation that started it: a child made by `fork()`
    /// inherits this record but none of the threads its triggers run on.
    generation: u64,
    host: Arc<dyn Host>,
    /// The native triggers other than `every`, each a task driving its source.
    tasks: Tasks,
    members: Mutex<Members>,
    /// The runner's fleet, if it has one.
    fleet_config: Option<FleetConfig>,
    /// Connected when the first keyed trigger starts: its unrun claims are
    /// given back at stop.
    fleet: Mutex<Option<Arc<Fleet>>>,
    /// The fleet's listener for ticks given back by other replicas (taken
    /// by the stop that waits for it).
    listener: Mutex<Option<AbortOnDropHandle<()>>>,
}

/// The run's triggers, and whether a stop has begun (then none is added).
#[derive(Default)]
struct Members {
    list: Vec<Member>,
    stopping: bool,
}

/// How long a stop waits to give back its unrun claims (Redis may be down).
const GIVE_BACK_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

impl Run {
    /// Start `plans` on `host`, the calling task's (attached, on its thread;
    /// see [`crate::host::capture`]). Coroutine triggers' tasks are made, in list order,
    /// before this returns: after `await start(); await asyncio.sleep(0)`
    /// every one has run to its first `await`, as under Antigravity's runner.
    ///
    /// In order: file watches are set up (their errors are `start()`'s, with
    /// nothing started), coroutine triggers started, then the native
    /// triggers armed on the grid from `origin` (when `start()` began): an
    /// `every` trigger's first call comes one interval after it, so that
    /// nothing `start()` does shifts the grid. Keyed triggers, with a
    /// `fleet`, take their ticks from it instead (on its shared grid).
    pub fn start(
        py: Python<'_>,
        host: Arc<dyn Host>,
        entries: &[Entry],
        fleet: Option<&FleetConfig>,
        origin: Instant,
    ) -> PyResult<Self> {
        let handle = runtime::handle()?;
        let _runtime = handle.enter();
        let factories = entries
            .iter()
            .map(member::factory)
            .collect::<PyResult<Vec<_>>>()?;
        let run = Self {
            generation: process::generation(),
            host,
            tasks: Tasks::default(),
            members: Mutex::default(),
            fleet_config: fleet.cloned(),
            fleet: Mutex::default(),
            listener: Mutex::default(),
        };
        if entries.iter().any(member::is_keyed) {
            run.connect_fleet(py)?;
        }
        for entry in entries {
            entry.handle.set_life(Life::Idle);
            entry.handle.new_epoch();
            if let PlanKind::Coroutine = entry.kind {
                run.start_coroutine(py, &entry.handle)?;
            }
        }
        let mut members = entries
            .iter()
            .zip(factories)
            .map(|(entry, factory)| run.arm(entry, factory, origin))
            .collect::<PyResult<Vec<Member>>>()?;
        // Collected through a `Result`, it grew by doubling: no spare room
        // kept for every trigger.
        members.shrink_to_fit();
        run.members.lock().list = members;
        Ok(run)
    }

    /// Start `entry` now, in a run under way (on the loop thread): its
    /// schedule counts from now. Nothing is started once a stop has begun.
    pub fn add(&self, py: Python<'_>, entry: &Entry) -> PyResult<()> {
        if self.members.lock().stopping {
            return Ok(());
        }
        let handle = runtime::handle()?;
        let _runtime = handle.enter();
        let factory = member::factory(entry)?;
        if member::is_keyed(entry) {
            self.connect_fleet(py)?;
        }
        entry.handle.set_life(Life::Idle);
        entry.handle.new_epoch();
        if let PlanKind::Coroutine = entry.kind {
            self.start_coroutine(py, &entry.handle)?;
        }
        let member = self.arm(entry, factory, Instant::now())?;
        let mut members = self.members.lock();
        if members.stopping {
            // The stop began meanwhile and will not see it: stop it here.
            drop(members);
            member.stop_driving(self);
            return Ok(());
        }
        members.list.push(member);
        Ok(())
    }

    /// Connect the runner's fleet, if it has one and it is not connected.
    fn connect_fleet(&self, py: Python<'_>) -> PyResult<()> {
        let Some(config) = &self.fleet_config else {
            return Ok(());
        };
        if self.fleet.lock().is_some() {
            return Ok(());
        }
        let replica = fleet::replica_name(py, config)?;
        let fleet =
            Fleet::connect(config, replica).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        // Not one of the run's tasks: it never ends by itself, and the run
        // counts as running only while a trigger does.
        *self.listener.lock() = Some(AbortOnDropHandle::new(
            runtime::handle()?.spawn(listen_for_given_back(Arc::clone(&fleet))),
        ));
        *self.fleet.lock() = Some(fleet);
        Ok(())
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
        {
            let mut members = self.members.lock();
            members.stopping = true;
            for member in &members.list {
                member.stop_driving(self);
            }
        }
        self.tasks.stop().await;
        // Now that no source task can set it again: nothing is due.
        for member in &self.members.lock().list {
            member.handle.stats.set_next_call_at(None);
        }
        let fleet = self.fleet.lock().clone();
        if let Some(fleet) = fleet {
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
            && (self.members.lock().list.iter().any(Member::is_scheduled)
                || self.tasks.is_running()
                || !self.host.registry().is_empty())
    }

    /// The names of the triggers with a call yet to finish, in list order,
    /// each once: what a stop that gives up left running.
    pub fn unfinished(&self) -> Vec<String> {
        let running = self.host.registry().unfinished();
        let mut names: Vec<String> = Vec::new();
        for member in &self.members.lock().list {
            let name = &member.handle.name;
            if running.iter().any(|call| Arc::ptr_eq(&call.name, name))
                && !names.iter().any(|known| **known == **name)
            {
                names.push(name.to_string());
            }
        }
        // Then those of triggers removed meanwhile, whose calls ignored it.
        for call in &running {
            if !names.iter().any(|known| **known == *call.name) {
                names.push(call.name.to_string());
            }
        }
        names
    }
}

impl Drop for Run {
    /// A runner collected without `stop()`: nothing it started keeps firing,
    /// and its calls are cancelled (the source tasks are aborted as `tasks`
    /// drops).
    fn drop(&mut self) {
        host::close_and_cancel_all(&*self.host, CancelReason::RunnerCollected);
        let members = std::mem::take(&mut self.members.get_mut().list);
        for member in &members {
            member.stop_driving(self);
        }
        // Best effort: the fleet sources are aborted as `tasks` drops, and
        // nothing waits for this. Not in a forked child: the claims are the
        // parent's.
        if let Some(fleet) = self.fleet.get_mut().take()
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

/// Marks a trigger's call as ended when dropped (see
/// [`TriggerHandle::call_ended`]).
struct CallEnded(Arc<TriggerHandle>);

impl Drop for CallEnded {
    fn drop(&mut self) {
        self.0.call_ended();
    }
}
