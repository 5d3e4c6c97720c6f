//! Process safety: the layer every other one stands on.
//!
//! Native threads (tokio's workers, the core's timer thread, the blocking
//! pool) enter Python only through [`with_python`], which passes the exit gate
//! ([`gate`]) and gives the thread a Python thread state of its own
//! ([`thread_state`]). Steps that change process-wide state without the GIL
//! keep `fork()` out ([`fork`]); a forked child resets what it inherited
//! (one registration, [`init`]), including the tokio runtime ([`runtime`]).

pub mod awaiting;
pub mod fork;
pub mod gate;
pub mod runtime;
pub mod thread_state;

use std::sync::atomic::{AtomicU64, Ordering};

use pyo3::prelude::*;

pub use fork::ForkSafeDrop;

/// How many forks this process descends through: a record made before a fork
/// (a started runner) tells, by comparing it, that it is in a child.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// At import, attached: record the interpreter, register the fork handlers
/// (once per process), and have `atexit` shut the gate before finalization.
pub fn init(py: Python<'_>, module: &Bound<'_, PyModule>) -> PyResult<()> {
    thread_state::init(py);
    register_fork_handlers();
    install_log_bridge(py)?;
    let close = wrap_pyfunction!(gate::close, module)?;
    py.import("atexit")?.call_method1("register", (close,))?;
    Ok(())
}

/// The process's fork generation (see [`GENERATION`]).
pub fn generation() -> u64 {
    GENERATION.load(Ordering::SeqCst)
}

/// The one `pthread_atfork` registration: the prepare and parent handlers of
/// [`fork`], and in the child the list of what it must forget.
fn register_fork_handlers() {
    #[cfg(unix)]
    {
        extern "C" fn prepare() {
            fork::before_fork();
        }
        extern "C" fn in_parent() {
            fork::after_fork_in_parent();
        }
        extern "C" fn in_child() {
            // Each only stores to atomics: async-signal-safe, as a child's
            // fork handler must be.
            fork::after_fork_in_child();
            gate::after_fork_in_child();
            runtime::after_fork_in_child();
            GENERATION.fetch_add(1, Ordering::SeqCst);
        }
        static REGISTERED: std::sync::Once = std::sync::Once::new();
        REGISTERED.call_once(|| {
            // SAFETY: the handlers only touch atomics (see above).
            unsafe {
                libc::pthread_atfork(Some(prepare), Some(in_parent), Some(in_child));
            }
        });
    }
}

/// Run `f` attached to the interpreter, unless it is shutting down (then `None`).
///
/// May wait for the GIL; never call it while holding a lock the loop thread
/// might wait for.
pub fn with_python<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> Option<R> {
    gate::unless_shutting_down(|| {
        thread_state::ensure();
        Python::try_attach(f)
    })
    .flatten()
}

/// Route the core's `tracing` events (emitted as `log` records) to Python's
/// `logging`, under the logger named by their target (`agent_triggers`),
/// through the gate. Levels are not cached: a level set at run time (say, INFO
/// on `agent_triggers` to see a fleet's reconnects) takes effect at once, and
/// the core logs rarely (warnings, errors, a fleet's state changes).
fn install_log_bridge(py: Python<'_>) -> PyResult<()> {
    let logger = pyo3_log::Logger::new(py, pyo3_log::Caching::Loggers)?;
    // Another copy of this module in the process may have installed one first.
    if log::set_boxed_logger(Box::new(GatedLogger(logger))).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
    Ok(())
}

/// pyo3-log's logger, entered through the gate: a record logged by a tokio
/// thread while the interpreter finalizes is dropped, not a crash.
struct GatedLogger(pyo3_log::Logger);

impl log::Log for GatedLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.0.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        with_python(|_| self.0.log(record));
    }

    fn flush(&self) {}
}
