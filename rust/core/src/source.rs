//! Event sources: what wakes a native trigger, and the trigger that runs one.
//!
//! Every native trigger (periodic, cron, one-shot, file watching) is the same
//! loop — wait for the next event of a source, run the handler, repeat — over
//! a different [`EventSource`]. The source is made when the trigger starts, so
//! timers count from start and watchers exist only while the trigger runs (and
//! are released when it ends or is aborted).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use tokio::time::Instant;
use tracing::error;

use crate::{FileChange, LOG_TARGET, Result, Trigger, TriggerContext, TriggerDelivery};

/// What a source reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A due time was reached.
    Tick,
    /// The instant a call was scheduled for was reached (a tick of a cron,
    /// `at` or fleet schedule, whose instant the call is told).
    Scheduled(DateTime<Utc>),
    /// Files changed (one debounced batch, in order, without repeats).
    Changes(Vec<FileChange>),
}

/// A stream of events a trigger waits on.
#[async_trait]
pub trait EventSource: Send {
    /// The next event; `None` once the source is exhausted (a one-shot fired).
    ///
    /// Cancel safe: dropping the future loses no event.
    async fn next(&mut self) -> Option<Event>;
}

/// Makes a fresh source each time a trigger starts, given the start instant
/// (a schedule counts from it, not from when the trigger's task first runs).
pub type SourceFactory = Arc<dyn Fn(Instant) -> Result<Box<dyn EventSource>> + Send + Sync>;

/// What a native trigger runs for each event.
pub type EventHandler =
    Arc<dyn Fn(TriggerContext, Event) -> BoxFuture<'static, Result<()>> + Send + Sync>;

/// A trigger that runs `handler` for every event of the source `make_source`
/// builds at start, one event at a time (a slow handler is never overlapped).
/// A handler error is logged and the trigger goes on; the trigger ends when the
/// source is exhausted.
pub fn source_trigger(
    name: impl Into<String>,
    delivery: TriggerDelivery,
    make_source: SourceFactory,
    handler: EventHandler,
) -> Arc<dyn Trigger> {
    Arc::new(SourceTrigger {
        name: name.into(),
        delivery,
        make_source,
        handler,
    })
}

struct SourceTrigger {
    name: String,
    delivery: TriggerDelivery,
    make_source: SourceFactory,
    handler: EventHandler,
}

#[async_trait]
impl Trigger for SourceTrigger {
    fn name(&self) -> &str {
        &self.name
    }

    fn delivery(&self) -> TriggerDelivery {
        self.delivery
    }

    async fn run(&self, ctx: TriggerContext) -> Result<()> {
        let source = (self.make_source)(ctx.started())?;
        drive(source, &self.name, |event| {
            (self.handler)(ctx.clone(), event)
        })
        .await;
        Ok(())
    }
}

/// Run `on_event` for every event of `source`, one at a time (a slow handler
/// is never overlapped), until the source is exhausted. A handler error is
/// logged under `name` and the loop goes on.
pub async fn drive<F, Fut>(mut source: Box<dyn EventSource>, name: &str, mut on_event: F)
where
    F: FnMut(Event) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    while let Some(event) = source.next().await {
        if let Err(e) = on_event(event).await {
            error!(target: LOG_TARGET, trigger = %name, "trigger {name:?} failed: {e}");
        }
    }
}
