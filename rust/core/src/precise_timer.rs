//! A high-resolution timer for the last stretch before a deadline.
//!
//! tokio's timer wheel has a 1 ms granularity and rounds deadlines up, so a
//! tick waited for on tokio alone lands 1–2 ms late. Here one thread keeps the
//! deadlines of the sleeps under way in a queue ([`Deadlines`]) and waits for the
//! earliest on a condition variable with a timeout; on Linux its timer slack
//! is set to 1 ns, so the kernel wakes it within tens of microseconds. Sleeps
//! are meant to be short (the caller waits on tokio until shortly before).
//!
//! Besides sleeps (futures), the thread runs callbacks at their deadline
//! ([`call_at`]): a periodic trigger re-arms itself this way, with no task of
//! its own and no wake-up between ticks: the queue holds one entry for each
//! armed trigger. A callback runs on the timer thread and must return quickly
//! (hand the work elsewhere).

use std::future::Future;
use std::num::NonZeroU64;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::deadlines::Deadlines;
use crate::sync::{Condvar, Mutex};

/// Sleep until `deadline` on the high-resolution timer thread.
pub fn sleep_until(deadline: Instant) -> PreciseSleep {
    PreciseSleep {
        deadline,
        registered: None,
    }
}

/// A sleep on the timer thread; see [`sleep_until`]. Dropping it unregisters it.
pub struct PreciseSleep {
    deadline: Instant,
    registered: Option<(TimerKey, Arc<Slot>)>,
}

struct Slot {
    fired: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

/// What the timer thread runs at a deadline registered with [`call_at`]. It
/// runs on the timer thread and must return quickly (hand the work
/// elsewhere). Taking the `Arc` it was registered as, an owner can register
/// itself — no allocation per deadline (a closure would be one).
pub trait OnDue: Send + Sync {
    /// Called at `deadline` (or just after; at once if it had passed).
    fn on_due(self: Arc<Self>, deadline: Instant);
}

impl<F: Fn() + Send + Sync> OnDue for F {
    fn on_due(self: Arc<Self>, _deadline: Instant) {
        self();
    }
}

/// What is due at a deadline: a sleeping future to wake, or a callback to
/// run. 16 bytes (the tag hides in a pointer's niche). Neither
/// holds anything of its owner's once cancelled: a dropped sleep takes its
/// waker back, and a callback is held weakly — so an entry cancelled but not
/// yet let go of (see [`Deadlines`]) keeps no task or trigger alive.
enum Due {
    Wake(Arc<Slot>),
    Call(Weak<dyn OnDue>),
}

impl Due {
    fn fire(self, deadline: Instant) {
        match self {
            Due::Wake(slot) => {
                slot.fired.store(true, Ordering::Release);
                if let Some(waker) = slot.waker.lock().take() {
                    waker.wake();
                }
            }
            Due::Call(callback) => {
                if let Some(callback) = callback.upgrade() {
                    crate::fault::hit(crate::fault::Site::Timer);
                    callback.on_due(deadline);
                }
            }
        }
    }
}

/// A callback registered with [`call_at`]; [`cancel`](Self::cancel) it to
/// keep it from running (dropping the key does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerKey(NonZeroU64);

impl TimerKey {
    /// Unregister the callback, unless it already ran or is running. The
    /// timer lets go of it soon, if not at once (cancelled entries are let go
    /// of in batches).
    pub fn cancel(self) {
        let let_go = timer().deadlines.lock().cancel(self.0);
        // Dropped outside the lock, as a precaution: what an entry holds is
        // its owner's business.
        drop(let_go);
    }

    /// The key as a number (never 0), to keep in an atomic word.
    pub fn get(self) -> u64 {
        self.0.get()
    }

    /// The key [`get`](Self::get) gave; `None` for 0.
    pub fn from_u64(key: u64) -> Option<Self> {
        NonZeroU64::new(key).map(Self)
    }
}

/// Run `callback` on the timer thread at `deadline` (at once if it has passed).
///
/// The timer holds it weakly: its owner keeps it alive, and one dropped
/// before its deadline does not run (the timer keeps only its allocation,
/// not what it holds, until the entry is let go of).
pub fn call_at(deadline: Instant, callback: Weak<dyn OnDue>) -> TimerKey {
    timer().register(deadline, Due::Call(callback))
}

impl Future for PreciseSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        match &self.registered {
            Some((_, slot)) => {
                *slot.waker.lock() = Some(cx.waker().clone());
                if slot.fired.load(Ordering::Acquire) {
                    return Poll::Ready(());
                }
            }
            None => {
                let slot = Arc::new(Slot {
                    fired: AtomicBool::new(false),
                    waker: Mutex::new(Some(cx.waker().clone())),
                });
                let key = timer().register(self.deadline, Due::Wake(Arc::clone(&slot)));
                self.registered = Some((key, slot));
            }
        }
        Poll::Pending
    }
}

impl Drop for PreciseSleep {
    fn drop(&mut self) {
        if let Some((key, slot)) = self.registered.take()
            && !slot.fired.load(Ordering::Acquire)
        {
            // The entry may stay queued a while: it must not keep the
            // sleeping task alive.
            drop(slot.waker.lock().take());
            key.cancel();
        }
    }
}

struct Timer {
    /// What deadlines in the queue count from (nanoseconds after it; negative
    /// before it): an `i64` is half an `Instant`'s size, and the queue holds
    /// one for every armed trigger.
    epoch: Instant,
    deadlines: Mutex<Deadlines<Due>>,
    changed: Condvar,
}

impl Timer {
    fn register(&self, deadline: Instant, due: Due) -> TimerKey {
        let (id, earliest) = self.deadlines.lock().push(self.stamp(deadline), due);
        if earliest {
            self.changed.notify_one();
        }
        TimerKey(id)
    }

    fn stamp(&self, at: Instant) -> i64 {
        let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        match at.checked_duration_since(self.epoch) {
            Some(after) => nanos(after),
            None => -nanos(self.epoch.duration_since(at)),
        }
    }

    /// The `Instant` a stamp was made from.
    fn instant(&self, stamp: i64) -> Instant {
        let offset = Duration::from_nanos(stamp.unsigned_abs());
        if stamp >= 0 {
            self.epoch + offset
        } else {
            // It was an `Instant`: representable.
            self.epoch.checked_sub(offset).unwrap_or(self.epoch)
        }
    }

    fn run(&self) {
        reduce_timer_slack();
        let mut due = Vec::new();
        let mut cancelled = Vec::new();
        let mut deadlines = self.deadlines.lock();
        loop {
            let now = self.stamp(Instant::now());
            while let Some((deadline, entry)) = deadlines.pop_due(now, &mut cancelled) {
                due.push((self.instant(deadline), entry));
            }
            if !due.is_empty() || !cancelled.is_empty() {
                // Fire (and let go) outside the lock: a waker or callback may
                // register again.
                drop(deadlines);
                cancelled.clear();
                for (deadline, entry) in due.drain(..) {
                    // This thread serves every timer in the process: a
                    // callback's panic is logged, and must not end it.
                    let fired = crate::fault::catch(|| entry.fire(deadline));
                    if let Err(message) = fired {
                        tracing::error!(
                            target: crate::LOG_TARGET,
                            "a timer callback panicked (its trigger will not fire again): {message}"
                        );
                    }
                }
                deadlines = self.deadlines.lock();
                continue;
            }
            deadlines = match deadlines.next_at() {
                Some(deadline) => self.changed.wait_until(deadlines, self.instant(deadline)),
                None => self.changed.wait(deadlines),
            };
        }
    }
}

/// The timer of this process, started on first use — and again in a forked
/// child, which inherits the memory but not the thread (a fork handler forgets
/// the parent's timer; the old one is leaked, never dropped).
///
/// Published with a compare-and-swap, not under a lock: a fork while a parent
/// thread held one would leave it held for ever in the child.
fn timer() -> &'static Timer {
    static TIMER: AtomicPtr<Timer> = AtomicPtr::new(std::ptr::null_mut());
    let current = TIMER.load(Ordering::Acquire);
    if !current.is_null() {
        // SAFETY: only ever set to a leaked, never freed `Timer`.
        return unsafe { &*current };
    }
    // Before publishing: a fork right after must not inherit a timer with
    // no thread.
    forget_timer_in_forked_child(&TIMER);
    let made = Box::into_raw(Box::new(Timer {
        epoch: Instant::now(),
        deadlines: Mutex::new(Deadlines::new()),
        changed: Condvar::new(),
    }));
    if let Err(other) = TIMER.compare_exchange(
        std::ptr::null_mut(),
        made,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        // Another thread started the timer first.
        // SAFETY: `made` was never published; this is its only owner.
        drop(unsafe { Box::from_raw(made) });
        // SAFETY: `other` was published: leaked, never freed.
        return unsafe { &*other };
    }
    // SAFETY: published, never to be freed. Entries registered before the
    // thread runs are found by its first look at the queue.
    let timer: &'static Timer = unsafe { &*made };
    std::thread::Builder::new()
        .name("agent-triggers-timer".into())
        .spawn(move || timer.run())
        .expect("could not start the agent-triggers timer thread");
    timer
}

/// After `fork()`, the child has no timer thread: make `timer()` start one.
#[cfg(unix)]
fn forget_timer_in_forked_child(timer: &'static AtomicPtr<Timer>) {
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    static SLOT: std::sync::OnceLock<&'static AtomicPtr<Timer>> = std::sync::OnceLock::new();
    extern "C" fn in_child() {
        if let Some(slot) = SLOT.get() {
            slot.store(std::ptr::null_mut(), Ordering::Release);
        }
    }
    let _ = SLOT.set(timer);
    REGISTERED.call_once(|| {
        // SAFETY: registering a handler that only stores to an atomic, which
        // is async-signal-safe as fork handlers must be.
        unsafe {
            libc::pthread_atfork(None, None, Some(in_child));
        }
    });
}

#[cfg(not(unix))]
fn forget_timer_in_forked_child(_timer: &'static AtomicPtr<Timer>) {}

/// Ask the kernel to wake this thread at its deadline, not up to 50 µs later.
#[cfg(target_os = "linux")]
fn reduce_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and only affects
    // the calling thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

#[cfg(not(target_os = "linux"))]
fn reduce_timer_slack() {}
