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
//! it. The bridge from Rust's `log` records to Python's `logging` goes through
//! the gate too ([`GatedLogger`]).
//!
//! The gate is two atomics, not a lock: a `fork()` taken while a tokio thread
//! is inside would leave a lock held forever in the child, whose exit would
//! then hang on it. A fork handler zeroes the count instead (the child has
//! none of the parent's threads).
//!
//! Each native thread enters Python with a thread state of its own, made on
//! its first entry (see [`crate::thread_state`]): a fork must not land while
//! one is being made.
//!
//! pyo3's coroutine waker enters Python directly when woken, so futures
//! awaited by a native coroutine are wrapped in [`WakeThroughGate`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use pyo3::prelude::*;

use crate::fork_guard::ForkSafeDrop;

/// `true` while tokio threads may enter Python.
static OPEN: AtomicBool = AtomicBool::new(true);
/// Entries under way (see [`with_python`]).
static INSIDE: AtomicUsize = AtomicUsize::new(0);

/// Run `f` attached to the interpreter, unless it is shutting down (then `None`).
///
/// May wait for the GIL; never call it while holding a lock the loop thread
/// might wait for.
pub fn with_python<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> Option<R> {
    unless_shutting_down(|| {
        crate::thread_state::ensure();
        Python::try_attach(f)
    })
    .flatten()
}

/// Run `f`, which may enter Python, unless the interpreter is shutting down
/// (then `None`); [`close`] waits for it to return.
pub fn unless_shutting_down<R>(f: impl FnOnce() -> R) -> Option<R> {
    struct Leaving;
    impl Drop for Leaving {
        fn drop(&mut self) {
            INSIDE.fetch_sub(1, Ordering::SeqCst);
        }
    }
    // Counted before looking at the gate, so that `close` (which shuts it,
    // then waits for the count to drain) never misses an entry.
    INSIDE.fetch_add(1, Ordering::SeqCst);
    let _leaving = Leaving;
    if !OPEN.load(Ordering::SeqCst) {
        return None;
    }
    Some(f())
}

/// The `atexit` hook: no tokio thread enters Python after this returns.
#[pyfunction]
pub fn close(py: Python<'_>) {
    OPEN.store(false, Ordering::SeqCst);
    // Entries under way may be waiting for the GIL: let go of it while they
    // finish. (An entry nested in this very call is impossible: atexit hooks
    // run on the main thread, never inside `with_python`.)
    py.detach(|| {
        while INSIDE.load(Ordering::SeqCst) > 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    });
}

/// Make a forked child forget the parent's entries (see the module docs).
pub fn reset_in_forked_children() {
    #[cfg(unix)]
    {
        extern "C" fn in_child() {
            INSIDE.store(0, Ordering::SeqCst);
        }
        static REGISTERED: std::sync::Once = std::sync::Once::new();
        REGISTERED.call_once(|| {
            // SAFETY: the handler only stores to an atomic, which is
            // async-signal-safe, as fork handlers must be.
            unsafe {
                libc::pthread_atfork(None, None, Some(in_child));
            }
        });
    }
}

/// pyo3-log's logger, entered through the gate: a record logged by a tokio
/// thread while the interpreter finalizes is dropped, not a crash.
pub struct GatedLogger(pub pyo3_log::Logger);

impl log::Log for GatedLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.0.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        with_python(|_| self.0.log(record));
    }

    fn flush(&self) {}
}

/// A future whose waker enters Python only through the gate (see module docs).
pub struct WakeThroughGate<F>(pub F);

/// The waker is let go of by whichever thread drops the last clone.
struct GatedWaker(ForkSafeDrop<Waker>);

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
        let waker = Waker::from(Arc::new(GatedWaker(ForkSafeDrop::new(cx.waker().clone()))));
        inner.poll(&mut Context::from_waker(&waker))
    }
}
