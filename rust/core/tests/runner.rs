//! The seed's contract tests for `TriggerRunner`, ported.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use agent_triggers_core::{Error, Result, Trigger, TriggerContext, TriggerDelivery, TriggerRunner};
use async_trait::async_trait;
use common::{MockConn, every};

/// Sends exactly one message per its delivery, then returns.
struct OneShot {
    name: String,
    ran: Arc<AtomicBool>,
    delivery: TriggerDelivery,
}

#[async_trait]
impl Trigger for OneShot {
    fn name(&self) -> &str {
        &self.name
    }
    fn delivery(&self) -> TriggerDelivery {
        self.delivery
    }
    async fn run(&self, ctx: TriggerContext) -> Result<()> {
        ctx.deliver("ping").await?;
        self.ran.store(true, Ordering::Release);
        Ok(())
    }
}

struct AlwaysErr;

#[async_trait]
impl Trigger for AlwaysErr {
    fn name(&self) -> &str {
        "bad"
    }
    async fn run(&self, _ctx: TriggerContext) -> Result<()> {
        Err(Error::other("trigger boom"))
    }
}

struct Panicker;

#[async_trait]
impl Trigger for Panicker {
    fn name(&self) -> &str {
        "boom"
    }
    async fn run(&self, _ctx: TriggerContext) -> Result<()> {
        panic!("trigger panic");
    }
}

fn one_shot(delivery: TriggerDelivery) -> (Arc<OneShot>, Arc<AtomicBool>) {
    let ran = Arc::new(AtomicBool::new(false));
    let trigger = Arc::new(OneShot {
        name: "one-shot".into(),
        ran: Arc::clone(&ran),
        delivery,
    });
    (trigger, ran)
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(5), async {
        while !condition() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for: {what}"));
}

/// CONTRACT: a second `start` while started is `AlreadyStarted`, never a double spawn.
#[tokio::test]
async fn double_start_is_rejected() {
    let runner = TriggerRunner::new(vec![], MockConn::new());
    runner.start().expect("first start ok");
    let err = runner.start().expect_err("second start must fail");
    assert!(matches!(err, Error::AlreadyStarted));
    runner.stop().await;
}

/// CONTRACT: after `stop`, the runner may be started again.
#[tokio::test]
async fn start_after_stop_succeeds() {
    let runner = TriggerRunner::new(vec![], MockConn::new());
    runner.start().expect("start");
    runner.stop().await;
    runner.start().expect("restart after stop");
    runner.stop().await;
}

/// CONTRACT: an immediate trigger reaches the wire, and `stop` joins its task.
#[tokio::test]
async fn immediate_trigger_delivers_and_stop_joins() {
    let conn = MockConn::new();
    let (trigger, ran) = one_shot(TriggerDelivery::SendImmediately);
    let runner = TriggerRunner::new(vec![trigger], conn.clone());
    runner.start().expect("start");
    wait_until("the immediate trigger delivers", || {
        conn.triggers_sent() > 0
    })
    .await;
    runner.stop().await;
    assert_eq!(conn.triggers_sent(), 1, "exactly one trigger send");
    assert!(
        ran.load(Ordering::Acquire),
        "trigger body ran to completion"
    );
    assert!(!runner.is_running());
}

/// CONTRACT: `send_when_idle` does not send while the agent is mid-turn.
#[tokio::test]
async fn send_when_idle_waits_for_idle() {
    let conn = MockConn::new(); // starts busy
    let (trigger, ran) = one_shot(TriggerDelivery::WaitIdle);
    let runner = TriggerRunner::new(vec![trigger], conn.clone());
    runner.start().expect("start");
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        conn.triggers_sent(),
        0,
        "must not fire while a turn is active"
    );
    assert!(!ran.load(Ordering::Acquire));
    assert!(runner.is_running());

    conn.go_idle();
    wait_until("the idle trigger fires", || conn.triggers_sent() > 0).await;
    runner.stop().await;
    assert_eq!(conn.triggers_sent(), 1);
}

/// CONTRACT: an erroring trigger does not keep a sibling from running.
#[tokio::test]
async fn erroring_trigger_does_not_kill_siblings() {
    let conn = MockConn::new();
    let (good, ran) = one_shot(TriggerDelivery::SendImmediately);
    let runner = TriggerRunner::new(vec![Arc::new(AlwaysErr), good], conn.clone());
    runner.start().expect("start");
    wait_until("the good trigger runs", || ran.load(Ordering::Acquire)).await;
    runner.stop().await;
    assert_eq!(conn.triggers_sent(), 1, "only the good trigger sent");
}

/// CONTRACT: a panicking trigger is isolated; `stop` does not panic.
#[tokio::test]
async fn panicking_trigger_is_isolated_and_stop_survives() {
    let conn = MockConn::new();
    let (good, ran) = one_shot(TriggerDelivery::SendImmediately);
    let runner = TriggerRunner::new(vec![Arc::new(Panicker), good], conn.clone());
    runner.start().expect("start");
    wait_until("the sibling runs", || ran.load(Ordering::Acquire)).await;
    runner.stop().await;
    assert_eq!(conn.triggers_sent(), 1);
}

/// CONTRACT: dropping the runner aborts its tasks: the count freezes.
#[tokio::test(start_paused = true)]
async fn drop_aborts_running_triggers() {
    let conn = MockConn::new();
    let counter = Arc::new(AtomicU32::new(0));
    let count = Arc::clone(&counter);
    let trigger = every(Duration::from_millis(10), "tick", move |_ctx| {
        let count = Arc::clone(&count);
        async move {
            count.fetch_add(1, Ordering::AcqRel);
            Ok(())
        }
    });
    let runner = TriggerRunner::new(vec![trigger], conn);
    runner.start().expect("start");
    tokio::time::sleep(Duration::from_millis(45)).await;
    let before = counter.load(Ordering::Acquire);
    assert!(
        before >= 1,
        "periodic trigger fired at least once, got {before}"
    );

    drop(runner);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after = counter.load(Ordering::Acquire);
    assert_eq!(before, after, "a dropped runner must not keep firing");
}

/// `stop` really aborts a trigger that would run forever, and `is_running`
/// follows the tasks.
#[tokio::test]
async fn stop_aborts_a_forever_trigger() {
    let conn = MockConn::new(); // busy forever: send_when_idle never returns
    let (trigger, ran) = one_shot(TriggerDelivery::WaitIdle);
    let runner = TriggerRunner::new(vec![trigger], conn.clone());
    runner.start().expect("start");
    assert!(runner.is_started());
    assert!(runner.is_running());
    runner.stop().await;
    assert!(!runner.is_running());
    assert!(!runner.is_started());
    assert!(!ran.load(Ordering::Acquire));
    assert_eq!(conn.triggers_sent(), 0);
}

/// A trigger that returned leaves the runner started (not running): a second
/// start is still rejected until `stop`.
#[tokio::test]
async fn finished_triggers_still_count_as_started() {
    let conn = MockConn::new();
    let (trigger, ran) = one_shot(TriggerDelivery::SendImmediately);
    let runner = TriggerRunner::new(vec![trigger], conn);
    runner.start().expect("start");
    wait_until("the trigger returns", || ran.load(Ordering::Acquire)).await;
    wait_until("its task ends", || !runner.is_running()).await;
    assert!(matches!(runner.start(), Err(Error::AlreadyStarted)));
    runner.stop().await;
    runner.start().expect("start after stop");
    runner.stop().await;
}
