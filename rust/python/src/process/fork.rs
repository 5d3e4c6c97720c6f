//! Keeping `fork()` out of the few steps that change process-wide Python
//! state without the GIL.
//!
//! Our native threads (tokio's, the timer's) change such state in two places:
//! making or deleting their thread state (the interpreter's thread-list lock,
//! see [`super::thread_state`]), and dropping a Python reference while
//! detached, which pyo3 queues in its process-wide pool under a lock. A fork
//! landing inside either leaves that lock held for ever in the child: it hangs
//! in `os.fork()` itself, or at its first call into the extension.
//!
//! Each such step runs in [`excluding_forks`]; the prepare handler
//! ([`before_fork`], registered by [`super::init`]) waits until none is under
//! way and holds new ones back until the fork is over. The steps are short and need neither the GIL nor anything
//! else the forking thread may hold, so the wait always ends. A reference
//! dropped while attached needs no guard: the forking thread holds the GIL.

use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};

unsafe extern "C" {
    /// Whether this thread holds the GIL. In every CPython since 3.4, but
    /// outside the limited API, so pyo3-ffi does not declare it for abi3.
    fn PyGILState_Check() -> std::ffi::c_int;
}

/// Guarded steps under way.
static STEPS: AtomicUsize = AtomicUsize::new(0);
/// Forks under way (between their prepare and parent handlers).
static FORKS: AtomicUsize = AtomicUsize::new(0);

/// Run `step` (short; needs no GIL) with no fork under way: wait for one to be
/// over first.
pub fn excluding_forks<R>(step: impl FnOnce() -> R) -> R {
    loop {
        // Counted before looking for a fork, and the fork counted before it
        // looks at the count (all SeqCst): one of the two always sees the other.
        STEPS.fetch_add(1, Ordering::SeqCst);
        if FORKS.load(Ordering::SeqCst) == 0 {
            break;
        }
        STEPS.fetch_sub(1, Ordering::SeqCst);
        std::thread::yield_now();
    }
    let result = step();
    STEPS.fetch_sub(1, Ordering::SeqCst);
    result
}

/// A value holding Python references (`Py`, `TaskLocals`, a coroutine's
/// waker) that may be dropped by a native thread: dropped detached, it is
/// dropped in [`excluding_forks`]. Its drop must only let go of references
/// (never wait for the GIL or a lock): it may run inside the guard.
pub struct ForkSafeDrop<T>(ManuallyDrop<T>);

impl<T> ForkSafeDrop<T> {
    pub fn new(value: T) -> Self {
        Self(ManuallyDrop::new(value))
    }
}

impl<T> Deref for ForkSafeDrop<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for ForkSafeDrop<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T> Drop for ForkSafeDrop<T> {
    fn drop(&mut self) {
        // SAFETY: dropped once, here; never used again.
        let mut drop_value = || unsafe { ManuallyDrop::drop(&mut self.0) };
        // SAFETY: `PyGILState_Check` only compares this thread's state with
        // the current one; it needs no GIL.
        if unsafe { PyGILState_Check() } == 1 {
            // Attached: the references are let go of now, and may run Python
            // code (a finalizer) — which may fork: no guard may be held.
            drop_value();
        } else {
            excluding_forks(&mut drop_value);
        }
    }
}

/// `pthread_atfork` prepare handler: wait until no guarded step is under
/// way, and hold new ones back until the fork is over.
pub(super) fn before_fork() {
    FORKS.fetch_add(1, Ordering::SeqCst);
    while STEPS.load(Ordering::SeqCst) > 0 {
        std::thread::yield_now();
    }
}

/// In the parent, once the fork is over: let guarded steps go on.
pub(super) fn after_fork_in_parent() {
    FORKS.fetch_sub(1, Ordering::SeqCst);
}

/// In the child: it has none of the parent's threads, stepping or forking.
/// Only stores to atomics (async-signal-safe, as a child's handler must be).
pub(super) fn after_fork_in_child() {
    FORKS.store(0, Ordering::SeqCst);
    STEPS.store(0, Ordering::SeqCst);
}
