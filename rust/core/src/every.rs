//! `every`: the periodic trigger.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::source::{EventHandler, source_trigger};
use crate::{Result, Ticker, Trigger, TriggerContext, TriggerDelivery};

/// The callback a periodic trigger runs on each tick.
pub type Handler = Arc<dyn Fn(TriggerContext) -> BoxFuture<'static, Result<()>> + Send + Sync>;

/// A trigger that runs `handler` every `period`, delivering with
/// [`TriggerDelivery::WaitIdle`]. See [`every_with_delivery`].
pub fn every<F, Fut>(period: Duration, name: impl Into<String>, handler: F) -> Arc<dyn Trigger>
where
    F: Fn(TriggerContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    every_with_delivery(
        period,
        name,
        TriggerDelivery::WaitIdle,
        Arc::new(move |ctx| Box::pin(handler(ctx))),
    )
}

/// A trigger that runs `handler` on a [`Ticker`] schedule of `period`.
///
/// The first call comes one period after the trigger starts. Calls are due at
/// fixed instants `t0 + k·period` whatever the handler's duration; a handler that
/// overruns is never overlapped, and the ticks missed meanwhile are skipped. A
/// handler error is logged and the schedule goes on.
///
/// # Panics
/// The trigger's task panics (and the runner logs it) if `period` is zero.
pub fn every_with_delivery(
    period: Duration,
    name: impl Into<String>,
    delivery: TriggerDelivery,
    handler: Handler,
) -> Arc<dyn Trigger> {
    let on_event: EventHandler = Arc::new(move |ctx, _event| handler(ctx));
    source_trigger(
        name,
        delivery,
        Arc::new(move |started| Ok(Box::new(Ticker::starting_at(started, period, false)))),
        on_event,
    )
}
