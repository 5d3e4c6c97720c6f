//! The calls of one host that have yet to finish: what `stop()` cancels and
//! waits for, the names a stop that gives up logs, and what a closed loop
//! lets go of.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use agent_triggers_core::sync::Mutex;
use tokio::sync::Notify;

use super::call::{Call, CallOutcome, Completion, Start};

#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
    /// Notified each time the last unfinished call ends.
    emptied: Notify,
    /// Notified each time a call ends, while someone waits for the calls of
    /// one name (`named_waiters` of them: a call ending touches nothing
    /// shared otherwise).
    finished: Notify,
    named_waiters: std::sync::atomic::AtomicUsize,
}

#[derive(Default)]
struct Inner {
    /// By key, in the order they were made.
    calls: BTreeMap<u64, Arc<Call>>,
    next_id: u64,
    /// Set by [`close`](Registry::close): no new call is taken.
    closed: bool,
    /// Set by [`hold`](Registry::hold): no new call is taken until
    /// [`lift_hold`](Registry::lift_hold) (a stop that failed) or for good
    /// (a stop that closes).
    held: bool,
}

impl Registry {
    /// A new queued call, counted from now on: a stop that begins between its
    /// maker's last check and its hand-off still waits for it. `None` once
    /// the registry is closed: its completion is told at once that the call
    /// did not run.
    pub(super) fn open_call(
        &self,
        name: Arc<str>,
        start: Start,
        to: Completion,
    ) -> Option<Arc<Call>> {
        let call = {
            let mut inner = self.inner.lock();
            if !inner.closed && !inner.held {
                let id = inner.next_id;
                inner.next_id += 1;
                let call = Arc::new(Call::new(name, id, start, to));
                inner.calls.insert(id, Arc::clone(&call));
                return Some(call);
            }
            // Dropped outside the lock: the maker may hold Python references.
            (start, to)
        };
        drop(call.0);
        call.1.deliver(None, None);
        None
    }

    /// Take no new call until [`lift_hold`](Self::lift_hold) or
    /// [`close`](Self::close); the calls yet to finish, in order. What a stop
    /// on the loop thread does before it cancels them there: a call ended by
    /// that cancel must not make room for a new one before the stop closes.
    pub fn hold(&self) -> Vec<Arc<Call>> {
        let mut inner = self.inner.lock();
        inner.held = true;
        inner.calls.values().cloned().collect()
    }

    /// Take new calls again (the stop that held them failed).
    pub fn lift_hold(&self) {
        self.inner.lock().held = false;
    }

    /// Whether [`close`](Self::close) was called: no call will be taken again.
    pub fn is_closed(&self) -> bool {
        self.inner.lock().closed
    }

    /// Take no new call from now on; the calls yet to finish, in order.
    pub fn close(&self) -> Vec<Arc<Call>> {
        let mut inner = self.inner.lock();
        inner.closed = true;
        inner.calls.values().cloned().collect()
    }

    /// The calls yet to finish, in order.
    pub fn unfinished(&self) -> Vec<Arc<Call>> {
        self.inner.lock().calls.values().cloned().collect()
    }

    /// The calls yet to finish made under `name` (this very `Arc`: the
    /// name object of one trigger, not every trigger with that text).
    pub fn unfinished_named(&self, name: &Arc<str>) -> Vec<Arc<Call>> {
        self.inner
            .lock()
            .calls
            .values()
            .filter(|call| Arc::ptr_eq(&call.name, name))
            .cloned()
            .collect()
    }

    /// Resolves once no call made under `name` is unfinished (see
    /// [`unfinished_named`](Self::unfinished_named)).
    pub async fn none_named(&self, name: &Arc<str>) {
        struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        self.named_waiters
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _waiting = Waiting(&self.named_waiters);
        loop {
            let notified = self.finished.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.unfinished_named(name).is_empty() {
                return;
            }
            notified.await;
        }
    }

    /// Whether a call has yet to finish.
    pub fn is_empty(&self) -> bool {
        self.inner.lock().calls.is_empty()
    }

    /// End `call` with `outcome` (`None`: it did not run) and tell whoever
    /// waits for it. Returns the outcome when nobody was left to receive it.
    pub(super) fn finish(&self, call: &Call, outcome: Option<CallOutcome>) -> Option<CallOutcome> {
        self.finish_if(call, outcome, false)
    }

    /// End `call` as one that did not run, if it is still queued (not
    /// started meanwhile by the loop thread).
    pub(super) fn finish_if_queued(&self, call: &Call) {
        self.finish_if(call, None, true);
    }

    fn finish_if(
        &self,
        call: &Call,
        outcome: Option<CallOutcome>,
        queued_only: bool,
    ) -> Option<CallOutcome> {
        let (to, launched): (Completion, Option<Instant>) = call.end(queued_only)?;
        let emptied = {
            let mut inner = self.inner.lock();
            inner.calls.remove(&call.id);
            inner.calls.is_empty()
        };
        let unreceived = to.deliver(outcome, launched);
        if self.named_waiters.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            self.finished.notify_waiters();
        }
        if emptied {
            self.emptied.notify_waiters();
        }
        unreceived
    }

    /// Resolves once no call is unfinished (at once if none is).
    pub async fn emptied(&self) {
        loop {
            let notified = self.emptied.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_empty() {
                return;
            }
            notified.await;
        }
    }
}

/// End `call`, whose host is gone (its loop's last run dropped it while a
/// task still ran), and tell whoever waits for it. Returns the outcome when
/// nobody was left to receive it.
pub(super) fn finish_orphan(call: &Call, outcome: CallOutcome) -> Option<CallOutcome> {
    let (to, launched) = call.end(false)?;
    to.deliver(Some(outcome), launched)
}
