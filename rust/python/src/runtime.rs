//! The one process-wide tokio runtime that runs every trigger's timing and tasks.
//!
//! Made lazily on first use with few, named worker threads. A child process made
//! by `os.fork()` inherits the parent's runtime memory but none of its threads:
//! such a runtime would accept work and never run it, so a child gets a runtime
//! of its own on first use instead (the inherited one is leaked, never dropped —
//! dropping it would wait on threads that do not exist in the child).

use agent_triggers_core::sync::Mutex;
use pyo3::PyResult;
use pyo3::exceptions::PyRuntimeError;
use tokio::runtime::{Builder, Handle, Runtime};

const WORKER_THREADS: usize = 2;

/// The runtime, with the pid of the process it was made in.
static RUNTIME: Mutex<Option<(u32, &'static Runtime)>> = Mutex::new(None);

/// A handle to this process's runtime, made on first use.
pub fn handle() -> PyResult<Handle> {
    let pid = std::process::id();
    let mut slot = RUNTIME.lock();
    match *slot {
        Some((owner, runtime)) if owner == pid => Ok(runtime.handle().clone()),
        _ => {
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
            let runtime: &'static Runtime = Box::leak(Box::new(runtime));
            *slot = Some((pid, runtime));
            Ok(runtime.handle().clone())
        }
    }
}
