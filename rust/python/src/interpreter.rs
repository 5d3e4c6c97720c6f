//! Entering Python from tokio threads, and shutting that door at exit.
//!
//! Tokio worker threads call into Python (to hand work to the event loop, to
//! wake a coroutine, to log). If one does so while the interpreter finalizes,
//! CPython aborts the process ("PyGILState_Release: thread state must be
//! current"). `Python::try_attach` only checks for finalization before it
//! starts waiting for the GIL, so it cannot close that race.
//!
//! So every entry from a tokio thread goes through [`with_python`], and an
//! `atexit` hook ([`close`]) — which runs before finalization starts — shuts
//! the gate: it waits, with the GIL released, for the entries under way, after
//! which no tokio thread touches Python again. Work that would have needed
//! Python then is dropped; the interpreter is going away and nothing could run
//! it.
//!
//! pyo3's coroutine waker enters Python directly when woken, so futures
//! awaited by a native coroutine are wrapped in [`WakeThroughGate`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use parking_lot::RwLock;
use pyo3::prelude::*;

/// `true` while tokio threads may enter Python.
static OPEN: RwLock<bool> = RwLock::new(true);

/// Run `f` attached to the interpreter, unless it is shutting down (then `None`).
///
/// May wait for the GIL; never call it while holding a lock the loop thread
/// might wait for.
pub fn with_python<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> Option<R> {
    // `read_recursive`: an entry nested in another must not wait behind `close`.
    let open = OPEN.read_recursive();
    if !*open {
        return None;
    }
    Python::try_attach(f)
}

/// The `atexit` hook: no tokio thread enters Python after this returns.
#[pyfunction]
pub fn close(py: Python<'_>) {
    // Entries under way may be waiting for the GIL: let go of it while waiting
    // for them to finish.
    py.detach(|| *OPEN.write() = false);
}

/// A future whose waker enters Python only through the gate (see module docs).
pub struct WakeThroughGate<F>(pub F);

struct GatedWaker(Waker);

impl Wake for GatedWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        with_python(|_| self.0.wake_by_ref());
    }
}

impl<F: Future> Future for WakeThroughGate<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: structural pinning of the only field; it is never moved out.
        let inner = unsafe { self.map_unchecked_mut(|s| &mut s.0) };
        let waker = Waker::from(Arc::new(GatedWaker(cx.waker().clone())));
        inner.poll(&mut Context::from_waker(&waker))
    }
}
