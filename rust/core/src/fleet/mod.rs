//! Fleets: each tick of a keyed trigger runs on exactly one replica, agreed
//! in Redis (docs/fleet.md has the protocol, its guarantees and its limits).
//!
//! Every replica runs the same keyed triggers on the same grid
//! ([`grid`]). Shortly before a tick each replica claims it with
//! `SET <prefix>:<key>:<tick_ms> <replica> NX PX <ttl>`; the one whose `SET`
//! succeeds runs it at its due instant, the others let it go. A claim is never
//! deleted after its call: it expires by itself, so a replica whose clock is
//! behind cannot claim the tick again (while its skew stays under half the
//! ttl). A replica that stops gives back the claims it has not run: the claim
//! is marked given back (kept until it expires) and the tick pushed on a list
//! every replica waits on; the one that pops it takes the claim over and runs
//! the tick (see the `handover` module).

mod config;
pub mod grid;
mod handover;
mod ticks;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tracing::{info, warn};

use crate::sync::Mutex;
use crate::{Error, LOG_TARGET, Result};
pub use config::{FleetConfig, OnUnavailable};
pub use handover::listen_for_given_back;
pub use ticks::{FleetSchedule, FleetTicks};

/// The claim ttl when none is given.
pub const DEFAULT_CLAIM_TTL: Duration = Duration::from_secs(10);

/// The shortest claim ttl: ten times the claim lead, so that a claim outlives
/// every replica's claim of the same tick even with some skew.
pub const MIN_CLAIM_TTL: Duration = Duration::from_secs(1);

/// The longest a replica claims a tick ahead of it (less for short periods:
/// at most half the period, so a replica holds at most one unrun claim per
/// keyed trigger). Far above a loopback or LAN round trip, so a fleet tick
/// starts as precisely as a local one.
pub const CLAIM_LEAD: Duration = Duration::from_millis(100);

/// Where the claims live in Redis: `agent_triggers:claim:<key>:<tick_ms>`.
const PREFIX: &str = "agent_triggers";

/// The outcome of a claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// This replica holds the tick: it runs it.
    Won,
    /// Another replica holds it.
    Lost,
    /// Redis did not answer (in time).
    Unavailable,
}

/// What a fleet did, counted (for logs, tests and benchmarks).
#[derive(Debug, Default)]
pub struct FleetCounts {
    /// Claims made (`SET ... NX`), whatever their outcome.
    pub claims: AtomicU64,
    pub won: AtomicU64,
    /// Ticks given back at stop.
    pub given_back: AtomicU64,
    /// Given-back ticks this replica took over.
    pub taken_over: AtomicU64,
    /// Ticks skipped: Redis unavailable (under `Skip`), or a claim that may
    /// have expired before its call could start (a suspended process).
    pub skipped: AtomicU64,
}

/// A fleet as one run of a runner uses it: a connection to its Redis (made
/// lazily and re-made after a failure, without a restart) and the claims this
/// replica holds and has not run yet.
pub struct Fleet {
    config: FleetConfig,
    replica: String,
    client: redis::Client,
    /// The claims' connection (multiplexed: concurrent claims share it). Made
    /// anew after a failure (see [`reconnect`](Self::reconnect)).
    claims: Mutex<ConnectionManager>,
    /// When the connection was last made anew (at most once a second).
    reconnected: Mutex<Option<std::time::Instant>>,
    /// When skipped-as-late ticks were last logged (at most every 10 s).
    late_logged: Mutex<Option<std::time::Instant>>,
    /// `false` during an outage: one WARNING when it begins, one INFO when it ends.
    reachable: AtomicBool,
    /// The tick each keyed trigger has claimed and not yet run.
    held: Mutex<HashMap<Arc<str>, DateTime<Utc>>>,
    handover: handover::Handover,
    /// Cleared to stop the given-back listener (see [`listen_for_given_back`]).
    listening: AtomicBool,
    pub counts: FleetCounts,
}

impl Fleet {
    /// A fleet for this replica, named `replica`. Connects lazily: a Redis
    /// down now is only the first claims' concern. Must be called within a
    /// tokio runtime.
    pub fn connect(config: &FleetConfig, replica: String) -> Result<Arc<Self>> {
        let client = redis::Client::open(config.url.as_str()).map_err(|e| {
            Error::InvalidArgument(format!(
                "url is not a usable Redis URL: {}",
                config.scrub(&e)
            ))
        })?;
        let claims = Self::manager(config, &client)?;
        Ok(Arc::new(Self {
            config: config.clone(),
            replica,
            client,
            claims: Mutex::new(claims),
            reconnected: Mutex::new(None),
            late_logged: Mutex::new(None),
            reachable: AtomicBool::new(true),
            held: Mutex::new(HashMap::new()),
            handover: handover::Handover::default(),
            listening: AtomicBool::new(true),
            counts: FleetCounts::default(),
        }))
    }

    /// A connection manager, connecting lazily (on its first command).
    fn manager(config: &FleetConfig, client: &redis::Client) -> Result<ConnectionManager> {
        let timeout = Self::timeout_of(config);
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            // One attempt per command while Redis is down; the next claim tries again.
            .set_number_of_retries(0);
        ConnectionManager::new_lazy_with_config(client.clone(), manager_config)
            .map_err(|e| Error::other(config.scrub(&e)))
    }

    /// The claims' connection, for one command.
    fn connection(&self) -> ConnectionManager {
        self.claims.lock().clone()
    }

    /// After a failed command: a new connection for the next one. The
    /// manager re-connects by itself only after errors it deems fatal to the
    /// connection; a timeout (a half-open socket) or `READONLY` (a primary
    /// demoted by a failover) would otherwise keep every claim failing.
    fn reconnect(&self) {
        let now = std::time::Instant::now();
        {
            let mut last = self.reconnected.lock();
            if last.is_some_and(|at| now.duration_since(at) < Duration::from_secs(1)) {
                return;
            }
            *last = Some(now);
        }
        if let Ok(manager) = Self::manager(&self.config, &self.client) {
            *self.claims.lock() = manager;
        }
    }

    /// Whether `due` is more than half the claim ttl past: a claim of it by
    /// another replica may have expired, so this one must not claim or run it.
    fn too_late(&self, due: DateTime<Utc>) -> bool {
        grid::late(due) > self.config.claim_ttl / 2
    }

    /// Count a tick skipped as too late, with a WARNING at most every 10 s.
    fn skip_late(&self, key: &str, due: DateTime<Utc>) {
        self.counts.skipped.fetch_add(1, Ordering::Relaxed);
        let now = std::time::Instant::now();
        {
            let mut last = self.late_logged.lock();
            if last.is_some_and(|at| now.duration_since(at) < Duration::from_secs(10)) {
                return;
            }
            *last = Some(now);
        }
        warn!(
            target: LOG_TARGET,
            "fleet replica {:?}: the tick of key {key:?} due at {due} is skipped: it could not \
             be claimed or started within half the claim ttl (was the process suspended?), \
             so another replica may hold it ({} skipped so far)",
            self.replica,
            self.counts.skipped.load(Ordering::Relaxed)
        );
    }

    /// How long a command may take before Redis counts as unavailable.
    fn timeout_of(config: &FleetConfig) -> Duration {
        (config.claim_ttl / 4).min(Duration::from_secs(1))
    }

    fn claim_key(key: &str, due: DateTime<Utc>) -> String {
        format!("{PREFIX}:claim:{key}:{}", grid::tick_id(due))
    }

    /// Claim the tick of `key` due at `due`. Recorded as held before it is
    /// sent, so a stop that interrupts it still gives the tick back.
    async fn claim(&self, key: &Arc<str>, due: DateTime<Utc>) -> Claim {
        self.held.lock().insert(Arc::clone(key), due);
        self.counts.claims.fetch_add(1, Ordering::Relaxed);
        let mut command = redis::cmd("SET");
        command
            .arg(Self::claim_key(key, due))
            .arg(&self.replica)
            .arg("NX")
            .arg("PX")
            .arg(self.config.claim_ttl.as_millis() as u64);
        let claim = match self.run::<Option<String>>(&command).await {
            Some(Some(_)) => Claim::Won,
            Some(None) => Claim::Lost,
            None => Claim::Unavailable,
        };
        if claim == Claim::Won {
            self.counts.won.fetch_add(1, Ordering::Relaxed);
        } else {
            self.held.lock().remove(key);
        }
        claim
    }

    /// The claim of `key`'s tick due at `due` has been used (its call is
    /// starting) or let go: it is no longer this replica's to give back.
    pub fn release(&self, key: &str, due: DateTime<Utc>) {
        let mut held = self.held.lock();
        if held.get(key) == Some(&due) {
            held.remove(key);
        }
    }

    /// Ask the given-back listener to return after its pop under way (which
    /// it hands on, or pushes back for another replica).
    pub fn stop_listening(&self) {
        self.listening.store(false, Ordering::Release);
    }

    /// Give back every claim this replica holds and has not run: the others
    /// take those ticks. At most `timeout` (Redis may be down: those ticks are
    /// then lost, as for a replica killed).
    pub async fn give_back_unrun(&self, timeout: Duration) {
        let held: Vec<_> = self.held.lock().drain().collect();
        if held.is_empty() {
            return;
        }
        let give_back = async {
            for (key, due) in held {
                if handover::give_back(self, &key, due).await {
                    self.counts.given_back.fetch_add(1, Ordering::Relaxed);
                }
            }
        };
        if tokio::time::timeout(timeout, give_back).await.is_err() {
            warn!(
                target: LOG_TARGET,
                "fleet replica {:?}: could not give back its unrun claims within {timeout:?}; \
                 their ticks are lost",
                self.replica
            );
        }
    }

    /// Run `command`; `None` if Redis is unavailable (then the outage is
    /// logged, once).
    async fn run<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Option<T> {
        let mut connection = self.connection();
        let answer = tokio::time::timeout(
            Self::timeout_of(&self.config),
            command.query_async::<T>(&mut connection),
        )
        .await;
        match answer {
            Ok(Ok(value)) => {
                if !self.reachable.swap(true, Ordering::AcqRel) {
                    info!(
                        target: LOG_TARGET,
                        "fleet replica {:?}: Redis at {} is reachable again",
                        self.replica,
                        self.config.redacted
                    );
                }
                Some(value)
            }
            Ok(Err(e)) => {
                self.outage(&self.config.scrub(&e));
                self.reconnect();
                None
            }
            Err(_) => {
                self.outage("no answer in time");
                self.reconnect();
                None
            }
        }
    }

    fn outage(&self, why: &str) {
        if self.reachable.swap(false, Ordering::AcqRel) {
            let then = match self.config.on_unavailable {
                OnUnavailable::Skip => "keyed triggers skip their ticks",
                OnUnavailable::Run => "keyed triggers run their ticks on this replica",
            };
            warn!(
                target: LOG_TARGET,
                "fleet replica {:?}: Redis at {} is unavailable ({why}); {then} until it is back",
                self.replica,
                self.config.redacted
            );
        }
    }
}

impl fmt::Debug for Fleet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fleet")
            .field("config", &self.config)
            .field("replica", &self.replica)
            .finish_non_exhaustive()
    }
}
