//! Injected panics, so that tests can prove each path survives one.
//!
//! Every place where a panic could otherwise kill a thread the library relies
//! on (the timer thread, a trigger's task, the event loop's job queue, a stop)
//! catches it and logs it. To test that from Python, against the very build
//! users install, a site can be armed to panic once ([`arm`]); [`hit`] costs
//! one relaxed atomic load when nothing is armed. The `fail` crate's
//! failpoints are meant to be compiled out of release builds, and their
//! lookup takes a lock on every pass: too much for the timer thread.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

/// A place a panic can be injected at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// A callback run by the timer thread (a periodic trigger's tick).
    Timer,
    /// The task of a trigger under a runner.
    Trigger,
    /// A job (launching or cancelling a Python call) run on the event loop.
    LoopJob,
    /// A runner's stop task.
    Stop,
}

impl Site {
    const ALL: [Site; 4] = [Site::Timer, Site::Trigger, Site::LoopJob, Site::Stop];

    /// The site named `name` (`"timer"`, `"trigger"`, `"loop_job"`, `"stop"`).
    pub fn from_name(name: &str) -> Option<Site> {
        Self::ALL.into_iter().find(|site| site.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Site::Timer => "timer",
            Site::Trigger => "trigger",
            Site::LoopJob => "loop_job",
            Site::Stop => "stop",
        }
    }

    fn flag(self) -> &'static AtomicBool {
        static ARMED: [AtomicBool; 4] = [const { AtomicBool::new(false) }; 4];
        &ARMED[self as usize]
    }
}

/// Make the next pass through `site` panic (once).
pub fn arm(site: Site) {
    site.flag().store(true, Ordering::SeqCst);
}

/// Panic if `site` is armed (disarming it).
pub fn hit(site: Site) {
    let flag = site.flag();
    if flag.load(Ordering::Relaxed) && flag.swap(false, Ordering::SeqCst) {
        panic!("panic injected at {:?} for a test", site.name());
    }
}

/// Run `f`, turning a panic into its message.
pub fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| panic_message(&*payload))
}

/// The message a panic carried, if it carried text.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}
