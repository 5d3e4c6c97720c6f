//! The gate tokio threads pass to enter Python, shut at exit.
//!
//! Tokio worker threads call into Python (to hand work to the event loop, to
//! wake a coroutine, to log). If one does so while the interpreter finalizes,
//! CPython aborts the process ("PyGILState_Release: thread state must be
//! current"). `Python::try_attach` only checks for finalization before it
//! starts waiting for the GIL, so it cannot close that race.
//!
//! So every entry from a tokio thread counts itself in here
//! ([`unless_shutting_down`], through [`super::with_python`]), and an
//! `atexit` hook ([`close`]) — which runs before finalization starts — shuts
//! the gate: it waits, with the GIL released, for the entries under way, after
//! which no tokio thread touches Python again. Work that would have needed
//! Python then is dropped; the interpreter is going away and nothing could run
//! it.
//!
//! The gate is two atomics, not a lock: a `fork()` taken while a tokio thread
//! is inside would leave a lock held forever in the child, whose exit would
//! then hang on it. The child forgets the count instead
//! ([`after_fork_in_child`]): it has none of the parent's threads.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use pyo3::prelude::*;

/// `true` while tokio threads may enter Python.
static OPEN: AtomicBool = AtomicBool::new(true);
/// Entries under way.
static INSIDE: AtomicUsize = AtomicUsize::new(0);

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
    // run on the main thread, never inside an entry.)
    py.detach(|| {
        while INSIDE.load(Ordering::SeqCst) > 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    });
}

/// In a forked child: forget the parent's entries. Only stores to an atomic
/// (async-signal-safe, as a child's fork handler must be).
pub(super) fn after_fork_in_child() {
    INSIDE.store(0, Ordering::SeqCst);
}
