//! Fleets against a real redis-server: each tick of a keyed trigger goes to
//! exactly one replica, a stopping replica's unrun claims are taken over, and
//! an unreachable Redis skips (or runs) ticks as configured.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use agent_triggers_core::fleet::grid::EpochGrid;
use agent_triggers_core::fleet::{
    Fleet, FleetConfig, FleetSchedule, FleetTicks, OnUnavailable, listen_for_given_back,
};
use agent_triggers_core::{Event, EventSource};
use chrono::{DateTime, Utc};
use common::RedisServer;
use tokio::sync::mpsc;

fn fleet(url: &str, replica: &str, on_unavailable: OnUnavailable) -> Arc<Fleet> {
    let config = FleetConfig::new(url, None, Some(Duration::from_secs(2)), on_unavailable).unwrap();
    Fleet::connect(&config, replica.to_owned()).unwrap()
}

/// Run `ticks` in a task, reporting each tick as `(replica, due)`.
fn report(
    mut ticks: FleetTicks,
    replica: &'static str,
    out: mpsc::UnboundedSender<(&'static str, DateTime<Utc>)>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(event) = ticks.next().await {
            let Event::Scheduled(due) = event else {
                panic!("a fleet tick carries its instant")
            };
            let _ = out.send((replica, due));
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tick_goes_to_exactly_one_replica_with_none_missed() {
    let redis = RedisServer::start();
    let key: Arc<str> = Arc::from("heartbeat");
    let grid = EpochGrid::new(&key, Duration::from_millis(50));
    let (out, mut seen) = mpsc::unbounded_channel();
    let tasks: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|replica| {
            let fleet = fleet(&redis.url(), replica, OnUnavailable::Skip);
            let ticks = FleetTicks::new(&fleet, Arc::clone(&key), FleetSchedule::Every(grid));
            report(ticks, replica, out.clone())
        })
        .collect();
    let mut by_tick: BTreeMap<DateTime<Utc>, Vec<&str>> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    while let Ok(Some((replica, due))) = tokio::time::timeout_at(deadline, seen.recv()).await {
        by_tick.entry(due).or_default().push(replica);
    }
    for task in &tasks {
        task.abort();
    }
    assert!(
        by_tick.len() >= 20,
        "{} ticks in 1.5 s at 50 ms",
        by_tick.len()
    );
    for (due, replicas) in &by_tick {
        assert_eq!(replicas.len(), 1, "tick {due} ran on {replicas:?}");
    }
    let dues: Vec<_> = by_tick.keys().collect();
    for pair in dues.windows(2) {
        assert_eq!(
            (*pair[1] - *pair[0]).num_milliseconds(),
            50,
            "a tick was missed between {} and {}",
            pair[0],
            pair[1]
        );
    }
    let phase = grid.phase().as_nanos() as i64;
    for due in dues {
        assert_eq!(due.timestamp_nanos_opt().unwrap() % 50_000_000, phase);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_replica_gives_back_its_unrun_claim_and_another_runs_the_tick() {
    let redis = RedisServer::start();
    let key: Arc<str> = Arc::from("report");
    // A long period: the first replica claims the tick 100 ms ahead and stops
    // before it is due.
    let grid = EpochGrid::new(&key, Duration::from_secs(1));
    let first = fleet(&redis.url(), "first", OnUnavailable::Skip);
    let mut first_ticks = FleetTicks::new(&first, Arc::clone(&key), FleetSchedule::Every(grid));
    let (out, mut seen) = mpsc::unbounded_channel();
    let second = fleet(&redis.url(), "second", OnUnavailable::Skip);
    let listener = tokio::spawn(listen_for_given_back(Arc::clone(&second)));
    // The second replica's own claim of that tick fails (the first holds
    // it, or has marked it given back): it can only get it by taking it over.
    // A claim answered so late that its tick fell due within the same poll
    // runs here, as it should: then try the next tick (a few at most).
    let mut ran_here = 0;
    let claimed = loop {
        let next = tokio::time::timeout(Duration::from_millis(50), first_ticks.next()).await;
        if next.is_ok() {
            ran_here += 1;
            assert!(ran_here < 4, "the first replica kept running its ticks");
            continue;
        }
        if first.counts.won.load(std::sync::atomic::Ordering::Relaxed) == ran_here + 1 {
            break grid.next_after(Utc::now() - chrono::TimeDelta::milliseconds(200));
        }
    };
    drop(first_ticks);
    let second_ticks = FleetTicks::new(&second, Arc::clone(&key), FleetSchedule::Every(grid));
    let runner = report(second_ticks, "second", out);
    first.give_back_unrun(Duration::from_secs(1)).await;
    assert_eq!(
        first
            .counts
            .given_back
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let (replica, due) = tokio::time::timeout(Duration::from_secs(2), seen.recv())
        .await
        .expect("the given-back tick ran")
        .unwrap();
    assert_eq!((replica, due), ("second", claimed));
    assert_eq!(
        second
            .counts
            .taken_over
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    runner.abort();
    listener.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_skips_or_runs_ticks_as_configured() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let key: Arc<str> = Arc::from("k");
    let grid = EpochGrid::new(&key, Duration::from_millis(40));
    for (policy, expect_ticks) in [(OnUnavailable::Skip, false), (OnUnavailable::Run, true)] {
        let fleet = fleet(&url, "lonely", policy);
        let mut ticks = FleetTicks::new(&fleet, Arc::clone(&key), FleetSchedule::Every(grid));
        let next = tokio::time::timeout(Duration::from_millis(400), ticks.next()).await;
        assert_eq!(next.is_ok(), expect_ticks, "{policy:?}");
        let skipped = fleet
            .counts
            .skipped
            .load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(skipped > 0, !expect_ticks, "{policy:?}: {skipped} skipped");
    }
}
