//! A Python thread state of its own for each native thread that enters Python.
//!
//! A thread that Python did not start has no thread state; `PyGILState_Ensure`
//! (how pyo3 attaches) then makes one on entry and deletes it on exit. Making
//! one takes the interpreter's thread-list lock without the GIL — and
//! CPython 3.11 clears a forked child's thread list (in `PyOS_AfterFork_Child`)
//! under that very lock before it reinitializes it: a `fork()` that lands
//! while a tokio thread is making its thread state leaves the child hung in
//! `os.fork()`. Our threads enter Python thousands of times a second (every
//! hand-off to the loop, every wake-up), so about one fork in 150 did.
//!
//! So a native thread makes its thread state once, on its first entry
//! ([`ensure`]), and keeps it until it ends, and both steps run under a fork
//! guard: a `pthread_atfork` prepare handler waits until no thread is making
//! or deleting one (neither needs the GIL, which the forking thread may hold),
//! and holds back new ones until the fork is over. `PyGILState_Ensure` finds
//! that thread state and only takes the GIL with it, as it does in a thread
//! Python started.

use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use pyo3::ffi;
use pyo3::prelude::*;

/// The interpreter our threads' thread states belong to (set at import).
static INTERPRETER: AtomicPtr<ffi::PyInterpreterState> = AtomicPtr::new(ptr::null_mut());
/// Threads making or deleting their thread state right now.
static CHANGING: AtomicUsize = AtomicUsize::new(0);
/// Forks under way (between their prepare and parent handlers).
static FORKING: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// The thread state this thread made, deleted when the thread ends.
    static OWN: Own = const { Own(Cell::new(ptr::null_mut())) };
}

struct Own(Cell<*mut ffi::PyThreadState>);

impl Drop for Own {
    /// The thread ends: delete its thread state, unless the interpreter is
    /// shutting down (then Python is never entered again, and the thread
    /// state is freed with the interpreter, or leaked with the process).
    fn drop(&mut self) {
        let tstate = self.0.get();
        if tstate.is_null() {
            return;
        }
        crate::interpreter::unless_shutting_down(|| {
            // SAFETY: `tstate` is this thread's own, made by `ensure` and not
            // current (no entry is under way: the thread is ending); the GIL
            // is taken with it to clear it, then let go before the delete,
            // which must not run on a current thread state.
            unsafe {
                ffi::PyEval_RestoreThread(tstate);
                ffi::PyThreadState_Clear(tstate);
                ffi::PyEval_SaveThread();
                changing_thread_states(|| ffi::PyThreadState_Delete(tstate));
            }
        });
    }
}

/// Record the interpreter and install the fork guard; at import, attached.
pub fn init(_attached: Python<'_>) {
    // SAFETY: attached (the token), as `PyInterpreterState_Get` requires.
    INTERPRETER.store(unsafe { ffi::PyInterpreterState_Get() }, Ordering::SeqCst);
    guard_forks();
}

/// Give the calling thread a thread state of its own if it has none.
///
/// Call only while the interpreter may be entered (within
/// [`crate::interpreter::with_python`]'s count, the gate open).
pub fn ensure() {
    // SAFETY: reads this thread's thread-state slot; needs no GIL.
    if !unsafe { ffi::PyGILState_GetThisThreadState() }.is_null() {
        return;
    }
    let interpreter = INTERPRETER.load(Ordering::SeqCst);
    if interpreter.is_null() {
        return;
    }
    // A thread whose thread-locals are already gone (it is ending) has
    // nowhere to keep one: `PyGILState_Ensure` makes a passing one, as before.
    let _ = OWN.try_with(|own| {
        // SAFETY: `PyThreadState_New` needs no GIL; it binds the new thread
        // state to this thread for `PyGILState_Ensure`, which will then
        // never delete it (it did not make it).
        let tstate = unsafe { changing_thread_states(|| ffi::PyThreadState_New(interpreter)) };
        own.0.set(tstate);
    });
}

/// Run `change` (making or deleting a thread state) unless a fork is under
/// way: then wait for it to be over first.
fn changing_thread_states<R>(change: impl FnOnce() -> R) -> R {
    loop {
        // Counted before looking for a fork, and the fork counted before it
        // looks at the count (all SeqCst): one of the two always sees the other.
        CHANGING.fetch_add(1, Ordering::SeqCst);
        if FORKING.load(Ordering::SeqCst) == 0 {
            break;
        }
        CHANGING.fetch_sub(1, Ordering::SeqCst);
        std::thread::yield_now();
    }
    let result = change();
    CHANGING.fetch_sub(1, Ordering::SeqCst);
    result
}

fn guard_forks() {
    #[cfg(unix)]
    {
        extern "C" fn prepare() {
            FORKING.fetch_add(1, Ordering::SeqCst);
            // Each change is short and needs neither the GIL nor anything
            // else the forking thread may hold.
            while CHANGING.load(Ordering::SeqCst) > 0 {
                std::thread::yield_now();
            }
        }
        extern "C" fn in_parent() {
            FORKING.fetch_sub(1, Ordering::SeqCst);
        }
        extern "C" fn in_child() {
            // The child has none of the parent's threads, changing or forking.
            FORKING.store(0, Ordering::SeqCst);
            CHANGING.store(0, Ordering::SeqCst);
        }
        static REGISTERED: std::sync::Once = std::sync::Once::new();
        REGISTERED.call_once(|| {
            // SAFETY: the child handler only stores to atomics, which is
            // async-signal-safe, as fork handlers in the child must be.
            unsafe {
                libc::pthread_atfork(Some(prepare), Some(in_parent), Some(in_child));
            }
        });
    }
}
