//! The timer thread serves every timer in the process: a callback that panics
//! must not take it down. (One test per binary: armed faults are global.)

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use agent_triggers_core::fault::{self, Site};
use agent_triggers_core::{OnDue, call_at};

fn fires_within(deadline: Instant, limit: Duration) -> bool {
    let (tx, rx) = mpsc::channel();
    let callback: Arc<dyn OnDue> = Arc::new(move || {
        let _ = tx.send(());
    });
    call_at(deadline, Arc::downgrade(&callback));
    rx.recv_timeout(limit).is_ok()
}

#[test]
fn the_timer_thread_survives_panicking_callbacks() {
    let soon = || Instant::now() + Duration::from_millis(5);
    assert!(fires_within(soon(), Duration::from_secs(10)));

    // A callback that panics by itself.
    let panics: Arc<dyn OnDue> = Arc::new(|| panic!("a callback's own panic"));
    call_at(soon(), Arc::downgrade(&panics));
    std::thread::sleep(Duration::from_millis(20));
    assert!(
        fires_within(soon(), Duration::from_secs(10)),
        "timers stopped firing after a callback panicked"
    );

    // A panic injected before a callback runs: that callback is lost, the
    // next one is not.
    fault::arm(Site::Timer);
    let (tx, rx) = mpsc::channel();
    let lost: Arc<dyn OnDue> = Arc::new(move || {
        let _ = tx.send(());
    });
    call_at(soon(), Arc::downgrade(&lost));
    assert!(
        rx.recv_timeout(Duration::from_millis(500)).is_err(),
        "the armed panic did not happen"
    );
    assert!(
        fires_within(soon(), Duration::from_secs(10)),
        "timers stopped firing after an injected panic"
    );
}
