//! The one process-wide tokio runtime that runs every trigger's timing and tasks.
//!
//! Made lazily on first use with few, named worker threads. A child process made
//! by `os.fork()` inherits the parent's runtime memory but none of its threads:
//! such a runtime would accept work and never run it, so the child forgets it
//! ([`after_fork_in_child`]) and makes its own on first use (the inherited one
//! is leaked, never dropped — dropping it would wait on threads that do not
//! exist in the child).
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

/// This process's runtime, once made (never freed: see the module docs).
static RUNTIME: AtomicPtr<Runtime> = AtomicPtr::new(std::ptr::null_mut());

/// A handle to this process's runtime, made on first use.
pub fn handle() -> PyResult<Handle> {
    loop {
        let current = RUNTIME.load(Ordering::Acquire);
        // SAFETY: only ever set to a leaked, never freed `Runtime`.
        if let Some(runtime) = unsafe { current.as_ref() } {
            return Ok(runtime.handle().clone());
        }
        let runtime = Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("agent-triggers")
            .enable_time()
            // The fleet's Redis connections.
            .enable_io()
            .build()
            .map_err(|e| {
                PyRuntimeError::new_err(format!(
                    "agent_triggers could not start its tokio runtime: {e}"
                ))
            })?;
        let made = Box::into_raw(Box::new(runtime));
        match RUNTIME.compare_exchange(current, made, Ordering::AcqRel, Ordering::Acquire) {
            // SAFETY: just published, never to be freed.
            Ok(_) => return Ok(unsafe { &*made }.handle().clone()),
            Err(_) => {
                // Another thread of this process made one first: use that.
                // SAFETY: `made` was never published; this is its only owner.
                let unused = unsafe { Box::from_raw(made) };
                // Without waiting for its idle workers: this may be a thread
                // where blocking is not allowed.
                unused.shutdown_background();
            }
        }
    }
}

/// In a forked child: forget the parent's runtime (leaked: its threads are
/// not here). Only stores to an atomic (async-signal-safe).
pub(super) fn after_fork_in_child() {
    RUNTIME.store(std::ptr::null_mut(), Ordering::Release);
}
