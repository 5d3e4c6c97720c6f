//! Giving back unrun claims, and taking given-back ticks over.
//!
//! A stopping replica marks each claim it holds and has not run as given back
//! (its value becomes empty; its expiry is kept) and pushes the tick on the
//! list `agent_triggers:given-back`, in one script so neither happens without
//! the other. Every replica waits on that list (`BLPOP`, on a connection of
//! its own): Redis hands each item to exactly one waiter, which takes the
//! claim over — only if it is still marked given back, so a tick whose claim
//! expired or was lost with a restarted Redis is never run twice — and runs
//! the tick, late if its instant has passed. No command is spent on this
//! while no replica stops.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::AsyncConnectionConfig;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::{Fleet, PREFIX};
use crate::LOG_TARGET;
use crate::sync::Mutex;

/// If `KEYS[1]` (a claim) is `ARGV[1]`'s (this replica's) — or marked given
/// back already (a take-over this replica began and did not finish) — mark
/// it given back, keeping its expiry, and push `ARGV[2]` (the tick) on
/// `KEYS[2]`, which lives `ARGV[3]` ms after the last push. 1 if given back.
/// (Pushing a tick twice is harmless: only one take-over can succeed.)
static GIVE_BACK: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        local holder = redis.call('GET', KEYS[1])
        if holder ~= ARGV[1] and holder ~= '' then return 0 end
        redis.call('SET', KEYS[1], '', 'KEEPTTL')
        redis.call('RPUSH', KEYS[2], ARGV[2])
        redis.call('PEXPIRE', KEYS[2], ARGV[3])
        return 1
        ",
    )
});

/// If `KEYS[1]` (a claim) is marked given back: make it `ARGV[1]`'s (this
/// replica's), keeping its expiry. 1 if taken.
static TAKE_OVER: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        if redis.call('GET', KEYS[1]) ~= '' then return 0 end
        redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
        return 1
        ",
    )
});

fn list_key() -> String {
    format!("{PREFIX}:given-back")
}

/// The keyed triggers of this replica that take given-back ticks: one
/// channel per key, to the trigger's source.
#[derive(Default)]
pub(super) struct Handover {
    takers: Mutex<HashMap<Arc<str>, TakerEnd>>,
}

/// The hand-over's end of a [`Taker`]: its channel, and whether it waits.
type TakerEnd = (mpsc::UnboundedSender<DateTime<Utc>>, Arc<AtomicBool>);

/// A keyed trigger's end of the hand-over: ticks given back for its key.
pub(super) struct Taker {
    receiver: mpsc::UnboundedReceiver<DateTime<Utc>>,
    /// Set while the trigger waits for one (it is between calls, before a
    /// claim): a tick is handed only to a trigger that can take it now.
    waiting: Arc<AtomicBool>,
}

impl Taker {
    /// The next tick given back for this key (cancel safe).
    pub(super) async fn recv(&mut self) -> Option<DateTime<Utc>> {
        struct Waiting<'a>(&'a AtomicBool);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        self.waiting.store(true, Ordering::Release);
        let _waiting = Waiting(&self.waiting);
        self.receiver.recv().await
    }
}

impl Handover {
    /// Given-back ticks of `key` arrive through the returned taker.
    pub(super) fn register(&self, key: &Arc<str>) -> Taker {
        let (sender, receiver) = mpsc::unbounded_channel();
        let waiting = Arc::new(AtomicBool::new(false));
        self.takers
            .lock()
            .insert(Arc::clone(key), (sender, Arc::clone(&waiting)));
        Taker { receiver, waiting }
    }

    /// `false` if no trigger here can take a tick of `key` now (none has the
    /// key, it is running a call, or it is gone).
    fn deliver(&self, key: &str, due: DateTime<Utc>) -> bool {
        self.takers.lock().get(key).is_some_and(|(taker, waiting)| {
            waiting.load(Ordering::Acquire) && taker.send(due).is_ok()
        })
    }
}

/// Give back `key`'s claim of the tick due at `due`, if this replica still
/// holds it. `true` if given back.
pub(super) async fn give_back(fleet: &Fleet, key: &str, due: DateTime<Utc>) -> bool {
    let item = format!("{} {key}", due.timestamp_nanos_opt().unwrap_or_default());
    let mut invocation = GIVE_BACK.prepare_invoke();
    invocation
        .key(Fleet::claim_key(key, due))
        .key(list_key())
        .arg(&fleet.replica)
        .arg(item)
        .arg(fleet.config.claim_ttl.as_millis() as u64);
    let mut connection = fleet.connection();
    match tokio::time::timeout(
        Fleet::timeout_of(&fleet.config),
        invocation.invoke_async::<i64>(&mut connection),
    )
    .await
    {
        Ok(Ok(given)) => given == 1,
        Ok(Err(e)) => {
            warn!(
                target: LOG_TARGET,
                "fleet replica {:?}: could not give back the tick of key {key:?} due at \
                 {due}: {}",
                fleet.replica,
                fleet.config.scrub(&e)
            );
            false
        }
        Err(_) => false,
    }
}

/// Take over `key`'s tick due at `due`, given back by another replica.
pub(super) async fn take_over(fleet: &Fleet, key: &Arc<str>, due: DateTime<Utc>) -> bool {
    fleet.held.lock().insert(Arc::clone(key), due);
    let mut invocation = TAKE_OVER.prepare_invoke();
    invocation
        .key(Fleet::claim_key(key, due))
        .arg(&fleet.replica);
    let mut connection = fleet.connection();
    let taken = matches!(
        tokio::time::timeout(
            Fleet::timeout_of(&fleet.config),
            invocation.invoke_async::<i64>(&mut connection),
        )
        .await,
        Ok(Ok(1))
    );
    if !taken {
        fleet.release(key, due);
    }
    taken
}

/// How long one `BLPOP` blocks: the longest a stopping replica's listener
/// takes to notice (its stop waits for it, so that no tick is popped by a
/// listener about to vanish).
const POP_BLOCK: Duration = Duration::from_millis(100);

/// Wait for given-back ticks and hand each to the trigger of its key, until
/// [`Fleet::stop_listening`] — then return after the pop under way, so an
/// item it popped is never lost with it. Its own connection (a blocking pop
/// must not hold up the claims behind it), re-made after a failure.
pub async fn listen_for_given_back(fleet: Arc<Fleet>) {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Fleet::timeout_of(&fleet.config)))
        .set_response_timeout(Some(POP_BLOCK + Duration::from_secs(5)));
    while fleet.listening.load(Ordering::Acquire) {
        let mut connection = match fleet
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
        {
            Ok(connection) => connection,
            Err(_) => {
                // The claims report the outage; try again shortly.
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        while fleet.listening.load(Ordering::Acquire) {
            let popped: redis::RedisResult<Option<(String, String)>> = redis::cmd("BLPOP")
                .arg(list_key())
                .arg(POP_BLOCK.as_secs_f64())
                .query_async(&mut connection)
                .await;
            match popped {
                Ok(Some((_, item))) => dispatch(&fleet, item).await,
                Ok(None) => {}
                Err(e) => {
                    // A lost connection, or an error that will come again (a
                    // Redis older than 6.0, an ACL without BLPOP): not in a loop.
                    debug!(
                        target: LOG_TARGET,
                        "fleet replica {:?}: waiting for given-back ticks failed: {}",
                        fleet.replica,
                        fleet.config.scrub(&e)
                    );
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    break;
                }
            }
        }
    }
}

/// Hand a popped item to the trigger of its key; if none here can take it
/// (this replica is stopping, or has no trigger of that key), push it back
/// for another replica — while it is not too late to run.
async fn dispatch(fleet: &Fleet, item: String) {
    let parsed = item
        .split_once(' ')
        .and_then(|(nanos, key)| Some((nanos.parse::<i64>().ok()?, key)));
    let Some((nanos, key)) = parsed else {
        debug!(target: LOG_TARGET, "fleet: ignoring a malformed given-back item {item:?}");
        return;
    };
    let due = DateTime::from_timestamp_nanos(nanos);
    if fleet.handover.deliver(key, due) || fleet.too_late(due) {
        return;
    }
    let mut push = redis::cmd("RPUSH");
    push.arg(list_key()).arg(&item);
    let mut connection = fleet.connection();
    let _ = tokio::time::timeout(
        Fleet::timeout_of(&fleet.config),
        push.query_async::<i64>(&mut connection),
    )
    .await;
    // Let another replica's listener pop it first.
    tokio::time::sleep(PUSHED_BACK_PAUSE).await;
}

/// How long a listener that pushed a tick back waits before its next pop.
const PUSHED_BACK_PAUSE: Duration = Duration::from_millis(20);
