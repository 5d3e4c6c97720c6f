//! `agent_triggers._core`: the PyO3 extension module. Registers the native
//! classes and functions; each lives in its own module.

mod arguments;
mod connection;
mod context;
mod cron;
mod delivery;
mod event_loop;
mod every;
mod file_watch;
mod fork_guard;
mod interpreter;
mod logging;
mod native;
mod once;
mod periodic;
mod runner;
mod runtime;
mod thread_state;
mod trigger;

use pyo3::prelude::*;

pyo3::create_exception!(
    agent_triggers._core,
    AlreadyStartedError,
    pyo3::exceptions::PyRuntimeError,
    "Raised by ``TriggerRunner.start()`` when the runner is already started."
);

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    logging::install_bridge(m.py())?;
    interpreter::reset_in_forked_children();
    fork_guard::install();
    thread_state::init(m.py());
    // Before finalization, stop tokio threads from entering Python.
    let close = wrap_pyfunction!(interpreter::close, m)?;
    m.py()
        .import("atexit")?
        .call_method1("register", (close,))?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add(
        "AlreadyStartedError",
        m.py().get_type::<AlreadyStartedError>(),
    )?;
    m.add_class::<runner::TriggerRunner>()?;
    m.add_class::<context::TriggerContext>()?;
    m.add_class::<native::NativeTrigger>()?;
    m.add_class::<native::EventSource>()?;
    m.add_class::<every::PeriodicTrigger>()?;
    m.add_class::<cron::CronTrigger>()?;
    m.add_class::<once::OneShotTrigger>()?;
    m.add_class::<file_watch::FileChangeTrigger>()?;
    m.add_function(wrap_pyfunction!(every::every, m)?)?;
    m.add_function(wrap_pyfunction!(cron::cron, m)?)?;
    m.add_function(wrap_pyfunction!(once::after, m)?)?;
    m.add_function(wrap_pyfunction!(once::at, m)?)?;
    m.add_function(wrap_pyfunction!(file_watch::on_file_change, m)?)?;
    m.add_function(wrap_pyfunction!(delivery::delivery_argument, m)?)?;
    m.add_function(wrap_pyfunction!(logging::_inject_panic, m)?)?;
    Ok(())
}
