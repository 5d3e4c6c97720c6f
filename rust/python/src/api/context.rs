//! `TriggerContext`: the handle a Python trigger uses to talk to the agent.

use std::sync::{Arc, Weak};

use agent_triggers_core::TriggerDelivery;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyString;
use pyo3::{PyTraverseError, PyVisit};

use crate::arguments::type_name;
use crate::delivery;
use crate::run::connection::PyConnection;
use crate::run::handle::TriggerHandle;

/// Handle given to each trigger: sends messages into the agent.
///
/// ``TriggerContext(connection)`` binds a connection: any object with
/// ``async send_trigger(content)`` (or ``send_trigger_notification``), and
/// optionally ``is_idle`` and ``async wait_for_idle()``. A connection with
/// neither send method raises ``TypeError``.
///
/// Every method returns an awaitable that runs on the caller's event loop;
/// cancelling the awaiting task cancels the send. Exceptions raised by the
/// connection propagate to the awaiting trigger; a connection method that is
/// not async (returns nothing to await) is a ``TypeError`` naming it.
#[pyclass(frozen, weakref, module = "agent_triggers._core")]
pub struct TriggerContext {
    /// A reference of its own, which it shows the garbage collector (see
    /// [`PyConnection::clone_ref`]).
    connection: PyConnection,
    delivery: TriggerDelivery,
    /// Its trigger's handle, which keeps the scheduled instant of the call
    /// under way (`None` for a context made by the user: no schedule calls
    /// through it).
    /// (Weak: the handle keeps this context, in the arguments of its calls.)
    handle: Option<Weak<TriggerHandle>>,
}

impl TriggerContext {
    /// A trigger's context, on `connection`, delivering with `delivery`
    /// (the run layer's [`MakeContext`](crate::run::call::MakeContext)).
    pub fn make<'py>(
        py: Python<'py>,
        connection: &PyConnection,
        delivery: TriggerDelivery,
        handle: &Arc<TriggerHandle>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let context = Self {
            connection: connection.clone_ref(py),
            delivery,
            handle: Some(Arc::downgrade(handle)),
        };
        Ok(Bound::new(py, context)?.into_any())
    }
}

/// `content` as a `str`, or a `TypeError`.
fn message<'a, 'py>(content: &'a Bound<'py, PyAny>) -> PyResult<&'a Bound<'py, PyString>> {
    content.cast::<PyString>().map_err(|_| {
        PyTypeError::new_err(format!("content must be str, not {}", type_name(content)))
    })
}

#[pymethods]
impl TriggerContext {
    #[new]
    #[pyo3(signature = (connection))]
    fn py_new(connection: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Self {
            connection: PyConnection::new(connection)?,
            delivery: TriggerDelivery::WaitIdle,
            handle: None,
        })
    }

    /// Send ``content`` (a ``str``) into the agent now, even mid-turn.
    ///
    /// Raises ``TypeError`` at once if ``content`` is not a ``str``.
    fn send<'py>(&self, content: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        self.connection.send(content.py(), message(content)?)
    }

    /// Wait until the agent is idle (``connection.wait_for_idle()``), then send
    /// ``content``. Never sends while the agent is mid-turn: if another turn
    /// began between the agent going idle and this task resuming (``is_idle``
    /// is ``False`` again), it waits again.
    fn send_when_idle<'py>(
        slf: &Bound<'py, Self>,
        content: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = content.py();
        let content = message(content)?;
        let helper = crate::python::bound(py)?.send_when_idle.bind(py);
        let this = slf.get();
        helper.call1((
            this.connection.wait_for_idle_method(py)?,
            slf,
            this.connection.send_method(py),
            content,
        ))
    }

    /// Send ``content`` according to the owning trigger's ``delivery``:
    /// ``WAIT_IDLE`` (the default) as ``send_when_idle``, ``SEND_IMMEDIATELY``
    /// as ``send``, ``INTERRUPT`` as ``await connection.cancel()`` (the agent's
    /// current turn is stopped) then ``send`` — a ``TypeError`` naming
    /// ``cancel`` if the connection has none.
    fn deliver<'py>(
        slf: &Bound<'py, Self>,
        content: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match slf.get().delivery {
            TriggerDelivery::WaitIdle => Self::send_when_idle(slf, content),
            TriggerDelivery::SendImmediately => slf.get().send(content),
            TriggerDelivery::Interrupt => {
                let py = content.py();
                let content = message(content)?;
                let this = slf.get();
                let helper = crate::python::bound(py)?.interrupt_then_send.bind(py);
                helper.call1((
                    this.connection.cancel_method(py)?,
                    this.connection.send_method(py),
                    content,
                ))
            }
        }
    }

    /// Whether the agent is idle now (``True`` when the connection cannot tell).
    #[getter]
    fn is_idle(&self, py: Python<'_>) -> PyResult<bool> {
        self.connection.is_idle(py)
    }

    /// The delivery ``deliver()`` follows: the owning trigger's.
    #[getter]
    fn delivery<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        delivery::to_python(py, self.delivery)
    }

    /// During a call of a scheduled trigger (``every``, ``cron``, ``at``), the
    /// aware UTC ``datetime`` it was due — for a fleet tick, the same on every
    /// replica; ``None`` otherwise (between calls, for other triggers).
    #[getter]
    fn scheduled_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let handle = self.handle.as_ref().and_then(Weak::upgrade);
        let Some(due) = handle.and_then(|handle| handle.scheduled_at()) else {
            return Ok(None);
        };
        crate::python::utc_datetime(py, due).map(Some)
    }

    /// The connection messages are sent into.
    #[getter]
    fn connection(&self, py: Python<'_>) -> Py<PyAny> {
        self.connection.object().clone_ref(py)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "TriggerContext(connection={})",
            self.connection.object().bind(py).repr()?
        ))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(self.connection.object())
    }
}
