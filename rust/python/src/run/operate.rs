//! Operating a run while it runs: taking a trigger out of it, and making an
//! extra call of one (`remove`, `run_now`; `add` is [`Run::add`]).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use pyo3::prelude::*;

use super::handle::TriggerHandle;
use super::member::report_then_count;
use super::plan::PlanKind;
use super::{CallEnded, Run};
use crate::host::{self, CancelReason};

impl Run {
    /// On the loop thread: take no new call of `plan`, and cancel its calls
    /// now — before `remove` first waits, as a stop does (see
    /// [`Run::cancel_now`]).
    pub fn cancel_calls_now(&self, py: Python<'_>, handle: &TriggerHandle) {
        handle.mark_removed();
        for call in self.host.registry().unfinished_named(&handle.name) {
            self.host.cancel_now(py, &call, CancelReason::Removed);
        }
    }

    /// Take `plan` out of the run: no new call starts, and every call of it
    /// is cancelled and waited for, cleanup included. Safe to call from
    /// several removes, and during a stop.
    pub async fn remove(&self, handle: &Arc<TriggerHandle>, kind: &PlanKind) {
        // First: no call of it starts from now on, whoever asks (its
        // schedule's tick under way, its source, a `run_now`): one opened
        // already is declined as the loop starts it (see `gate`).
        handle.mark_removed();
        let member = {
            let mut members = self.members.lock();
            let at = members
                .list
                .iter()
                .position(|member| Arc::ptr_eq(&member.handle, handle));
            at.map(|at| members.list.remove(at))
        };
        if let Some(member) = &member {
            member.stop_driving(self);
        }
        let registry = self.host.registry();
        let cancel_all = || {
            for call in registry.unfinished_named(&handle.name) {
                self.host.cancel(&call, CancelReason::Removed);
            }
        };
        cancel_all();
        if let Some(task) = member.as_ref().and_then(|member| member.task()) {
            self.tasks.stop_one(task).await;
        }
        drop(member);
        // A call opened meanwhile (declined as it starts, or running) is
        // waited for too (a call is asked to cancel once).
        loop {
            cancel_all();
            if registry.unfinished_named(&handle.name).is_empty() {
                break;
            }
            registry.none_named(&handle.name).await;
        }
        handle.stats.set_next_call_at(None);
        if let PlanKind::Coroutine = kind {
            handle.finish();
        }
    }

    /// One extra call of `plan`'s native trigger, `ctx.scheduled_at` being
    /// `at` (when `run_now` was called): paused or not, once the call under
    /// way (if any) has ended. Returns when it has ended; a failure is
    /// logged and counted like a scheduled call's. Nothing is called if the
    /// trigger is no longer in the run (removed, or the run stopping).
    pub async fn run_now(&self, handle: &Arc<TriggerHandle>, kind: &PlanKind, at: DateTime<Utc>) {
        {
            let members = self.members.lock();
            let member = members
                .list
                .iter()
                .find(|member| Arc::ptr_eq(&member.handle, handle));
            if members.stopping || member.is_none() {
                return;
            }
        }
        let turn = handle.turn().await;
        let start = handle.start_extra(at, kind.is_files());
        let ended = CallEnded(Arc::clone(handle));
        let outcome = host::call(&self.host, Arc::clone(&handle.name), start).await;
        report_then_count(&handle.name, turn, outcome);
        drop(ended);
    }
}
