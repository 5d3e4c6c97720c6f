//! Cron schedules: calls at wall-clock boundaries in a time zone.

use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Local, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

use crate::source::{Event, EventSource};
use crate::wall_clock::{WallClock, sleep_until};
use crate::{Error, Result};

/// A parsed cron expression with the time zone its fields are read in.
///
/// Five fields (minute precision) or six (a leading seconds field); the syntax
/// and DST behaviour are those of the `croner` crate: in a DST gap, a job at a
/// fixed time runs at the first valid time after the gap, and interval or
/// wildcard jobs skip the missing times; in a DST overlap, a fixed-time job
/// runs once, interval jobs follow the wall clock through both passes.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expression: String,
    cron: Cron,
    zone: Zone,
}

#[derive(Debug, Clone, Copy)]
enum Zone {
    Local,
    Named(Tz),
}

impl CronSchedule {
    /// Parse `expression`, read in the IANA time zone `tz` (local time if `None`).
    /// Errors say why the expression or the zone is invalid.
    pub fn parse(expression: &str, tz: Option<&str>) -> Result<Self> {
        let fields = expression.split_whitespace().count();
        let is_alias = expression.trim_start().starts_with('@'); // @hourly, @daily, ...
        if !(fields == 5 || fields == 6 || is_alias) {
            return Err(Error::InvalidArgument(format!(
                "cron expression {expression:?} has {fields} fields; expected 5 \
                 (minute hour day month weekday) or 6 (with a leading seconds field)"
            )));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(expression)
            .map_err(|e| {
                Error::InvalidArgument(format!("invalid cron expression {expression:?}: {e}"))
            })?;
        let zone = match tz {
            None => Zone::Local,
            Some(name) => Zone::Named(Tz::from_str(name).map_err(|_| {
                Error::InvalidArgument(format!(
                    "unknown time zone {name:?}: expected an IANA name such as \"Europe/Paris\""
                ))
            })?),
        };
        let schedule = Self {
            expression: expression.to_owned(),
            cron,
            zone,
        };
        if schedule.next_after(Utc::now()).is_none() {
            return Err(Error::InvalidArgument(format!(
                "cron expression {expression:?} never matches (a day that does not exist?)"
            )));
        }
        Ok(schedule)
    }

    /// The expression as given.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The first occurrence strictly after `after`, or `None` if there is none.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.zone {
            Zone::Local => self
                .cron
                .find_next_occurrence(&after.with_timezone(&Local), false)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
            Zone::Named(tz) => self
                .cron
                .find_next_occurrence(&after.with_timezone(&tz), false)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
        }
    }

    /// A source ticking at each occurrence from now on, read off `clock`.
    pub fn source(self: &Arc<Self>, clock: Arc<dyn WallClock>) -> CronSource {
        CronSource {
            schedule: Arc::clone(self),
            clock,
            due: None,
        }
    }
}

/// Ticks at each occurrence of a [`CronSchedule`]. Occurrences that pass while
/// the handler is still running are skipped: calls never overlap or burst.
pub struct CronSource {
    schedule: Arc<CronSchedule>,
    clock: Arc<dyn WallClock>,
    /// The occurrence being waited for (kept across a cancelled wait).
    due: Option<DateTime<Utc>>,
}

#[async_trait]
impl EventSource for CronSource {
    async fn next(&mut self) -> Option<Event> {
        let due = match self.due {
            Some(due) => due,
            None => {
                let due = self.schedule.next_after(self.clock.now())?;
                self.due = Some(due);
                due
            }
        };
        sleep_until(&*self.clock, due).await;
        self.due = None;
        Some(Event::Scheduled(due))
    }
}
