//! The supervisor: one task per [`Coherence`](super::Coherence) that keeps its tracking
//! connection, hands invalidations to the members, and decides the handle's health.
//!
//! States and transitions:
//!
//! | state | what holds | leaves for |
//! |---|---|---|
//! | Connecting | unhealthy; members flushed on entry | Tracking, once `CLIENT TRACKING ON BCAST PREFIX` is acknowledged; Backoff on any error |
//! | Backoff | unhealthy; a wait of 50 ms doubling to `max_backoff`, spread by a quarter | Connecting |
//! | Tracking | members flushed once more, then healthy | Backoff (through a flush) on any fault |
//!
//! The wait starts again from 50 ms only after a connection stayed up for a lease: a server
//! that accepts connections and drops them at once (a reconnect storm) sees attempts slow
//! down as it would if it refused them.
//!
//! Faults, each a sign that invalidations may have been lost: the connection closes (noticed
//! at once, from redis-rs's disconnection push), no ping answered within the lease (counted
//! from when the last answered ping was sent, so a frozen or partitioned server is noticed
//! though TCP stays up), FLUSHALL's null invalidation, `tracking-redir-broken`, a push of an
//! unknown shape, a marker that no member can decode, and the push channel closing. A server
//! restart is the connection closing.
//!
//! Rules:
//! 1. Healthy is set only in Tracking, after the flush that follows the tracking
//!    acknowledgement, and cleared before the flush that follows a fault: a member that sees
//!    `healthy` has been flushed since tracking came on.
//! 2. The connection is published for writers (markers) only while Tracking.
//! 3. Pushes are handled in the order Redis sent them. A ping's answer comes after every push
//!    Redis queued before it, so an answered ping proves no invalidation sent before the ping
//!    is still in flight.

use std::time::{Duration, Instant};

use redis::{
    AsyncConnectionConfig, Client, ConnectionInfo, PushInfo, PushKind, Value,
    aio::MultiplexedConnection,
};
use tokio::sync::mpsc;

use super::{Member, Shared, marker};
use crate::{
    jitter::Jitter,
    sync::{Arc, Ordering, Weak},
};

/// The first wait before a reconnection attempt.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// Why tracking ended.
#[derive(Debug)]
enum Fault {
    Closed,
    LeaseExpired,
    FlushAll,
    RedirBroken,
    Undecodable,
    UnknownPush,
    PingFailed,
}

/// Runs until the handle is dropped (then it is aborted, or finds `shared` gone).
pub(super) async fn run(shared: Weak<Shared>, info: ConnectionInfo) {
    let info = with_resp3(info);
    let mut backoff = Backoff::new();
    let mut connected_before = false;
    loop {
        let Some(strong) = shared.upgrade() else {
            return;
        };
        let settings = strong.settings;
        drop(strong);
        if let Some((connection, pushes)) = track(&info, &shared, settings.lease).await {
            let Some(strong) = shared.upgrade() else {
                return;
            };
            if connected_before {
                strong.reconnects.fetch_add(1, Ordering::Relaxed);
            }
            connected_before = true;
            strong.become_healthy(connection.clone());
            drop(strong);
            let tracked_since = Instant::now();
            // Why tracking ended does not change what follows: every fault is handled alike.
            let _why = serve(&shared, connection, pushes).await;
            let Some(strong) = shared.upgrade() else {
                return;
            };
            strong.become_unhealthy();
            drop(strong);
            if tracked_since.elapsed() >= settings.lease {
                backoff.reset();
            }
        }
        tokio::time::sleep(backoff.next(settings.max_backoff)).await;
    }
}

/// Connects, with RESP3 and a push channel, and turns tracking on; `None` on any failure.
async fn track(
    info: &ConnectionInfo,
    shared: &Weak<Shared>,
    lease: Duration,
) -> Option<(MultiplexedConnection, mpsc::UnboundedReceiver<PushInfo>)> {
    let prefix = shared.upgrade()?.prefix.clone();
    let (sender, pushes) = mpsc::unbounded_channel();
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(lease))
        .set_response_timeout(Some(lease))
        .set_push_sender(sender);
    let client = Client::open(info.clone()).ok()?;
    let mut connection = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .ok()?;
    // Named, so that an operator can tell it apart in `CLIENT LIST`.
    redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(format!("ttlcache:{}", prefix.trim_end_matches(':')).replace(' ', "_"))
        .query_async::<()>(&mut connection)
        .await
        .ok()?;
    redis::cmd("CLIENT")
        .arg("TRACKING")
        .arg("ON")
        .arg("BCAST")
        .arg("PREFIX")
        .arg(&prefix)
        .query_async::<()>(&mut connection)
        .await
        .ok()?;
    Some((connection, pushes))
}

/// Tracking: hands pushes to the members and pings, until a fault (or the handle is gone:
/// `None`).
async fn serve(
    shared: &Weak<Shared>,
    connection: MultiplexedConnection,
    mut pushes: mpsc::UnboundedReceiver<PushInfo>,
) -> Option<Fault> {
    let settings = shared.upgrade()?.settings;
    let mut ticks = tokio::time::interval(settings.ping_every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // When the last answered ping was sent: tracking was acknowledged just now.
    let mut last_answered = Instant::now();
    let mut ping: Option<(Instant, tokio::task::JoinHandle<bool>)> = None;
    loop {
        tokio::select! {
            biased;
            push = pushes.recv() => {
                let Some(push) = push else {
                    return Some(Fault::Closed);
                };
                let strong = shared.upgrade()?;
                if let Err(fault) = handle(&strong, push) {
                    return Some(fault);
                }
            }
            _ = ticks.tick() => {
                if let Some((sent, answer)) = &mut ping {
                    if answer.is_finished() {
                        if !answer.await.unwrap_or(false) {
                            return Some(Fault::PingFailed);
                        }
                        last_answered = *sent;
                        ping = None;
                    }
                }
                if last_answered.elapsed() >= settings.lease {
                    return Some(Fault::LeaseExpired);
                }
                if ping.is_none() {
                    let mut connection = connection.clone();
                    let answer = tokio::spawn(async move {
                        redis::cmd("PING")
                            .query_async::<()>(&mut connection)
                            .await
                            .is_ok()
                    });
                    ping = Some((Instant::now(), answer));
                }
            }
        }
        shared.upgrade()?;
    }
}

/// Hands one push to the members.
fn handle(shared: &Shared, push: PushInfo) -> Result<(), Fault> {
    match push.kind {
        PushKind::Invalidate => {}
        PushKind::Disconnection => return Err(Fault::Closed),
        PushKind::Other(kind) if kind == "tracking-redir-broken" => {
            return Err(Fault::RedirBroken);
        }
        // Replies to subscriptions this connection never makes: nothing to lose.
        _ => return Ok(()),
    }
    // `invalidate` carries one array of keys, or a null for "everything" (FLUSHALL).
    let keys = match push.data.into_iter().next() {
        Some(Value::Array(keys)) => keys,
        Some(Value::Nil) => return Err(Fault::FlushAll),
        _ => return Err(Fault::UnknownPush),
    };
    for key in keys {
        let Value::BulkString(key) = key else {
            return Err(Fault::UnknownPush);
        };
        shared.received.fetch_add(1, Ordering::Relaxed);
        match marker::parse(&shared.prefix, &key) {
            Some(marker::Target::Key(name, key)) => {
                for member in shared.members_named(name) {
                    member.invalidate(key).map_err(|_| Fault::Undecodable)?;
                }
            }
            Some(marker::Target::All(name)) => {
                for member in shared.members_named(name) {
                    member.flush();
                }
            }
            None => {}
        }
    }
    Ok(())
}

impl Shared {
    /// The live members registered under `name`.
    fn members_named(&self, name: &str) -> Vec<Arc<dyn Member>> {
        self.members.lock().get(name).cloned().unwrap_or_default()
    }

    /// Every live member.
    fn all_members(&self) -> Vec<Arc<dyn Member>> {
        self.members.lock().values().flatten().cloned().collect()
    }

    /// Flushes every member, counted.
    fn flush_all(&self) {
        for member in self.all_members() {
            member.flush();
        }
        self.flushes.fetch_add(1, Ordering::Relaxed);
    }

    /// Tracking is on: flush, then publish the connection and turn healthy (rule 1).
    fn become_healthy(&self, connection: MultiplexedConnection) {
        self.flush_all();
        *self.connection.lock() = Some(connection);
        let mut unhealthy = self.unhealthy.lock();
        if let Some(since) = unhealthy.since.take() {
            unhealthy.before += since.elapsed();
        }
        self.healthy.store(true, Ordering::Release);
    }

    /// A fault: turn unhealthy, withdraw the connection, then flush (rule 1).
    fn become_unhealthy(&self) {
        self.healthy.store(false, Ordering::Release);
        *self.connection.lock() = None;
        self.unhealthy.lock().since.get_or_insert_with(Instant::now);
        self.flush_all();
    }
}

/// The URL's connection, spoken in RESP3 whatever the URL said: pushes need it.
fn with_resp3(info: ConnectionInfo) -> ConnectionInfo {
    let redis = info
        .redis_settings()
        .clone()
        .set_protocol(redis::ProtocolVersion::RESP3);
    info.set_redis_settings(redis)
}

/// Waits between reconnection attempts: doubling from [`FIRST_BACKOFF`], capped, each spread
/// by up to a quarter either way so that replicas cut off together do not return together.
struct Backoff {
    next: Duration,
    jitter: Jitter,
}

impl Backoff {
    fn new() -> Self {
        Self {
            next: FIRST_BACKOFF,
            jitter: Jitter::seeded(),
        }
    }

    fn reset(&mut self) {
        self.next = FIRST_BACKOFF;
    }

    fn next(&mut self, cap: Duration) -> Duration {
        let delay = self.next.min(cap);
        self.next = self.next.saturating_mul(2).min(cap);
        self.jitter.spread(delay)
    }
}

#[cfg(all(test, not(ttlcache_loom)))]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_stays_within_a_quarter() {
        let mut backoff = Backoff::new();
        let cap = Duration::from_millis(400);
        let delays: Vec<f64> = (0..8)
            .map(|_| backoff.next(cap).as_secs_f64() * 1_000.0)
            .collect();
        for (delay, base) in delays.iter().zip([50.0, 100.0, 200.0, 400.0, 400.0, 400.0]) {
            assert!(
                (base * 0.75..=base * 1.25).contains(delay),
                "{delay} ms for {base}"
            );
        }
        backoff.reset();
        assert!(backoff.next(cap) <= Duration::from_micros(62_500));
    }
}
