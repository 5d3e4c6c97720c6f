//! The trio side's handles on the host: the serve task's, and each call's.

use std::sync::{Arc, Weak};

use agent_triggers_core::sync::Mutex;
use pyo3::prelude::*;

use super::TrioHost;
use crate::host::call::{Call, CallOutcome};
use crate::host::doorbell::Reader;
use crate::host::report_unreceived;
use crate::process::ForkSafeDrop;

/// What `agent_triggers._trio_host.serve` holds: the host (weakly: the serve
/// task must not keep it alive), the socket it waits on, and the doorbell's
/// [`Reader`] (dropped as it ends: rings then find nobody to wake).
#[pyclass(frozen, module = "agent_triggers._core")]
pub struct TrioServing {
    host: Weak<TrioHost>,
    #[cfg(unix)]
    watched: Mutex<Option<std::os::unix::net::UnixStream>>,
    reader: Mutex<Option<Arc<Reader>>>,
}

impl TrioServing {
    #[cfg(unix)]
    pub(super) fn new(
        host: Weak<TrioHost>,
        watched: std::os::unix::net::UnixStream,
        reader: Option<Arc<Reader>>,
    ) -> Self {
        Self {
            host,
            watched: Mutex::new(Some(watched)),
            reader: Mutex::new(reader),
        }
    }
}

#[pymethods]
impl TrioServing {
    /// The socket to wait on (``-1`` once closed).
    fn fileno(&self) -> i32 {
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            self.watched
                .lock()
                .as_ref()
                .map_or(-1, |watched| watched.as_raw_fd())
        }
        #[cfg(not(unix))]
        -1
    }

    /// The nursery is open: `start()` can go on.
    fn opened(&self, nursery: Py<PyAny>) {
        if let Some(host) = self.host.upgrade() {
            let _ = host.nursery.set(ForkSafeDrop::new(nursery));
            host.opened.cancel();
        }
    }

    /// Start everything queued; ``False`` once the host is gone (the serve
    /// loop ends).
    fn drain(&self, py: Python<'_>) -> bool {
        #[cfg(unix)]
        if let Some(watched) = self.watched.lock().as_ref() {
            crate::host::doorbell::empty(watched);
        }
        match self.host.upgrade() {
            Some(host) => {
                host.drain(py);
                true
            }
            None => false,
        }
    }

    /// The serve task has ended (trio no longer waits on the socket): close
    /// the socket, and tell the host (through the reader) that nothing runs
    /// here any more.
    fn closed(&self) {
        let reader = self.reader.lock().take();
        drop(reader);
        #[cfg(unix)]
        drop(self.watched.lock().take());
    }
}

/// Told by `agent_triggers._trio_host.run_call` how a call ended.
#[pyclass(frozen, module = "agent_triggers._core")]
pub struct CallDone(Arc<Call>, Weak<TrioHost>);

impl CallDone {
    pub(super) fn new(call: Arc<Call>, host: Weak<TrioHost>) -> Self {
        Self(call, host)
    }
}

#[pymethods]
impl CallDone {
    /// ``error``: ``None`` if the call returned or was cancelled, else what it
    /// failed with (logged).
    fn __call__(&self, py: Python<'_>, error: Option<Bound<'_, PyAny>>) {
        // Raised into the serve task, a panic would crash the user's trio run
        // (TrioInternalError): caught, it is logged.
        let ended = agent_triggers_core::fault::catch(|| self.end(py, error));
        if let Err(message) = ended {
            crate::logging::report_failure(
                py,
                &self.0.name,
                crate::logging::internal_error(&message),
            );
        }
    }
}

impl CallDone {
    fn end(&self, py: Python<'_>, error: Option<Bound<'_, PyAny>>) {
        // Breaks the cycle scope -> ... -> call -> scope.
        drop(self.0.take_task());
        let outcome: CallOutcome = error.map_or(Ok(()), |error| Err(PyErr::from_value(error)));
        match self.1.upgrade() {
            Some(host) => report_unreceived(py, &host.registry, &self.0, outcome),
            None => {
                if let Some(Err(err)) = crate::host::registry::finish_orphan(&self.0, outcome) {
                    crate::logging::report_failure(py, &self.0.name, err);
                }
            }
        }
    }
}
