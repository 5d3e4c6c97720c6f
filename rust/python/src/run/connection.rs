//! A Python connection object, as the triggers see it (docs/contract.md §2).
//!
//! Any object with `async send_trigger(content)` — or Antigravity's
//! `send_trigger_notification` — is a connection; `is_idle` and `wait_for_idle`
//! are optional. Methods are looked up on each use, so an object patched after
//! construction (a mock, say) behaves as it is at call time.

use pyo3::call::PyCallArgs;
use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};
use pyo3::{PyTraverseError, PyVisit};

use crate::arguments::type_name;
use crate::process::ForkSafeDrop;

const SEND: &str = "send_trigger";
const SEND_ANTIGRAVITY: &str = "send_trigger_notification";
const CANCEL: &str = "cancel";
const WAIT_FOR_IDLE: &str = "wait_for_idle";

/// A validated Python connection.
pub struct PyConnection {
    object: ForkSafeDrop<Py<PyAny>>,
    /// Which of the two send methods the object has.
    send: &'static str,
}

impl PyConnection {
    /// Check `object` has a send method; `TypeError` naming what is missing if not.
    pub fn new(object: &Bound<'_, PyAny>) -> PyResult<Self> {
        let send = if object.hasattr(SEND)? {
            SEND
        } else if object.hasattr(SEND_ANTIGRAVITY)? {
            SEND_ANTIGRAVITY
        } else {
            return Err(PyTypeError::new_err(format!(
                "connection must have an async {SEND}(content) method (or {SEND_ANTIGRAVITY}); \
                 {} object has neither",
                type_name(object)
            )));
        };
        Ok(Self {
            object: ForkSafeDrop::new(object.clone().unbind()),
            send,
        })
    }

    pub fn object(&self) -> &Py<PyAny> {
        &self.object
    }

    /// The same connection, holding a reference of its own. Each Python
    /// object that shows the connection to the garbage collector must own the
    /// reference it shows: two showing one shared reference would make the
    /// collector count more references than there are, and clear a connection
    /// still in use.
    pub fn clone_ref(&self, py: Python<'_>) -> Self {
        Self {
            object: ForkSafeDrop::new(self.object.clone_ref(py)),
            send: self.send,
        }
    }

    /// `connection.send_trigger(content)`: the awaitable it returns.
    pub fn send<'py>(
        &self,
        py: Python<'py>,
        content: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.call_async(py, self.send, (content,))
    }

    /// `connection.<method>(*args)`: the awaitable it returns. A `TypeError`
    /// naming the method if it is not callable (replaced since the connection
    /// was checked, say) or returns something that cannot be awaited.
    fn call_async<'py>(
        &self,
        py: Python<'py>,
        method: &str,
        args: impl PyCallArgs<'py>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let callable = self.object.bind(py).getattr(method)?;
        if !callable.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "connection.{method} must be an async method, not {}",
                type_name(&callable)
            )));
        }
        let awaitable = callable.call1(args)?;
        ensure_awaitable(&awaitable, &format!("connection.{method}()"))?;
        Ok(awaitable)
    }

    /// The send method, for Python code to call.
    pub fn send_method(&self, py: Python<'_>) -> AsyncMethod {
        self.method(py, self.send)
    }

    /// `wait_for_idle`, for Python code to call, if the connection has one
    /// (an attribute set to `None` counts as none).
    pub fn wait_for_idle_method(&self, py: Python<'_>) -> PyResult<Option<AsyncMethod>> {
        let wait = self
            .object
            .bind(py)
            .getattr_opt(intern!(py, WAIT_FOR_IDLE))?;
        let has_wait = wait.is_some_and(|wait| !wait.is_none());
        Ok(has_wait.then(|| self.method(py, WAIT_FOR_IDLE)))
    }

    /// `cancel` (stop the agent's turn), for Python code to call;
    /// `TypeError` naming it if the connection has none.
    pub fn cancel_method(&self, py: Python<'_>) -> PyResult<AsyncMethod> {
        match self.object.bind(py).getattr_opt(intern!(py, CANCEL))? {
            Some(cancel) if !cancel.is_none() => Ok(self.method(py, CANCEL)),
            _ => Err(PyTypeError::new_err(format!(
                "an INTERRUPT delivery needs the connection's async cancel() (to stop the \
                 agent's turn), and {} has no cancel",
                type_name(self.object.bind(py))
            ))),
        }
    }

    fn method(&self, py: Python<'_>, method: &'static str) -> AsyncMethod {
        AsyncMethod {
            connection: self.clone_ref(py),
            method,
        }
    }

    /// `is_idle` as attribute, property or zero-argument method; absent = idle.
    pub fn is_idle(&self, py: Python<'_>) -> PyResult<bool> {
        match self.object.bind(py).getattr_opt(intern!(py, "is_idle"))? {
            None => Ok(true),
            Some(value) if value.is_callable() => value.call0()?.is_truthy(),
            Some(value) => value.is_truthy(),
        }
    }
}

/// A method of a connection as a Python callable that checks it as `ctx.send`
/// does: looked up at each call, a `TypeError` naming it if it is not
/// callable or returns no awaitable.
#[pyclass(frozen, module = "agent_triggers._core")]
pub struct AsyncMethod {
    connection: PyConnection,
    method: &'static str,
}

#[pymethods]
impl AsyncMethod {
    #[pyo3(signature = (*args))]
    fn __call__<'py>(&self, args: &Bound<'py, PyTuple>) -> PyResult<Bound<'py, PyAny>> {
        self.connection.call_async(args.py(), self.method, args)
    }

    fn __repr__(&self) -> String {
        format!("<connection.{}>", self.method)
    }

    // Held by the coroutine awaiting it: its own reference to the connection
    // is shown to the garbage collector, as a bound method's would be.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(self.connection.object())
    }
}

/// `TypeError` unless `value`, what `producer` returned, can be awaited.
pub fn ensure_awaitable(value: &Bound<'_, PyAny>, producer: &str) -> PyResult<()> {
    if value.hasattr(intern!(value.py(), "__await__"))? {
        Ok(())
    } else {
        Err(PyTypeError::new_err(format!(
            "{producer} must return an awaitable (is it an async def?), got {}",
            type_name(value)
        )))
    }
}
