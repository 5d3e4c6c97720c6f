//! The precise timer thread's callbacks: run at their deadline in the order
//! they were registered, never once cancelled, and held weakly — a callback
//! its owner dropped does not run.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use agent_triggers_core::{OnDue, call_at};

const LIMIT: Duration = Duration::from_secs(10);

fn soon() -> Instant {
    Instant::now() + Duration::from_millis(20)
}

#[test]
fn callbacks_due_together_run_in_registration_order() {
    let order = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let deadline = soon();
    let callbacks: Vec<Arc<dyn OnDue>> = (0..100)
        .map(|k| {
            let (order, tx) = (Arc::clone(&order), tx.clone());
            Arc::new(move || {
                order.lock().unwrap().push(k);
                let _ = tx.send(());
            }) as Arc<dyn OnDue>
        })
        .collect();
    for callback in &callbacks {
        call_at(deadline, Arc::downgrade(callback));
    }
    for _ in 0..100 {
        rx.recv_timeout(LIMIT).expect("every callback runs");
    }
    assert!(Instant::now() >= deadline);
    assert_eq!(*order.lock().unwrap(), (0..100).collect::<Vec<_>>());
}

/// A callback that sends `label` on `tx` when it runs.
fn sending(tx: &mpsc::Sender<&'static str>, label: &'static str) -> Arc<dyn OnDue> {
    let tx = tx.clone();
    Arc::new(move || {
        let _ = tx.send(label);
    })
}

#[test]
fn a_cancelled_callback_does_not_run() {
    let (tx, rx) = mpsc::channel();
    let cancelled = sending(&tx, "cancelled");
    let later = sending(&tx, "later");
    call_at(soon(), Arc::downgrade(&cancelled)).cancel();
    call_at(soon() + Duration::from_millis(20), Arc::downgrade(&later));
    assert_eq!(rx.recv_timeout(LIMIT), Ok("later"));
}

#[test]
fn a_callback_its_owner_dropped_does_not_run_and_is_not_kept() {
    let (tx, rx) = mpsc::channel();
    let dropped = sending(&tx, "dropped");
    let weak = Arc::downgrade(&dropped);
    call_at(soon(), Weak::clone(&weak));
    drop(dropped);
    assert!(
        weak.upgrade().is_none(),
        "the timer holds no strong reference"
    );
    let kept = sending(&tx, "kept");
    call_at(soon() + Duration::from_millis(20), Arc::downgrade(&kept));
    assert_eq!(rx.recv_timeout(LIMIT), Ok("kept"));
}
