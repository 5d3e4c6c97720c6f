//! Rust futures awaited from Python, under asyncio or trio.
//!
//! An [`awaitable`] is the coroutine `agent_triggers._awaiting.drive(awaiting)`
//! around an [`Awaiting`]: Python polls the future on the awaiting task's
//! thread and, while it is pending, sleeps on its own host's primitive, which
//! the future's waker sets. pyo3's `async fn` methods cannot serve trio: their
//! coroutines yield asyncio futures.
//!
//! The waker enters Python only through the gate ([`with_python`]): it is
//! woken from tokio's threads, perhaps as the interpreter finalizes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use agent_triggers_core::sync::Mutex;
use pyo3::IntoPyObjectExt;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use super::{ForkSafeDrop, with_python};
use crate::python;

type BoxedFuture = Pin<Box<dyn Future<Output = PyResult<Py<PyAny>>> + Send>>;

/// The coroutine that awaits `future` on whichever library awaits it.
/// Nothing of `future` runs until it is awaited.
pub fn awaitable<F, T>(py: Python<'_>, future: F) -> PyResult<Bound<'_, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'py> IntoPyObject<'py> + Send + 'static,
{
    drive(py, future, false)
}

/// As [`awaitable`], but under trio the wait is shielded from the awaiting
/// task's cancel scopes: for a clean-up that must be waited for (an
/// `__aexit__`), as a nursery's exit waits for its children.
pub fn awaitable_shielded<F, T>(py: Python<'_>, future: F) -> PyResult<Bound<'_, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'py> IntoPyObject<'py> + Send + 'static,
{
    drive(py, future, true)
}

fn drive<F, T>(py: Python<'_>, future: F, shield: bool) -> PyResult<Bound<'_, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'py> IntoPyObject<'py> + Send + 'static,
{
    // Polled attached (by `Awaiting::poll`): the value converts there.
    let future = async move {
        let value = future.await?;
        Python::attach(|py| value.into_py_any(py))
    };
    let awaiting = Bound::new(
        py,
        Awaiting {
            future: Mutex::new(Some(Box::pin(future))),
        },
    )?;
    python::bound(py)?.drive.bind(py).call1((awaiting, shield))
}

/// A Rust future, polled by `agent_triggers._awaiting.drive`.
#[pyclass(frozen, module = "agent_triggers._core")]
pub struct Awaiting {
    /// `None` once finished or closed; taken out while polled.
    future: Mutex<Option<BoxedFuture>>,
}

#[pymethods]
impl Awaiting {
    /// Poll the future once: ``(True, result)`` when it is done, else
    /// ``(False, None)``, and ``wake()`` will be called (from any thread) when
    /// polling again can make progress. Raises what the future fails with.
    fn poll(&self, py: Python<'_>, wake: Py<PyAny>) -> PyResult<(bool, Py<PyAny>)> {
        // Out of the lock while polled: the future runs Python code, which
        // could reach `close()` (a finalizer, say).
        let Some(mut future) = self.future.lock().take() else {
            return Err(PyRuntimeError::new_err(
                "this awaitable is finished: it cannot be awaited again",
            ));
        };
        let waker = Waker::from(Arc::new(PythonWaker(ForkSafeDrop::new(wake))));
        match future.as_mut().poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(result) => result.map(|value| (true, value)),
            Poll::Pending => {
                *self.future.lock() = Some(future);
                Ok((false, py.None()))
            }
        }
    }

    /// Drop the future: the awaiting task was cancelled (or is done).
    fn close(&self) {
        let future = self.future.lock().take();
        drop(future);
    }
}

/// Calls a Python callable when woken; let go of by whichever thread drops
/// the last clone.
struct PythonWaker(ForkSafeDrop<Py<PyAny>>);

impl Wake for PythonWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        with_python(|py| {
            // The callable hands the wake-up to its host's thread-safe entry
            // and swallows "that host is gone"; anything else it raises has
            // nobody to go to.
            if let Err(err) = self.0.call0(py) {
                err.write_unraisable(py, None);
            }
        });
    }
}
