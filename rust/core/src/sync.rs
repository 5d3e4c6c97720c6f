//! The locks of this crate and of the Python bindings: std's, never `parking_lot`.
//!
//! `parking_lot` parks every waiting thread in one process-wide hash table,
//! linking each into a queue through a record on its own stack. A child made
//! by `fork()` inherits that table with the parent's threads still queued —
//! the timer thread, for one, always waits on a condition variable — but
//! not the threads: glibc reuses their stacks for the child's new threads,
//! which overwrite those records, and the child's next wait or wake-up in the
//! same bucket follows a garbage pointer (a SIGSEGV, or a hang on a bucket
//! lock held by a thread the child does not have). std's locks keep their
//! whole state in the lock's own word (a futex on Linux): a forked child is
//! disturbed only by a lock it uses itself that a parent thread held.
//!
//! [`Mutex`] wraps std's without poisoning, as `parking_lot`'s does not: a
//! panic that unwinds through a critical section is caught and reported where
//! it happens (see [`crate::fault`]), and the data stays usable.

use std::sync::{PoisonError, TryLockError};
use std::time::Instant;

pub use std::sync::MutexGuard;

/// A mutual-exclusion lock that ignores poisoning (see the module docs).
#[derive(Debug, Default)]
pub struct Mutex<T: ?Sized>(std::sync::Mutex<T>);

impl<T> Mutex<T> {
    pub const fn new(value: T) -> Self {
        Self(std::sync::Mutex::new(value))
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Wait for the lock.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value, through exclusive access (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.0.get_mut().unwrap_or_else(PoisonError::into_inner)
    }

    /// The lock if it is free now, else `None`.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        match self.0.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }
}

/// A condition variable for [`Mutex`], ignoring poisoning as it does.
#[derive(Debug, Default)]
pub struct Condvar(std::sync::Condvar);

impl Condvar {
    pub const fn new() -> Self {
        Self(std::sync::Condvar::new())
    }

    /// Wait until notified (or woken spuriously).
    pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.0.wait(guard).unwrap_or_else(PoisonError::into_inner)
    }

    /// Wait until notified (or woken spuriously), or until `deadline`.
    pub fn wait_until<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Instant,
    ) -> MutexGuard<'a, T> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        self.0
            .wait_timeout(guard, timeout)
            .map_or_else(|poisoned| poisoned.into_inner().0, |(guard, _)| guard)
    }

    pub fn notify_one(&self) {
        self.0.notify_one();
    }
}
