//! Showing the garbage collector the Python objects a Rust value holds.
//!
//! Every pyclass that owns (directly or through Rust values) references to
//! Python objects implements `__traverse__` by walking them with [`Traverse`],
//! so that cycles through a runner, its triggers and their contexts can be
//! collected.

use pyo3::{Py, PyTraverseError, PyVisit};

/// A value holding Python references.
pub trait Traverse {
    /// Visit each Python object this value holds (a reference of its own).
    fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError>;
}

impl<T> Traverse for Py<T> {
    fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(self)
    }
}

impl<T: Traverse> Traverse for [T] {
    fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.iter().try_for_each(|item| item.traverse(visit))
    }
}

impl<T: Traverse + ?Sized> Traverse for std::sync::Arc<T> {
    fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        (**self).traverse(visit)
    }
}
