//! One trigger of a runner as it runs, in one record kept across runs: the
//! Python call it makes (`callable(ctx, *event_args)`, its context made on
//! the first call) and what a runner's operations act on — paused or not,
//! its failure limit, its turn (calls never overlap), `ctx.scheduled_at` and
//! its stats. Most triggers are idle: the record is kept small (one
//! allocation; its histogram only once a scheduled call was made).

use std::sync::atomic::{
    AtomicBool, AtomicI64, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use agent_triggers_core::{CallStats, Event, RecordTicks, TriggerDelivery};
use chrono::{DateTime, Utc};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use pyo3::{PyTraverseError, PyVisit};
use tokio::sync::Notify;

use super::connection::{PyConnection, ensure_awaitable};
use super::source::event_args;
use crate::gc::Traverse;
use crate::host::{CallOutcome, Start};
use crate::process::{self, ForkSafeDrop};
use crate::python;

/// Where a trigger is in its life, for `TriggerStats.state` (besides paused
/// and running, which are read from elsewhere).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Life {
    Idle = 0,
    /// A coroutine trigger returned (or was removed); a one-shot made its call.
    Finished = 1,
    /// A coroutine trigger raised.
    Failed = 2,
}

/// One trigger of a runner: its call, its controls and its figures.
///
/// Its Python references are in [`ForkSafeDrop`]s: a tokio thread may let go
/// of the record.
pub struct TriggerHandle {
    /// The trigger's name: its calls' name. This `Arc` also tells its calls
    /// apart from those of another trigger of the same name (see
    /// `Registry::unfinished_named`).
    pub name: Arc<str>,
    /// A native trigger's callback; a coroutine trigger's run inside
    /// `run_trigger` (which logs and records its failure).
    callable: ForkSafeDrop<Py<PyAny>>,
    connection: Arc<PyConnection>,
    make_context: MakeContext,
    /// `(ctx,)`, made on the first call: an idle trigger (say, hourly) holds
    /// no Python objects for it.
    args: OnceLock<ForkSafeDrop<Py<PyTuple>>>,
    pub stats: CallStats,
    /// The instant the call under way was due (`ctx.scheduled_at`), µs since
    /// the Unix epoch, or [`NOT_SCHEDULED`]: calls never overlap, so one
    /// value serves them all.
    scheduled_at: AtomicI64,
    /// `max_consecutive_failures`.
    limit: Option<u32>,
    /// Calls under way (started, not yet ended).
    running: AtomicU32,
    pub delivery: TriggerDelivery,
    paused: AtomicBool,
    /// The turn (see [`Turn`]): `epoch * 2 + 1` while a call of the current
    /// epoch holds it, `epoch * 2` while free. A new run begins a new epoch
    /// ([`new_epoch`](Self::new_epoch)): a call a stop abandoned (still
    /// running, ignoring its cancellation) then neither holds the next run's
    /// turn nor frees it when it ends.
    turn: AtomicU64,
    /// Whether it was removed from its runner: no call of it starts again.
    removed: AtomicBool,
    life: AtomicU8,
}

/// `scheduled_at` when no scheduled call is under way.
const NOT_SCHEDULED: i64 = i64::MIN;

/// Wakes the extra calls waiting for a trigger's turn (any trigger's: they
/// are rare, so they share one notification rather than each trigger
/// keeping a queue); `WAITING` counts them, so that a call ending with
/// nobody waiting touches nothing shared.
static TURN_FREED: Notify = Notify::const_new();
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// The turn of a trigger's call: a scheduled tick that finds it taken (an
/// extra call runs) is skipped; `run_now` waits for it. Given back when
/// dropped (unless a new epoch began meanwhile).
pub struct Turn {
    handle: Arc<TriggerHandle>,
    taken: u64,
}

impl Drop for Turn {
    fn drop(&mut self) {
        // SeqCst here and in `TriggerHandle::turn`: the freeing store and the
        // look at `WAITING` must not pass the waiter's count and its own look
        // at the turn (else both miss each other and the waiter sleeps on).
        let _ = self.handle.turn.compare_exchange(
            self.taken,
            self.taken - 1,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        if WAITING.load(Ordering::SeqCst) > 0 {
            TURN_FREED.notify_waiters();
        }
    }
}

/// What a trigger is, for its handle: its name, delivery and failure limit.
pub struct Identity {
    pub name: Arc<str>,
    pub delivery: TriggerDelivery,
    pub limit: Option<u32>,
}

impl TriggerHandle {
    /// The record of a trigger calling `callable` (`callable` given the
    /// record's own weak reference: a coroutine trigger's records its failure).
    pub fn new(
        identity: Identity,
        connection: &Arc<PyConnection>,
        make_context: MakeContext,
        callable: impl FnOnce(&Weak<Self>) -> PyResult<Py<PyAny>>,
    ) -> PyResult<Arc<Self>> {
        let mut failed = None;
        let handle = Arc::new_cyclic(|me| {
            let callable = callable(me).unwrap_or_else(|err| {
                failed = Some(err);
                Python::attach(|py| py.None())
            });
            Self {
                name: identity.name,
                callable: ForkSafeDrop::new(callable),
                connection: Arc::clone(connection),
                make_context,
                args: OnceLock::new(),
                stats: CallStats::default(),
                scheduled_at: AtomicI64::new(NOT_SCHEDULED),
                limit: identity.limit,
                running: AtomicU32::new(0),
                delivery: identity.delivery,
                paused: AtomicBool::new(false),
                turn: AtomicU64::new(0),
                removed: AtomicBool::new(false),
                life: AtomicU8::new(Life::Idle as u8),
            }
        });
        match failed {
            Some(err) => Err(err),
            None => Ok(handle),
        }
    }

    /// What a call answering `event` runs (on the loop thread).
    pub fn start(self: &Arc<Self>, event: Event) -> Start {
        let this = Arc::clone(self);
        Box::new(move |py| this.call(py, &event))
    }

    /// What an extra call (`run_now`) runs: `callback(ctx)` — with an empty
    /// list of changes for a file trigger (`files`) — `ctx.scheduled_at`
    /// being `at`.
    pub fn start_extra(self: &Arc<Self>, at: DateTime<Utc>, files: bool) -> Start {
        let this = Arc::clone(self);
        Box::new(move |py| {
            let event = if files {
                Event::Changes(Vec::new())
            } else {
                Event::Scheduled(at)
            };
            this.set_scheduled_at(Some(at));
            this.call(py, &event)
        })
    }

    /// `(ctx,)`, made on the first call (on the loop thread).
    fn args<'py>(self: &Arc<Self>, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        if let Some(args) = self.args.get() {
            return Ok(args.bind(py).clone());
        }
        let context = (self.make_context)(py, &self.connection, self.delivery, self)?;
        let args = PyTuple::new(py, [context])?;
        // Only the loop thread makes it (holding the GIL): no race.
        let _ = self.args.set(ForkSafeDrop::new(args.clone().unbind()));
        Ok(args)
    }

    /// Call the callable; `TypeError` naming the trigger if what it returns
    /// cannot be awaited.
    fn call<'py>(self: &Arc<Self>, py: Python<'py>, event: &Event) -> PyResult<Bound<'py, PyAny>> {
        if let Event::Scheduled(due) = event {
            self.set_scheduled_at(Some(*due));
        }
        let extra = event_args(py, event)?;
        let args = self.args(py)?;
        let awaitable = if extra.is_empty() {
            self.callable.bind(py).call1(args)?
        } else {
            let args = args.as_sequence().concat(extra.as_sequence())?;
            self.callable.bind(py).call1(args.to_tuple()?)?
        };
        // Coroutines (nearly every callback) need no further look.
        if !awaitable.is_instance(python::bound(py)?.coroutine_type.bind(py))? {
            ensure_awaitable(&awaitable, &format!("trigger '{}'", self.name))?;
        }
        Ok(awaitable)
    }

    /// The call under way has ended: `ctx.scheduled_at` is `None` again.
    pub fn call_ended(&self) {
        self.set_scheduled_at(None);
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// No call starts until [`resume`](Self::resume).
    pub fn pause(&self) {
        self.paused.store(true, Ordering::Release);
    }

    /// Calls start again; the failures in a row start over.
    pub fn resume(&self) {
        self.stats.reset_consecutive_failures();
        self.paused.store(false, Ordering::Release);
    }

    /// The turn, if no call holds it: what a scheduled tick takes.
    pub fn try_turn(self: &Arc<Self>) -> Option<Turn> {
        let free = self.turn.load(Ordering::SeqCst);
        if free % 2 == 1 {
            return None;
        }
        self.turn
            .compare_exchange(free, free + 1, Ordering::SeqCst, Ordering::SeqCst)
            .ok()
            .map(|_| Turn {
                handle: Arc::clone(self),
                taken: free + 1,
            })
    }

    /// A run begins: the turn is free, whatever a call of an earlier run
    /// (abandoned by its stop) still does.
    pub fn new_epoch(&self) {
        let _ = self
            .turn
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |turn| {
                Some((turn / 2 + 1) * 2)
            });
    }

    /// It was removed from its runner: no call of it starts from now on.
    pub fn mark_removed(&self) {
        self.removed.store(true, Ordering::SeqCst);
    }

    pub fn is_removed(&self) -> bool {
        self.removed.load(Ordering::SeqCst)
    }

    /// The turn, once the call under way (if any) has ended: what an extra
    /// call (`run_now`) waits for. Cancel safe: dropped while waiting, it
    /// takes nothing.
    pub async fn turn(self: &Arc<Self>) -> Turn {
        struct Waiting;
        impl Drop for Waiting {
            fn drop(&mut self) {
                WAITING.fetch_sub(1, Ordering::SeqCst);
            }
        }
        WAITING.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting;
        loop {
            let freed = TURN_FREED.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(turn) = self.try_turn() {
                return turn;
            }
            freed.await;
        }
    }

    /// `ctx.scheduled_at` of the call under way.
    pub fn scheduled_at(&self) -> Option<DateTime<Utc>> {
        match self.scheduled_at.load(Ordering::Acquire) {
            NOT_SCHEDULED => None,
            micros => DateTime::from_timestamp_micros(micros),
        }
    }

    /// Set (or clear, `None`) `ctx.scheduled_at`.
    pub fn set_scheduled_at(&self, at: Option<DateTime<Utc>>) {
        let micros = at.map_or(NOT_SCHEDULED, |at| at.timestamp_micros());
        self.scheduled_at.store(micros, Ordering::Release);
    }

    /// A tick came due and made no call.
    pub fn skip(&self) {
        self.stats.skipped(1);
    }

    /// A call starts now (on the loop thread), `late` after its due time if
    /// it had one.
    pub fn began(&self, late: Option<Duration>) {
        self.running.fetch_add(1, Ordering::AcqRel);
        self.stats.started(Utc::now(), late);
    }

    /// A call that [`began`](Self::began) has ended with `outcome` (`None`:
    /// it never ran): a failure is counted, and the `limit`-th in a row
    /// pauses the trigger, with a WARNING.
    pub fn ended(&self, outcome: Option<&CallOutcome>) {
        self.call_over();
        match outcome {
            Some(Err(err)) => {
                let text = process::with_python(|py| error_text(py, err))
                    .unwrap_or_else(|| "the call failed".to_owned());
                self.failed(&text);
            }
            _ => self.stats.succeeded(),
        }
    }

    /// A call that [`began`](Self::began) is over; nothing more is counted.
    pub fn call_over(&self) {
        self.running.fetch_sub(1, Ordering::AcqRel);
    }

    /// A call failed with `text` (`"ValueError: message"`).
    pub fn failed(&self, text: &str) {
        let in_a_row = self.stats.failed(text);
        if let Some(limit) = self.limit
            && in_a_row >= u64::from(limit)
            && !self.paused.swap(true, Ordering::AcqRel)
        {
            process::with_python(|py| crate::logging::report_paused(py, &self.name, limit));
        }
    }

    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire) > 0
    }

    pub fn life(&self) -> Life {
        match self.life.load(Ordering::Acquire) {
            1 => Life::Finished,
            2 => Life::Failed,
            _ => Life::Idle,
        }
    }

    pub fn set_life(&self, life: Life) {
        self.life.store(life as u8, Ordering::Release);
    }

    /// `Finished`, unless it already `Failed`.
    pub fn finish(&self) {
        let _ = self.life.compare_exchange(
            Life::Idle as u8,
            Life::Finished as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// What `TriggerStats.state` shows.
    pub fn state(&self) -> &'static str {
        if self.is_paused() {
            "paused"
        } else if self.is_running() {
            "running"
        } else {
            match self.life() {
                Life::Idle => "idle",
                Life::Finished => "finished",
                Life::Failed => "failed",
            }
        }
    }
}

impl RecordTicks for TriggerHandle {
    fn skipped(&self, count: u64) {
        self.stats.skipped(count);
    }

    fn set_next_call_at(&self, at: Option<DateTime<Utc>>) {
        self.stats.set_next_call_at(at);
    }
}

impl Traverse for TriggerHandle {
    fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&*self.callable)?;
        visit.call(self.args.get().map(|args| &**args))
    }
}

/// Makes the `TriggerContext` a trigger's calls get (the api layer's class);
/// its `scheduled_at` is the handle's.
pub type MakeContext = for<'py> fn(
    Python<'py>,
    &PyConnection,
    TriggerDelivery,
    &Arc<TriggerHandle>,
) -> PyResult<Bound<'py, PyAny>>;

/// `"ValueError: message"` (the type's name alone if the message is empty).
pub fn error_text(py: Python<'_>, err: &PyErr) -> String {
    let kind = err
        .get_type(py)
        .name()
        .map_or_else(|_| "Exception".to_owned(), |name| name.to_string());
    match err.value(py).str() {
        Ok(message) if !message.to_string_lossy().is_empty() => {
            format!("{kind}: {}", message.to_string_lossy())
        }
        _ => kind,
    }
}
