//! The one process-wide tokio runtime that runs every trigger's timing and tasks.
//!
//! Made lazily on first use with few, named worker threads. A child process made
//! by `os.fork()` inherits the parent's runtime memory but none of its threads:
//! such a runtime would accept work and never run it, so a child gets a runtime
//! of its own on first use instead (the inherited one is leaked, never dropped —
//! dropping it would wait on threads that do not exist in the child).
//!
//! The slot is an atomic pointer, not a lock: [`handle`] is called on hot paths
//! (every start and stop, and a wake-up of a loop with no doorbell from the
//! timer thread), and a fork while a parent thread held a lock would leave it
//! held for ever in the child, whose first runner would then hang.

use std::sync::atomic::{AtomicPtr, Ordering};

use pyo3::PyResult;
use pyo3::exceptions::PyRuntimeError;
use tokio::runtime::{Builder, Handle, Runtime};

const WORKER_THREADS: usize = 2;

/// A runtime, with the pid of the process it was made in.
struct Owned {
    pid: u32,
    runtime: Runtime,
}

/// This process's runtime — or a parent's, inherited through a fork.
static RUNTIME: AtomicPtr<Owned> = AtomicPtr::new(std::ptr::null_mut());

/// A handle to this process's runtime, made on first use.
pub fn handle() -> PyResult<Handle> {
    let pid = std::process::id();
    loop {
        let current = RUNTIME.load(Ordering::Acquire);
        // SAFETY: only ever set to a leaked, never freed `Owned`.
        if let Some(owned) = unsafe { current.as_ref() }
            && owned.pid == pid
        {
            return Ok(owned.runtime.handle().clone());
        }
        let runtime = Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("agent-triggers")
            .enable_time()
            .build()
            .map_err(|e| {
                PyRuntimeError::new_err(format!(
                    "agent_triggers could not start its tokio runtime: {e}"
                ))
            })?;
        let made = Box::into_raw(Box::new(Owned { pid, runtime }));
        match RUNTIME.compare_exchange(current, made, Ordering::AcqRel, Ordering::Acquire) {
            // SAFETY: just published, never to be freed.
            Ok(_) => return Ok(unsafe { &*made }.runtime.handle().clone()),
            Err(_) => {
                // Another thread of this process made one first: use that.
                // SAFETY: `made` was never published; this is its only owner.
                let unused = unsafe { Box::from_raw(made) };
                // Without waiting for its idle workers: this may be a thread
                // where blocking is not allowed.
                unused.runtime.shutdown_background();
            }
        }
    }
}
