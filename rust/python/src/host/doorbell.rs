//! A GIL-free way to wake the loop: a socket pair whose read end the loop
//! watches (`add_reader`, every Unix loop), one byte written to wake it. The
//! thread that rings (the timer thread, say) never waits on a busy loop.

#[cfg(unix)]
use std::io::{Read, Write};
#[cfg(unix)]
use std::os::fd::{AsRawFd, RawFd};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Weak};

use agent_triggers_core::sync::Mutex;
#[cfg(unix)]
use pyo3::intern;
#[cfg(unix)]
use pyo3::prelude::*;

/// Owned by the reader callback the loop holds: dropped when the loop lets
/// go of it — as it closes — which runs `on_close` (on the loop's thread,
/// the GIL held).
pub struct Reader {
    on_close: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Reader {
    pub fn new(on_close: Box<dyn FnOnce() + Send>) -> Arc<Self> {
        Arc::new(Self {
            on_close: Mutex::new(Some(on_close)),
        })
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        if let Some(on_close) = self.on_close.get_mut().take() {
            on_close();
        }
    }
}

/// How a ring went.
pub enum Rang {
    /// The loop will wake (or a wake-up is already pending).
    Woken,
    /// The loop is closed (or the socket broke): nothing will drain.
    Closed,
}

#[cfg(unix)]
pub struct Doorbell {
    ring: UnixStream,
    /// Taken (to be unregistered and closed on the loop thread) on drop.
    watched: Mutex<Option<UnixStream>>,
    /// Alive while the loop holds its reader callback.
    reader: Weak<Reader>,
}

#[cfg(unix)]
impl Doorbell {
    /// A socket pair, non-blocking: the doorbell and the fd for the loop to
    /// watch, or `None` if the system refuses one.
    pub fn pair(reader: &Arc<Reader>) -> Option<(Self, RawFd)> {
        let (ring, watched) = UnixStream::pair().ok()?;
        ring.set_nonblocking(true).ok()?;
        watched.set_nonblocking(true).ok()?;
        let fd = watched.as_raw_fd();
        Some((
            Self {
                ring,
                watched: Mutex::new(Some(watched)),
                reader: Arc::downgrade(reader),
            },
            fd,
        ))
    }

    /// A doorbell ringing `ring`, the other end of whose pair its owner
    /// watches and empties ([`empty`]) itself: trio's serve task does.
    pub fn ringing(ring: UnixStream, reader: &Arc<Reader>) -> Self {
        Self {
            ring,
            watched: Mutex::new(None),
            reader: Arc::downgrade(reader),
        }
    }

    /// Wake the loop, without the GIL.
    pub fn ring(&self) -> Rang {
        if self.reader.strong_count() == 0 {
            return Rang::Closed;
        }
        match (&self.ring).write(&[1]) {
            Ok(_) => Rang::Woken,
            // A full socket already holds a wake-up.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Rang::Woken,
            Err(_) => Rang::Closed,
        }
    }

    /// On the loop thread: empty the socket (the wake-ups it holds are all
    /// answered by the drain under way).
    pub fn answer(&self) {
        if let Some(watched) = self.watched.lock().as_ref() {
            empty(watched);
        }
    }

    /// Unregister from `event_loop` on its own thread (the selector is not
    /// thread safe), closing the socket only once the loop no longer watches
    /// it. A closed loop watches nothing: the socket just closes.
    pub fn unwatch(&self, event_loop: &Bound<'_, PyAny>) {
        let py = event_loop.py();
        let Some(watched) = self.watched.lock().take() else {
            return;
        };
        let scheduled = Bound::new(py, Unwatch(Mutex::new(Some(watched)))).and_then(|unwatch| {
            event_loop.call_method1(intern!(py, "call_soon_threadsafe"), (unwatch,))
        });
        drop(scheduled);
    }
}

/// Read a watched socket empty: the wake-ups it holds are all answered by
/// the drain under way.
#[cfg(unix)]
pub fn empty(watched: &UnixStream) {
    let mut buffer = [0u8; 256];
    while matches!((&*watched).read(&mut buffer), Ok(n) if n > 0) {}
}

/// Where there is no socket to watch (Windows' proactor loop), wake-ups go
/// through `call_soon_threadsafe`.
#[cfg(not(unix))]
pub struct Doorbell;

/// Run on the loop thread: stop watching a doorbell socket, then close it.
#[cfg(unix)]
#[pyclass(frozen)]
struct Unwatch(Mutex<Option<UnixStream>>);

#[cfg(unix)]
#[pymethods]
impl Unwatch {
    fn __call__(&self, py: Python<'_>) {
        if let Some(watched) = self.0.lock().take() {
            // Running on the loop: it is the running loop.
            if let Ok(event_loop) = pyo3_async_runtimes::get_running_loop(py) {
                let _ =
                    event_loop.call_method1(intern!(py, "remove_reader"), (watched.as_raw_fd(),));
            }
        }
    }
}
