//! The jobs waiting for the loop thread, handed over in batches: many calls
//! due at one instant cost one wake-up of the loop.

use std::sync::Arc;

use agent_triggers_core::sync::Mutex;

use super::call::{Call, CancelReason};
use super::registry::Registry;

/// What the loop thread is asked to do.
pub enum Job {
    /// Start a queued call.
    Start(Arc<Call>),
    /// Cancel a call.
    Cancel(Arc<Call>, CancelReason),
}

/// Jobs in the order they were pushed, and whether a drain of them is already
/// on its way to the loop. `K` keeps the host alive while jobs wait (the
/// drain holds it only weakly): a runner dropped with a cancellation queued
/// must still see it run.
pub struct Queue<K> {
    inner: Mutex<Inner<K>>,
}

struct Inner<K> {
    jobs: Vec<Job>,
    drain_scheduled: bool,
    keep_alive: Option<K>,
}

impl<K> Default for Queue<K> {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                jobs: Vec::new(),
                drain_scheduled: false,
                keep_alive: None,
            }),
        }
    }
}

impl<K> Queue<K> {
    /// Queue `job`; `true` if the loop must be woken for it (no drain is on
    /// its way yet).
    pub fn push(&self, job: Job, keep_alive: impl FnOnce() -> K) -> bool {
        let mut inner = self.inner.lock();
        inner.jobs.push(job);
        if inner.keep_alive.is_none() {
            inner.keep_alive = Some(keep_alive());
        }
        !std::mem::replace(&mut inner.drain_scheduled, true)
    }

    /// Everything queued, in order (and the keep-alive, to drop once done):
    /// the next push wakes the loop again.
    pub fn take(&self) -> (Vec<Job>, Option<K>) {
        let mut inner = self.inner.lock();
        inner.drain_scheduled = false;
        (std::mem::take(&mut inner.jobs), inner.keep_alive.take())
    }

    /// The first `most` jobs queued, in order. If more are left, `None` in
    /// place of the keep-alive: the caller must drain again (it stays
    /// scheduled, so pushes meanwhile do not wake the loop); else as
    /// [`take`](Self::take).
    pub fn take_up_to(&self, most: usize) -> (Vec<Job>, Option<Option<K>>) {
        debug_assert!(most > 0, "a drain that takes nothing never ends");
        let mut inner = self.inner.lock();
        if inner.jobs.len() <= most {
            inner.drain_scheduled = false;
            return (
                std::mem::take(&mut inner.jobs),
                Some(inner.keep_alive.take()),
            );
        }
        let rest = inner.jobs.split_off(most);
        (std::mem::replace(&mut inner.jobs, rest), None)
    }

    /// Nothing queued will ever run (the host is gone): every call with a
    /// job queued is over — one to start never will, one to cancel will
    /// never say it ended.
    pub fn abandon(&self, registry: &Registry) {
        let (jobs, _keep_alive) = self.take();
        for job in jobs {
            match job {
                Job::Start(call) => registry.finish_if_queued(&call),
                Job::Cancel(call, _) => {
                    drop(call.take_task());
                    registry.finish(&call, None);
                }
            }
        }
    }
}
