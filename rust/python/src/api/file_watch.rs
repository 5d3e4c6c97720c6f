//! `on_file_change`: a trigger called with batches of file changes (docs/contract.md §6).

use std::path::PathBuf;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyString};

use super::native::NativeTrigger;
use crate::arguments::{parse_seconds, type_name};
use crate::run::source::{FilesSpec, SourceSpec};

/// A file-watching trigger made by ``on_file_change()``.
#[pyclass(frozen, extends = NativeTrigger, module = "agent_triggers._core")]
pub struct FileChangeTrigger {
    path: PathBuf,
    recursive: bool,
    debounce: f64,
}

#[pymethods]
impl FileChangeTrigger {
    /// The watched path, absolute.
    #[getter]
    fn path(&self) -> &std::ffi::OsStr {
        self.path.as_os_str()
    }

    /// Whether everything below a watched directory is watched too.
    #[getter]
    fn recursive(&self) -> bool {
        self.recursive
    }

    /// The batching window, in seconds.
    #[getter]
    fn debounce(&self) -> f64 {
        self.debounce
    }
}

/// on_file_change(path, callback, *, name=None, recursive=True, debounce=0.05, delivery=TriggerDelivery.WAIT_IDLE, key=None, max_consecutive_failures=None)
/// --
///
/// A trigger that calls ``await callback(ctx, changes)`` when files at
/// ``path`` change, with OS-level watching in Rust (the ``notify`` crate).
///
/// - ``path``: ``str`` or ``os.PathLike``, a file or a directory. A path that
///   does not exist yet is watched for its appearance (an ``ADDED`` change).
///   ``ValueError`` if it is empty, holds a NUL or is no file name the file
///   system can encode (a lone surrogate such as ``"\ud800"``).
/// - ``changes``: a list of immutable ``FileChange(kind, path)`` —
///   ``kind`` a ``FileChangeKind`` (``ADDED``, ``MODIFIED``, ``DELETED``; a
///   rename is a ``DELETED`` and an ``ADDED``), ``path`` an absolute ``str``.
///   Events are batched over ``debounce`` seconds from the first of them; a
///   repeated change is listed once.
/// - ``recursive``: also watch everything below a directory (default).
/// - ``name`` defaults to ``f"on_file_change_{basename}"``.
/// - ``key`` is refused (``ValueError``): each replica watches its own files.
///
/// Calls never overlap: changes arriving during a call come in the next one.
/// The OS watch is set up by the runner's ``start()`` — a change made once it
/// has returned is seen; ``start()`` raises ``RuntimeError`` if the watch
/// cannot be set up — and released on stop and on drop. A callback that
/// raises is logged and watching goes on.
#[pyfunction]
#[pyo3(signature = (path, callback, *, name = None, recursive = None, debounce = None, delivery = None, key = None, max_consecutive_failures = None))]
#[allow(clippy::too_many_arguments)] // the contract's keywords, each checked
pub fn on_file_change(
    py: Python<'_>,
    path: &Bound<'_, PyAny>,
    callback: &Bound<'_, PyAny>,
    name: Option<&Bound<'_, PyAny>>,
    recursive: Option<&Bound<'_, PyAny>>,
    debounce: Option<&Bound<'_, PyAny>>,
    delivery: Option<&Bound<'_, PyAny>>,
    key: Option<&Bound<'_, PyAny>>,
    max_consecutive_failures: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<FileChangeTrigger>> {
    NativeTrigger::refuse_key(key, "on_file_change")?;
    let not_a_path = || {
        PyTypeError::new_err(format!(
            "path must be a str or os.PathLike, not {}",
            type_name(path)
        ))
    };
    let text = match crate::python::bound(py)?.fspath.bind(py).call1((path,)) {
        Ok(text) if text.is_instance_of::<PyString>() => text,
        // Bytes, or a type os.fspath() refuses: ours to name. Anything else
        // its __fspath__ raises is the caller's to see.
        Ok(_) => return Err(not_a_path()),
        Err(err) if err.is_instance_of::<PyTypeError>(py) => return Err(not_a_path()),
        Err(err) => return Err(err),
    };
    // A str the file system encoding cannot encode (a lone surrogate other
    // than the bytes os.fsdecode() spells as U+DC80..U+DCFF) names no file.
    let given: PathBuf = text.extract().map_err(|err: PyErr| {
        PyValueError::new_err(format!(
            "path must be encodable as a file name ({})",
            err.value(py)
        ))
    })?;
    if given.as_os_str().is_empty() {
        return Err(PyValueError::new_err("path must not be empty"));
    }
    if given.as_os_str().as_encoded_bytes().contains(&0) {
        return Err(PyValueError::new_err(
            "path must not contain a NUL character",
        ));
    }
    let absolute = std::path::absolute(&given)
        .map_err(|e| PyValueError::new_err(format!("cannot watch {given:?}: {e}")))?;
    let recursive = match recursive {
        None => true,
        Some(value) => value
            .cast::<PyBool>()
            .map_err(|_| PyTypeError::new_err("recursive must be a bool"))?
            .is_true(),
    };
    let (debounce, _) = match debounce {
        None => (std::time::Duration::from_millis(50), String::new()),
        Some(value) => parse_seconds(value, "debounce", true)?,
    };
    // The basename of the absolute path: "." is named after the directory.
    let basename = absolute
        .components()
        .next_back()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = NativeTrigger::new(
        || format!("on_file_change_{basename}"),
        callback,
        name,
        delivery,
        SourceSpec::Files(Box::new(FilesSpec {
            path: absolute.clone(),
            recursive,
            debounce,
        })),
    )?
    .failure_limit(max_consecutive_failures)?;
    Py::new(
        py,
        PyClassInitializer::from(base).add_subclass(FileChangeTrigger {
            path: absolute,
            recursive,
            debounce: debounce.as_secs_f64(),
        }),
    )
}
