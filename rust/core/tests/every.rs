//! `every` and its `Ticker`, on tokio's paused clock: times below are virtual
//! and exact, so the schedule itself is asserted.

mod common;

use std::sync::Arc;
use std::time::Duration;

use agent_triggers_core::sync::Mutex;
use agent_triggers_core::{Error, FixedRate, Ticker, TriggerDelivery, TriggerRunner};
use common::{MockConn, every, every_with_delivery};
use tokio::time::Instant;

const PERIOD: Duration = Duration::from_millis(10);

/// Starts a runner with one `every(PERIOD)` trigger whose handler records the
/// (virtual) instant of each call, relative to start, then takes `handler_time`
/// and returns `result`.
fn recording_runner(
    handler_time: impl Fn(usize) -> Duration + Send + Sync + 'static,
    fail: bool,
) -> (TriggerRunner, Arc<Mutex<Vec<Duration>>>) {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let record = Arc::clone(&calls);
    let handler_time = Arc::new(handler_time);
    let trigger = every(PERIOD, "recorder", move |_ctx| {
        let record = Arc::clone(&record);
        let handler_time = Arc::clone(&handler_time);
        async move {
            let k = {
                let mut calls = record.lock();
                calls.push(start.elapsed());
                calls.len()
            };
            tokio::time::sleep(handler_time(k)).await;
            if fail {
                Err(Error::other("handler failed"))
            } else {
                Ok(())
            }
        }
    });
    let runner = TriggerRunner::new(vec![trigger], MockConn::new());
    runner.start().expect("start");
    (runner, calls)
}

fn ms(values: &[u64]) -> Vec<Duration> {
    values.iter().copied().map(Duration::from_millis).collect()
}

#[tokio::test(start_paused = true)]
async fn first_call_comes_one_period_after_start() {
    let (runner, calls) = recording_runner(|_| Duration::ZERO, false);
    tokio::time::sleep(PERIOD - Duration::from_millis(1)).await;
    assert!(calls.lock().is_empty(), "no call at start");
    tokio::time::sleep(Duration::from_millis(2)).await;
    assert_eq!(*calls.lock(), ms(&[10]));
    runner.stop().await;
}

#[tokio::test(start_paused = true)]
async fn fixed_rate_under_a_slow_handler() {
    // A handler taking 70% of the period must not push later calls back.
    let (runner, calls) = recording_runner(|_| Duration::from_millis(7), false);
    tokio::time::sleep(Duration::from_millis(55)).await;
    assert_eq!(*calls.lock(), ms(&[10, 20, 30, 40, 50]));
    runner.stop().await;
}

#[tokio::test(start_paused = true)]
async fn overrun_skips_missed_ticks_instead_of_bursting() {
    // Call 1 (due at 10) runs until 35. tokio's `Skip`: the overdue tick runs
    // once at 35, the other missed one (30) is dropped, and the schedule resumes
    // on its own grid at 40 — one late call, never a burst of catch-up calls.
    let (runner, calls) = recording_runner(
        |k| Duration::from_millis(if k == 1 { 25 } else { 0 }),
        false,
    );
    tokio::time::sleep(Duration::from_millis(65)).await;
    assert_eq!(*calls.lock(), ms(&[10, 35, 40, 50, 60]));
    runner.stop().await;
}

#[tokio::test(start_paused = true)]
async fn handler_errors_do_not_stop_the_schedule() {
    let (runner, calls) = recording_runner(|_| Duration::ZERO, true);
    tokio::time::sleep(Duration::from_millis(45)).await;
    assert_eq!(*calls.lock(), ms(&[10, 20, 30, 40]));
    assert!(runner.is_running(), "the periodic trigger is still running");
    runner.stop().await;
}

#[tokio::test(start_paused = true)]
async fn stop_ends_the_schedule() {
    let (runner, calls) = recording_runner(|_| Duration::ZERO, false);
    tokio::time::sleep(Duration::from_millis(25)).await;
    runner.stop().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(*calls.lock(), ms(&[10, 20]));
}

#[tokio::test(start_paused = true)]
async fn every_carries_its_delivery() {
    let trigger = every_with_delivery(
        PERIOD,
        "x",
        TriggerDelivery::SendImmediately,
        |_ctx| async { Ok(()) },
    );
    assert_eq!(trigger.name(), "x");
    assert_eq!(trigger.delivery(), TriggerDelivery::SendImmediately);
    let default = every(PERIOD, "y", |_ctx| async { Ok(()) });
    assert_eq!(default.delivery(), TriggerDelivery::WaitIdle);
}

#[tokio::test(start_paused = true)]
async fn ticker_returns_the_due_instant() {
    let start = Instant::now();
    let mut ticker = Ticker::new(PERIOD);
    assert_eq!(ticker.period(), PERIOD);
    assert_eq!(ticker.tick().await - start, PERIOD);
    tokio::time::sleep(Duration::from_millis(3)).await;
    assert_eq!(ticker.tick().await - start, PERIOD * 2);
}

/// The precise ticker on real time: never early, never drifting. (How late it
/// lands is measured in benchmarks/, not asserted.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_precise_ticker_is_never_early_and_keeps_its_grid() {
    let start = Instant::now();
    let mut ticker = Ticker::starting_at(start, PERIOD, true);
    for k in 1..=20u32 {
        let due = ticker.tick().await;
        assert_eq!(due, start + PERIOD * k, "tick {k} is due on the grid");
        assert!(Instant::now() >= due, "tick {k} came early");
    }
}

/// The missed-tick policy on its own: a tick under 5 ms late keeps the grid;
/// one later runs once and the schedule resumes at the next grid point.
#[test]
fn a_late_tick_skips_the_missed_ones_and_returns_to_the_grid() {
    let rate = FixedRate::new(Duration::from_millis(20));
    let ms = Duration::from_millis;
    assert_eq!(
        rate.next_due(ms(20), ms(24)),
        ms(40),
        "4 ms late: on the grid"
    );
    assert_eq!(
        rate.next_due(ms(20), ms(25)),
        ms(40),
        "5 ms late: the next point"
    );
    assert_eq!(
        rate.next_due(ms(20), ms(75)),
        ms(80),
        "missed 40 and 60: skipped"
    );
    let short = FixedRate::new(Duration::from_millis(2));
    assert_eq!(
        short.next_due(ms(2), ms(4)),
        ms(6),
        "a whole period late counts as missed"
    );
}
