//! One trigger of a runner as it runs, in one record kept across runs: the
//! Python call it makes (`callable(ctx, *event_args)`, its context made on
//! the first call) and what a runner's operations act on — paused or not,
//! its failure limit, its turn (calls never overlap), `ctx.scheduled_at` and
//! its stats. Most triggers are idle: the record is kept small (one
//! allocation; its histogram only once a scheduled call was made). The call
//! it makes is built in `run/call.rs`.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use agent_triggers_core::{CallStats, RecordTicks, TriggerDelivery};
use chrono::{DateTime, Utc};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use pyo3::{PyTraverseError, PyVisit};
use tokio::sync::Notify;

use super::connection::PyConnection;
use crate::gc::Traverse;
use crate::host::CallOutcome;
use crate::process::{self, ForkSafeDrop};

/// Where a trigger is in its life, for `TriggerStats.state` (besides paused,
/// and a native trigger's call running, which are read from elsewhere).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Life {
    Idle = 0,
    /// A coroutine trigger returned (or was removed); a one-shot made its call.
    Finished = 1,
    /// A coroutine trigger raised.
    Failed = 2,
    /// A coroutine trigger's call runs.
    Running = 3,
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
    pub(super) callable: ForkSafeDrop<Py<PyAny>>,
    pub(super) connection: Arc<PyConnection>,
    /// `(ctx,)`, made on the first call: an idle trigger (say, hourly) holds
    /// no Python objects for it.
    pub(super) args: OnceLock<ForkSafeDrop<Py<PyTuple>>>,
    pub stats: CallStats,
    /// The instant the call under way was due (`ctx.scheduled_at`), µs since
    /// the Unix epoch, or [`NOT_SCHEDULED`]: calls never overlap, so one
    /// value serves them all.
    scheduled_at: AtomicI64,
    /// `max_consecutive_failures`.
    limit: Option<NonZeroU32>,
    pub delivery: TriggerDelivery,
    paused: AtomicBool,
    /// The turn (see [`Turn`]): `epoch * 4`, plus [`HELD`] while a call of
    /// that epoch holds it, plus [`BEGUN`] once that call has started on the
    /// loop (then the trigger is running). A new run begins a new epoch
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

/// Bits of the turn word (see `TriggerHandle::turn`).
const HELD: u64 = 1;
const BEGUN: u64 = 2;
const EPOCH: u64 = 4;

/// Wakes the extra calls waiting for a trigger's turn (any trigger's: they
/// are rare, so they share one notification rather than each trigger
/// keeping a queue); `WAITING` counts them, so that a call ending with
/// nobody waiting touches nothing shared.
static TURN_FREED: Notify = Notify::const_new();
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// The turn of a trigger's call: a scheduled tick that finds it taken (an
/// extra call runs) is skipped; `run_now` waits for it. The call holding it
/// is counted (once it has begun: see [`ended`](Self::ended)) and given
/// back when dropped — however the call ends, its waiter aborted included —
/// unless a new epoch began meanwhile.
pub struct Turn {
    handle: Arc<TriggerHandle>,
    /// The turn word when taken: its epoch, and `HELD`.
    taken: u64,
}

impl Turn {
    /// Whether the call holding it started on the loop (it was not
    /// declined, refused or cancelled while queued).
    fn begun(&self) -> bool {
        self.handle.turn.load(Ordering::SeqCst) == self.taken | BEGUN
    }

    /// The call ended with `outcome` (`None`: it never ran): counted, if it
    /// had begun (see [`TriggerHandle::ended`]). Then the turn is given back.
    pub fn ended(self, outcome: Option<&CallOutcome>) {
        if self.begun() {
            self.handle.ended(outcome);
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        // SeqCst here and in `TriggerHandle::turn`: the freeing store and the
        // look at `WAITING` must not pass the waiter's count and its own look
        // at the turn (else both miss each other and the waiter sleeps on).
        let taken = self.taken;
        let _ = self
            .handle
            .turn
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |turn| {
                (turn & !BEGUN == taken).then_some(taken - HELD)
            });
        if WAITING.load(Ordering::SeqCst) > 0 {
            TURN_FREED.notify_waiters();
        }
    }
}

/// What a trigger is, for its handle: its name, delivery and failure limit.
pub struct Identity {
    pub name: Arc<str>,
    pub delivery: TriggerDelivery,
    pub limit: Option<NonZeroU32>,
}

impl TriggerHandle {
    /// The record of a trigger calling `callable` (`callable` given the
    /// record's own weak reference: a coroutine trigger's records its failure).
    pub fn new(
        identity: Identity,
        connection: &Arc<PyConnection>,
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
                args: OnceLock::new(),
                stats: CallStats::default(),
                scheduled_at: AtomicI64::new(NOT_SCHEDULED),
                limit: identity.limit,
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
        if free & HELD != 0 {
            return None;
        }
        self.turn
            .compare_exchange(free, free | HELD, Ordering::SeqCst, Ordering::SeqCst)
            .ok()
            .map(|_| Turn {
                handle: Arc::clone(self),
                taken: free | HELD,
            })
    }

    /// A run begins: the turn is free, whatever a call of an earlier run
    /// (abandoned by its stop) still does.
    pub fn new_epoch(&self) {
        let _ = self
            .turn
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |turn| {
                Some((turn / EPOCH + 1) * EPOCH)
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

    /// A call starts `now` (on the loop thread), `late` after its due time
    /// if it had one.
    pub(super) fn began(&self, now: Instant, late: Option<Duration>) {
        // The call holds the turn: mark it begun (the trigger is running).
        let _ = self
            .turn
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |turn| {
                (turn & HELD != 0).then_some(turn | BEGUN)
            });
        self.stats.started(now, late);
    }

    /// A call that [`began`](Self::began) has ended with `outcome` (`None`:
    /// it never ran): a failure is counted, and the `limit`-th in a row
    /// pauses the trigger, with a WARNING.
    fn ended(&self, outcome: Option<&CallOutcome>) {
        match outcome {
            Some(Err(err)) => {
                let text = process::with_python(|py| error_text(py, err))
                    .unwrap_or_else(|| "the call failed".to_owned());
                self.failed(&text);
            }
            _ => self.stats.succeeded(),
        }
    }

    /// A call failed with `text` (`"ValueError: message"`).
    fn failed(&self, text: &str) {
        let in_a_row = self.stats.failed(text);
        if let Some(limit) = self.limit.map(NonZeroU32::get)
            && in_a_row >= u64::from(limit)
            && !self.paused.swap(true, Ordering::AcqRel)
        {
            process::with_python(|py| crate::logging::report_paused(py, &self.name, limit));
        }
    }

    /// Whether a call runs: a native trigger's that began (its turn is
    /// marked), or a coroutine trigger's.
    pub fn is_running(&self) -> bool {
        self.turn.load(Ordering::SeqCst) & BEGUN != 0 || self.life() == Life::Running
    }

    pub fn life(&self) -> Life {
        match self.life.load(Ordering::Acquire) {
            1 => Life::Finished,
            2 => Life::Failed,
            3 => Life::Running,
            _ => Life::Idle,
        }
    }

    pub fn set_life(&self, life: Life) {
        self.life.store(life as u8, Ordering::Release);
    }

    /// `Finished`, unless it already `Failed`.
    pub fn finish(&self) {
        let _ = self
            .life
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |life| {
                (life != Life::Failed as u8).then_some(Life::Finished as u8)
            });
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
                Life::Running => "running",
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
