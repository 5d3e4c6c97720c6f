//! Fakes shared by the core's integration tests (each test binary uses a part).
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use agent_triggers_core::{Connection, Result};
use async_trait::async_trait;
use tokio::sync::Notify;

/// Counts trigger messages that reached the wire; its `wait_for_idle` blocks until
/// the test calls [`MockConn::go_idle`].
pub struct MockConn {
    trigger_count: AtomicU32,
    idle: AtomicBool,
    idle_notify: Notify,
}

impl MockConn {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            trigger_count: AtomicU32::new(0),
            idle: AtomicBool::new(false),
            idle_notify: Notify::new(),
        })
    }

    pub fn go_idle(&self) {
        self.idle.store(true, Ordering::Release);
        self.idle_notify.notify_waiters();
    }

    pub fn triggers_sent(&self) -> u32 {
        self.trigger_count.load(Ordering::Acquire)
    }
}

#[async_trait]
impl Connection for MockConn {
    fn is_idle(&self) -> bool {
        self.idle.load(Ordering::Acquire)
    }

    async fn send_trigger(&self, _content: String) -> Result<()> {
        self.trigger_count.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    async fn wait_for_idle(&self) -> Result<()> {
        loop {
            let notified = self.idle_notify.notified();
            if self.is_idle() {
                return Ok(());
            }
            notified.await;
        }
    }
}

/// A periodic trigger on tokio's clock (a [`Ticker`] source), running
/// `handler` on each tick: the schedule a runner's `every` follows.
pub fn every<F, Fut>(
    period: std::time::Duration,
    name: &str,
    handler: F,
) -> Arc<dyn agent_triggers_core::Trigger>
where
    F: Fn(agent_triggers_core::TriggerContext) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    every_with_delivery(
        period,
        name,
        agent_triggers_core::TriggerDelivery::WaitIdle,
        handler,
    )
}

/// [`every`], delivering with `delivery`.
pub fn every_with_delivery<F, Fut>(
    period: std::time::Duration,
    name: &str,
    delivery: agent_triggers_core::TriggerDelivery,
    handler: F,
) -> Arc<dyn agent_triggers_core::Trigger>
where
    F: Fn(agent_triggers_core::TriggerContext) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    use agent_triggers_core::{EventHandler, Ticker, source_trigger};
    let handler = Arc::new(handler);
    let on_event: EventHandler = Arc::new(move |ctx, _event| {
        let handler = Arc::clone(&handler);
        Box::pin(async move { handler(ctx).await })
    });
    source_trigger(
        name,
        delivery,
        Arc::new(move |started| Ok(Box::new(Ticker::starting_at(started, period, false)))),
        on_event,
    )
}

/// A real `redis-server` on a free loopback port, for as long as this lives
/// (no persistence: a restart empties it). The test command installs one;
/// a machine without it fails these tests, saying so.
pub struct RedisServer {
    child: std::process::Child,
    pub port: u16,
}

impl RedisServer {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        Self::start_on(port)
    }

    pub fn start_on(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server on PATH (`make test` installs it)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Self { child, port }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
