//! Cron and one-shot sources, on tokio's paused clock: a wall clock derived
//! from tokio time makes calendar times exact and instant.

use std::sync::Arc;
use std::time::Duration;

use agent_triggers_core::{CronSchedule, Deadline, Event, EventSource, OneShot, WallClock};
use chrono::{DateTime, TimeZone, Utc};
use tokio::time::Instant;

/// Wall time = `base` + tokio time elapsed since the clock was made.
struct TokioClock {
    base: DateTime<Utc>,
    start: Instant,
}

impl TokioClock {
    fn at(base: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Self {
            base,
            start: Instant::now(),
        })
    }
}

impl WallClock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        self.base + self.start.elapsed()
    }
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// The next event's scheduled instant, checked to be the clock's reading as it comes.
async fn next_at(source: &mut dyn EventSource, clock: &TokioClock) -> DateTime<Utc> {
    let Some(Event::Scheduled(due)) = source.next().await else {
        panic!("expected a scheduled tick");
    };
    assert_eq!(due, clock.now());
    due
}

#[tokio::test(start_paused = true)]
async fn six_fields_fire_every_second_on_the_second() {
    let clock = TokioClock::at(utc("2026-11-24T12:00:00.300Z"));
    let schedule = Arc::new(CronSchedule::parse("* * * * * *", Some("UTC")).unwrap());
    let mut source = schedule.source(clock.clone());
    assert_eq!(
        next_at(&mut source, &clock).await,
        utc("2026-11-24T12:00:01Z")
    );
    assert_eq!(
        next_at(&mut source, &clock).await,
        utc("2026-11-24T12:00:02Z")
    );
    assert_eq!(
        next_at(&mut source, &clock).await,
        utc("2026-11-24T12:00:03Z")
    );
}

#[tokio::test(start_paused = true)]
async fn five_fields_are_minutes_read_in_the_time_zone() {
    // 9:00 in New York is 14:00 UTC in winter.
    let clock = TokioClock::at(utc("2026-11-24T13:59:30Z"));
    let schedule = Arc::new(CronSchedule::parse("0 9 * * *", Some("America/New_York")).unwrap());
    let mut source = schedule.source(clock.clone());
    assert_eq!(
        next_at(&mut source, &clock).await,
        utc("2026-11-24T14:00:00Z")
    );
    assert_eq!(
        next_at(&mut source, &clock).await,
        utc("2026-11-25T14:00:00Z")
    );
}

#[tokio::test(start_paused = true)]
async fn occurrences_missed_by_a_slow_handler_are_skipped() {
    let clock = TokioClock::at(utc("2026-11-24T12:00:00Z"));
    let schedule = Arc::new(CronSchedule::parse("* * * * * *", Some("UTC")).unwrap());
    let mut source = schedule.source(clock.clone());
    assert_eq!(
        next_at(&mut source, &clock).await,
        utc("2026-11-24T12:00:01Z")
    );
    tokio::time::sleep(Duration::from_millis(2500)).await; // the handler overruns
    assert_eq!(
        next_at(&mut source, &clock).await,
        utc("2026-11-24T12:00:04Z")
    );
}

#[test]
fn dst_gap_runs_a_fixed_time_job_after_the_gap() {
    // Paris springs forward at 02:00 on 2026-03-29: 02:30 does not exist.
    let schedule = CronSchedule::parse("30 2 * * *", Some("Europe/Paris")).unwrap();
    let next = schedule.next_after(utc("2026-03-28T23:00:00Z")).unwrap();
    let paris = next.with_timezone(&chrono_tz::Europe::Paris);
    assert_eq!(
        paris.date_naive(),
        chrono::NaiveDate::from_ymd_opt(2026, 3, 29).unwrap()
    );
    assert!(next > utc("2026-03-29T00:59:59Z"), "after the gap: {paris}");
    assert!(
        next <= utc("2026-03-29T01:30:00Z"),
        "on the morning of the gap: {paris}"
    );
}

#[test]
fn bad_expressions_and_zones_say_why() {
    let reason =
        |expr: &str, tz: Option<&str>| CronSchedule::parse(expr, tz).unwrap_err().to_string();
    assert!(reason("* * *", None).contains("3 fields"));
    assert!(reason("* * * * * * * *", None).contains("8 fields"));
    assert!(reason("61 * * * *", None).contains("invalid cron expression"));
    assert!(reason("* * * * *", Some("Mars/Olympus")).contains("unknown time zone"));
    assert!(CronSchedule::parse("*/5 * * * *", None).is_ok());
    assert_eq!(
        CronSchedule::parse("0 12 * * MON-FRI", Some("Asia/Tokyo"))
            .unwrap()
            .expression(),
        "0 12 * * MON-FRI"
    );
}

#[tokio::test(start_paused = true)]
async fn after_fires_once_after_its_delay() {
    let start = Instant::now();
    let mut once = OneShot::new(Deadline::After(Duration::from_millis(250)));
    assert!(matches!(once.next().await, Some(Event::Scheduled(_))));
    assert_eq!(start.elapsed(), Duration::from_millis(250));
    assert_eq!(once.next().await, None);
}

#[tokio::test(start_paused = true)]
async fn at_fires_at_its_wall_time_or_at_once_when_past() {
    let clock = TokioClock::at(Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap());
    let mut once = OneShot::new(Deadline::At(utc("2026-11-24T12:00:02Z"), clock.clone()));
    assert_eq!(
        next_at(&mut once, &clock).await,
        utc("2026-11-24T12:00:02Z")
    );
    assert_eq!(once.next().await, None);

    let start = Instant::now();
    let mut past = OneShot::new(Deadline::At(utc("2026-11-24T11:00:00Z"), clock.clone()));
    assert_eq!(
        past.next().await,
        Some(Event::Scheduled(utc("2026-11-24T11:00:00Z")))
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
}

// On the system clock, in real time: the last stretch of a wait is timed by
// the precise timer thread. A call never comes before its deadline.

#[tokio::test]
async fn a_precise_at_on_the_system_clock_never_fires_early() {
    for millis in [1, 4, 15] {
        let when = Utc::now() + chrono::TimeDelta::milliseconds(millis);
        let mut once = OneShot::precise(
            Instant::now(),
            Deadline::At(when, Arc::new(agent_triggers_core::SystemClock)),
        );
        assert_eq!(once.next().await, Some(Event::Scheduled(when)));
        assert!(Utc::now() >= when, "fired before {when}");
        assert_eq!(once.next().await, None);
    }
}

#[tokio::test]
async fn a_precise_after_counts_from_its_start_not_from_when_it_was_made() {
    let (start, start_wall) = (Instant::now(), Utc::now());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut once = OneShot::precise(start, Deadline::After(Duration::from_millis(120)));
    let made = Instant::now();
    let Some(Event::Scheduled(scheduled)) = once.next().await else {
        panic!("expected a scheduled call");
    };
    // What the call is told it was scheduled for: start + 120 ms, on the
    // wall clock (read twice: within a few milliseconds).
    let told = (scheduled - start_wall).num_milliseconds();
    assert!(
        (110..=130).contains(&told),
        "scheduled {told} ms after start"
    );
    assert!(start.elapsed() >= Duration::from_millis(120));
    // Had it counted from `made`, it could not come before made + 120 ms.
    assert!(
        made.elapsed() < Duration::from_millis(120),
        "counted from when it was made"
    );
}
