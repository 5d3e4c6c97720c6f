//! A keyed trigger's ticks on one replica of a fleet: the ticks of its
//! schedule this replica wins, and the ticks given back to it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use std::time::Instant;

use super::grid::{self, EpochGrid};
use super::{CLAIM_LEAD, Claim, Fleet, OnUnavailable, handover};
use crate::periodic::sleep_precisely_until;
use crate::source::{Event, EventSource};
use crate::wall_clock::{SystemClock, sleep_until};
use crate::{CronSchedule, RecordTicks};

/// When a keyed trigger's ticks are due: the same instants on every replica.
#[derive(Clone, Debug)]
pub enum FleetSchedule {
    /// A periodic trigger on its epoch-aligned grid.
    Every(EpochGrid),
    /// A cron trigger at its occurrences.
    Cron(Arc<CronSchedule>),
    /// A one-shot at a wall-clock instant (past: at once).
    At(DateTime<Utc>),
}

impl FleetSchedule {
    /// The first tick after `after` (for `At`, its instant, unless `fired`).
    fn next_after(&self, after: DateTime<Utc>, fired: bool) -> Option<DateTime<Utc>> {
        match self {
            Self::Every(grid) => Some(grid.next_after(after)),
            Self::Cron(schedule) => schedule.next_after(after),
            Self::At(when) => (!fired).then_some(*when),
        }
    }

    /// How long before `due` a tick is claimed: [`CLAIM_LEAD`], or half the
    /// period if that is shorter (so a claim is made less than one interval
    /// ahead: one unrun claim per trigger at most).
    fn lead(&self) -> TimeDelta {
        let lead = match self {
            Self::Every(grid) => CLAIM_LEAD.min(grid.period() / 2),
            // Cron ticks are at least a second apart.
            Self::Cron(_) | Self::At(_) => CLAIM_LEAD,
        };
        TimeDelta::from_std(lead).unwrap_or_default()
    }
}

/// The ticks of one keyed trigger this replica is to run, as an event source:
/// each [`Event::Scheduled`] at its due instant (the same on every replica).
///
/// A tick returned is still held by this replica until its call starts: the
/// caller calls [`Fleet::release`] then, so that a call cancelled before it
/// started (a stop) is given back with the unrun claims.
///
/// Not cancel safe past a claim: a tick claimed and not yet returned stays in
/// the fleet's held claims, which a stop gives back — dropping this source is
/// how a run stops it.
pub struct FleetTicks {
    fleet: Arc<Fleet>,
    key: Arc<str>,
    schedule: FleetSchedule,
    given_back: handover::Taker,
    /// The tick of the schedule being waited for (kept across a tick given
    /// back meanwhile).
    pending: Option<DateTime<Utc>>,
    /// The last tick of the schedule dealt with: the next one comes after it
    /// (and after now).
    last: Option<DateTime<Utc>>,
    /// Where the ticks it skips, and its next tick, are recorded.
    stats: Option<Arc<dyn RecordTicks>>,
}

impl FleetTicks {
    pub fn new(fleet: &Arc<Fleet>, key: Arc<str>, schedule: FleetSchedule) -> Self {
        let given_back = fleet.handover.register(&key);
        Self {
            fleet: Arc::clone(fleet),
            key,
            schedule,
            given_back,
            pending: None,
            last: None,
            stats: None,
        }
    }

    /// Record the ticks it skips (late, or Redis unavailable under `Skip`)
    /// and its next tick in `stats` (the trigger's).
    #[must_use]
    pub fn recording_in(mut self, stats: Arc<dyn RecordTicks>) -> Self {
        self.stats = Some(stats);
        self
    }

    /// Count the tick due at `due` as skipped: too late to run safely.
    fn skip_late(&self, due: DateTime<Utc>) {
        self.record_skip();
        self.fleet.skip_late(&self.key, due);
    }

    fn record_skip(&self) {
        if let Some(stats) = &self.stats {
            stats.skipped(1);
        }
    }

    /// Whether `due` is past the point where this replica may still claim
    /// it: half the claim ttl after it (an earlier claim by another replica
    /// may have expired by then). A keyed `at` is claimed whenever its
    /// replica starts, however late (docs/fleet.md: `at` and restarts).
    fn too_late_to_claim(&self, due: DateTime<Utc>) -> bool {
        !matches!(self.schedule, FleetSchedule::At(_)) && self.fleet.too_late(due)
    }

    /// A tick won at `claimed` (monotonic), run at its instant — or skipped
    /// if by then half the claim ttl has passed since the claim was made: it
    /// may have lapsed (the process was suspended, or starved).
    async fn run_claimed(&mut self, due: DateTime<Utc>, claimed: Instant) -> Option<Event> {
        sleep_precisely_until(grid::monotonic(due).into()).await;
        if claimed.elapsed() > self.fleet.config.claim_ttl / 2 {
            self.fleet.release(&self.key, due);
            self.skip_late(due);
            return None;
        }
        Some(Event::Scheduled(due))
    }

    /// A tick given back by a stopping replica: run here if this replica takes it over.
    async fn take_over(&mut self, due: DateTime<Utc>) -> Option<Event> {
        if self.fleet.too_late(due) {
            self.skip_late(due);
            return None;
        }
        let claimed = Instant::now();
        if !handover::take_over(&self.fleet, &self.key, due).await {
            return None;
        }
        self.fleet.counts.taken_over.fetch_add(1, Ordering::Relaxed);
        self.run_claimed(due, claimed).await
    }

    /// The schedule is exhausted (a keyed `at` dealt with): a replica that
    /// lost its claim still takes it over if the winner gives it back, while
    /// that can happen (half the ttl after the claims were made).
    async fn last_chance(&mut self) -> Option<Event> {
        let until = tokio::time::Instant::now() + self.fleet.config.claim_ttl / 2;
        while let Ok(Some(given)) = tokio::time::timeout_at(until, self.given_back.recv()).await {
            if let Some(event) = self.take_over(given).await {
                return Some(event);
            }
        }
        None
    }
}

#[async_trait]
impl EventSource for FleetTicks {
    async fn next(&mut self) -> Option<Event> {
        loop {
            let due = match self.pending {
                Some(due) => due,
                None => {
                    let now = Utc::now();
                    let after = self.last.map_or(now, |last| last.max(now));
                    let Some(due) = self.schedule.next_after(after, self.last.is_some()) else {
                        return self.last_chance().await;
                    };
                    self.last = Some(due);
                    self.pending = Some(due);
                    if let Some(stats) = &self.stats {
                        stats.set_next_call_at(Some(due));
                    }
                    due
                }
            };
            let claim_at = due - self.schedule.lead();
            tokio::select! {
                biased;
                Some(given) = self.given_back.recv() => {
                    if let Some(event) = self.take_over(given).await {
                        return Some(event);
                    }
                    continue;
                }
                () = sleep_until(&SystemClock, claim_at) => {}
            }
            self.pending = None;
            if self.too_late_to_claim(due) {
                self.skip_late(due);
                continue;
            }
            let claimed = Instant::now();
            match self.fleet.claim(&self.key, due).await {
                Claim::Won => {
                    if let Some(event) = self.run_claimed(due, claimed).await {
                        return Some(event);
                    }
                }
                Claim::Lost => {}
                Claim::Unavailable => match self.fleet.config.on_unavailable {
                    OnUnavailable::Skip => {
                        self.record_skip();
                        self.fleet.counts.skipped.fetch_add(1, Ordering::Relaxed);
                    }
                    OnUnavailable::Run => {
                        sleep_precisely_until(grid::monotonic(due).into()).await;
                        return Some(Event::Scheduled(due));
                    }
                },
            }
        }
    }
}
