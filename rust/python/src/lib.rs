//! `agent_triggers._core`: the PyO3 extension module.
//!
//! Layers, each using only those below it (see ARCHITECTURE.md):
//! - [`api`]: the Python classes and functions; parse arguments, delegate.
//! - [`run`]: one `start()`..`stop()` of a runner's triggers.
//! - [`host`]: hands Python calls to the event loop; knows nothing of triggers.
//! - [`process`]: the exit gate, thread states, fork safety, the tokio runtime.
//!
//! Leaves any layer may use: [`arguments`], [`delivery`], [`gc`],
//! [`logging`], [`python`].

// The crate's API is the Python module; its Rust docs are for maintainers
// (`cargo doc --document-private-items`), so links to private items are right.
#![allow(rustdoc::private_intra_doc_links)]

mod api;
mod arguments;
mod delivery;
mod gc;
mod host;
mod logging;
mod process;
mod python;
mod run;

use pyo3::prelude::*;

pyo3::create_exception!(
    agent_triggers._core,
    AlreadyStartedError,
    pyo3::exceptions::PyRuntimeError,
    "Raised by ``TriggerRunner.start()`` when the runner is already started."
);

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    process::init(m.py(), m)?;
    run::call::register_context_maker(api::context::TriggerContext::make);
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add(
        "AlreadyStartedError",
        m.py().get_type::<AlreadyStartedError>(),
    )?;
    m.add_class::<api::runner::TriggerRunner>()?;
    m.add_class::<api::context::TriggerContext>()?;
    m.add_class::<api::native::NativeTrigger>()?;
    m.add_class::<api::native::EventSource>()?;
    m.add_class::<process::awaiting::Awaiting>()?;
    m.add_class::<host::trio::TrioServing>()?;
    m.add_class::<api::every::PeriodicTrigger>()?;
    m.add_class::<api::cron::CronTrigger>()?;
    m.add_class::<api::once::OneShotTrigger>()?;
    m.add_class::<api::file_watch::FileChangeTrigger>()?;
    m.add_class::<api::fleet::RedisFleet>()?;
    m.add_function(wrap_pyfunction!(api::every::every, m)?)?;
    m.add_function(wrap_pyfunction!(api::cron::cron, m)?)?;
    m.add_function(wrap_pyfunction!(api::once::after, m)?)?;
    m.add_function(wrap_pyfunction!(api::once::at, m)?)?;
    m.add_function(wrap_pyfunction!(api::file_watch::on_file_change, m)?)?;
    m.add_function(wrap_pyfunction!(delivery::delivery_argument, m)?)?;
    m.add_function(wrap_pyfunction!(api::_inject_panic, m)?)?;
    Ok(())
}
