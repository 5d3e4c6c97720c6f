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
//! ([`ensure`]), and keeps it until it ends; both steps keep forks out (see
//! [`super::fork`]). `PyGILState_Ensure` finds that thread state and
//! only takes the GIL with it, as it does in a thread Python started.

use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use pyo3::ffi;
use pyo3::prelude::*;

use super::fork::excluding_forks;

/// The interpreter our threads' thread states belong to (set at import).
static INTERPRETER: AtomicPtr<ffi::PyInterpreterState> = AtomicPtr::new(ptr::null_mut());

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
        super::gate::unless_shutting_down(|| {
            // SAFETY: `tstate` is this thread's own, made by `ensure` and not
            // current (no entry is under way: the thread is ending); the GIL
            // is taken with it to clear it, then let go before the delete,
            // which must not run on a current thread state.
            unsafe {
                ffi::PyEval_RestoreThread(tstate);
                ffi::PyThreadState_Clear(tstate);
                ffi::PyEval_SaveThread();
                excluding_forks(|| ffi::PyThreadState_Delete(tstate));
            }
        });
    }
}

/// Record the interpreter; at import, attached.
pub fn init(_attached: Python<'_>) {
    // SAFETY: attached (the token), as `PyInterpreterState_Get` requires.
    INTERPRETER.store(unsafe { ffi::PyInterpreterState_Get() }, Ordering::SeqCst);
}

/// Give the calling thread a thread state of its own if it has none.
///
/// Call only while the interpreter may be entered (within
/// [`super::with_python`]'s count, the gate open).
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
        let tstate = unsafe { excluding_forks(|| ffi::PyThreadState_New(interpreter)) };
        own.0.set(tstate);
    });
}
