//! The Python-facing classes and functions: each parses its arguments (a
//! clear `TypeError`/`ValueError` naming the one at fault) and delegates to
//! the layers below.

pub mod context;
pub mod cron;
pub mod every;
pub mod file_watch;
pub mod fleet;
pub mod native;
pub mod once;
mod operate;
mod plan;
pub mod runner;

use pyo3::prelude::*;

/// `_inject_panic(site)`: make the next pass through `site` panic, to test
/// that it is survived (see `agent_triggers_core::fault`); `"now"` panics in
/// this very call, which Python sees as pyo3's `PanicException`. Private: for
/// the test suite only.
#[pyfunction]
pub fn _inject_panic(site: &str) -> PyResult<()> {
    use agent_triggers_core::fault::{self, Site};
    if site == "now" {
        panic!("panic injected in a call, for a test");
    }
    let site = Site::from_name(site).ok_or_else(|| {
        pyo3::exceptions::PyValueError::new_err(format!("no panic site named {site:?}"))
    })?;
    fault::arm(site);
    Ok(())
}
