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
//! Faults, each a sign that invalidations may have been lost. Those that put the connection
//! in doubt end it (Tracking → Backoff): it closes (noticed at once, from redis-rs's
//! disconnection push or the push queue closing; a server restart is this), no ping is
//! answered within the lease (counted from when the last answered ping was sent, so a frozen
//! or partitioned server is noticed though TCP stays up, at the lease's end whatever the ping
//! period), a ping fails, or more pushes come than the queue holds. The others lose nothing
//! on the connection and are handled on it (unhealthy, a flush, a second flush, healthy;
//! writers keep the connection meanwhile):
//! FLUSHALL's null invalidation, `tracking-redir-broken`, a push of an unknown shape, a
//! marker that no member can decode, a member that panics while it removes a key.
//!
//! Members (their listeners, their keys' and values' `Drop`) run on this task: a panic there
//! is caught, and a listener that blocks delays invalidations and the lease with it.
//!
//! Rules:
//! 1. Healthy is set only in Tracking, after the flush that follows the tracking
//!    acknowledgement, and cleared before the flush that follows a fault: a member that sees
//!    `healthy` has been flushed since tracking came on (and a member registered during that
//!    flush is flushed too before healthy is set).
//! 2. The connection is published for writers (markers) only while Tracking.
//! 3. Pushes are handled in the order Redis sent them. A ping's answer comes after every push
//!    Redis queued before it, so an answered ping proves every invalidation sent before the
//!    ping has reached this process (it may wait in the push queue a moment longer).
//! 4. However the task ends (the runtime shutting down), the handle is left unhealthy and
//!    flushed.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    time::{Duration, Instant},
};

use redis::{
    AsyncConnectionConfig, Client, ConnectionInfo, PushInfo, PushKind, Value,
    aio::MultiplexedConnection,
};
use tokio::sync::mpsc;

use super::{Member, Shared, marker};
use crate::{
    jitter::Jitter,
    sync::{Arc, AtomicBool, Ordering, Weak},
};

/// The first wait before a reconnection attempt.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// Pushes queued between the connection and the supervisor; past it, pushes are lost, and
/// the loss is a fault.
const PUSH_QUEUE: usize = 1 << 16;

/// Why tracking ended, or was interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Closed,
    LeaseExpired,
    PingFailed,
    /// More pushes came than the supervisor could queue: some were dropped.
    Overflowed,
    RedirBroken,
    FlushAll,
    Undecodable,
    UnknownPush,
    /// A member panicked while it removed a key: it may not have.
    MemberPanicked,
}

impl Fault {
    /// Whether the connection itself is in doubt. The others lose nothing on it: they are
    /// handled on the same connection, by flushing twice.
    fn ends_the_connection(self) -> bool {
        matches!(
            self,
            Self::Closed | Self::LeaseExpired | Self::PingFailed | Self::Overflowed
        )
    }
}

/// A tracking connection, just acknowledged.
struct Tracking {
    connection: MultiplexedConnection,
    pushes: mpsc::Receiver<PushInfo>,
    overflowed: Arc<AtomicBool>,
    /// When `CLIENT TRACKING` was sent: the lease counts from there.
    asked_at: Instant,
}

/// Runs until the handle is dropped (then it is aborted, or finds `shared` gone).
pub(super) async fn run(shared: Weak<Shared>, info: ConnectionInfo) {
    // However this task ends (the runtime it runs on shuts down, say), the handle is left
    // unhealthy and its members flushed, never healthy with no one to hear invalidations.
    let _guard = UnhealthyOnExit(shared.clone());
    let info = with_resp3(info);
    let mut backoff = Backoff::new();
    let mut connected_before = false;
    loop {
        let Some(strong) = shared.upgrade() else {
            return;
        };
        let settings = strong.settings;
        drop(strong);
        if let Some(tracking) = track(&info, &shared, settings.lease).await {
            let Some(strong) = shared.upgrade() else {
                return;
            };
            if connected_before {
                strong.reconnects.fetch_add(1, Ordering::Relaxed);
            }
            connected_before = true;
            strong.become_healthy(tracking.connection.clone());
            drop(strong);
            let tracked_since = Instant::now();
            // Every fault that ends tracking is handled alike: what it was does not matter.
            let _why = serve(&shared, tracking).await;
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

/// Connects, with RESP3 and a push queue, and turns tracking on; `None` on any failure.
async fn track(info: &ConnectionInfo, shared: &Weak<Shared>, lease: Duration) -> Option<Tracking> {
    let prefix = shared.upgrade()?.prefix.clone();
    let (sender, pushes) = mpsc::channel(PUSH_QUEUE);
    let overflowed = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&overflowed);
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(lease))
        .set_response_timeout(Some(lease))
        .set_push_sender(move |push| {
            sender.try_send(push).inspect_err(|error| {
                if matches!(error, mpsc::error::TrySendError::Full(_)) {
                    flag.store(true, Ordering::Release);
                }
            })
        });
    let client = Client::open(info.clone()).ok()?;
    let mut connection = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .ok()?;
    // Named, so that an operator can tell it apart in `CLIENT LIST`; only a courtesy, so a
    // refusal (an ACL user without `client|setname`) is no failure.
    let _ = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(client_name(&prefix))
        .query_async::<()>(&mut connection)
        .await;
    let asked_at = Instant::now();
    redis::cmd("CLIENT")
        .arg("TRACKING")
        .arg("ON")
        .arg("BCAST")
        .arg("PREFIX")
        .arg(&prefix)
        .query_async::<()>(&mut connection)
        .await
        .ok()?;
    Some(Tracking {
        connection,
        pushes,
        overflowed,
        asked_at,
    })
}

/// `ttlcache:<namespace>`, in the bytes Redis accepts in a client name.
fn client_name(prefix: &str) -> String {
    let name = format!("ttlcache:{}", prefix.trim_end_matches(':'));
    name.chars()
        .map(|c| if ('!'..='~').contains(&c) { c } else { '_' })
        .collect()
}

/// Tracking: hands pushes to the members, pings, and keeps the lease, until a fault that
/// ends the connection (or the handle is gone: `None`).
async fn serve(shared: &Weak<Shared>, tracking: Tracking) -> Option<Fault> {
    let Tracking {
        connection,
        mut pushes,
        overflowed,
        asked_at,
    } = tracking;
    let settings = shared.upgrade()?.settings;
    let mut ticks = tokio::time::interval(settings.ping_every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // When the last answered ping was sent; tracking's acknowledgement counts as one.
    let mut last_answered = asked_at;
    let mut ping = Ping::default();
    loop {
        let lease_ends = tokio::time::Instant::from_std(last_answered + settings.lease);
        let fault = tokio::select! {
            push = pushes.recv() => match push {
                None => Some(Fault::Closed),
                Some(_) if overflowed.load(Ordering::Acquire) => Some(Fault::Overflowed),
                Some(push) => handle(&*shared.upgrade()?, push).err(),
            },
            answer = ping.answer() => match answer {
                Some(sent) => {
                    last_answered = sent;
                    None
                }
                None => Some(Fault::PingFailed),
            },
            () = tokio::time::sleep_until(lease_ends) => Some(Fault::LeaseExpired),
            _ = ticks.tick(), if !ping.is_out() => {
                ping.send(&connection);
                None
            }
        };
        match fault {
            None => {}
            Some(fault) if fault.ends_the_connection() => return Some(fault),
            // Nothing lost on the connection: flush, and flush again, on the same one, which
            // stays published for writers meanwhile.
            Some(_) => {
                let strong = shared.upgrade()?;
                strong.turn_unhealthy();
                strong.flush_all(true);
                strong.flush_all(true);
                strong.turn_healthy();
            }
        }
    }
}

/// The ping in flight, if any: a task of its own, aborted when dropped so that it keeps no
/// connection alive after tracking ends.
#[derive(Default)]
struct Ping {
    out: Option<(Instant, tokio::task::JoinHandle<bool>)>,
}

impl Ping {
    fn is_out(&self) -> bool {
        self.out.is_some()
    }

    fn send(&mut self, connection: &MultiplexedConnection) {
        let mut connection = connection.clone();
        let answer = tokio::spawn(async move {
            redis::cmd("PING")
                .query_async::<()>(&mut connection)
                .await
                .is_ok()
        });
        self.out = Some((Instant::now(), answer));
    }

    /// When the ping in flight was sent, once it is answered; `None` if it failed. Pending
    /// while no ping is out.
    async fn answer(&mut self) -> Option<Instant> {
        let Some((sent, answer)) = &mut self.out else {
            return std::future::pending().await;
        };
        let answered = answer.await.unwrap_or(false);
        let sent = *sent;
        self.out = None;
        answered.then_some(sent)
    }
}

impl Drop for Ping {
    fn drop(&mut self) {
        if let Some((_, answer)) = &self.out {
            answer.abort();
        }
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
        match marker::parse(&shared.prefix, &key) {
            Some(marker::Target::Key(name, key)) => {
                for member in shared.members_named(name) {
                    // A listener or a key's `Drop` that panics must not end the supervisor.
                    match catch_unwind(AssertUnwindSafe(|| member.invalidate(key))) {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return Err(Fault::Undecodable),
                        Err(_) => return Err(Fault::MemberPanicked),
                    }
                }
            }
            Some(marker::Target::All(name)) => {
                for member in shared.members_named(name) {
                    flush(&*member);
                }
            }
            None => {}
        }
        shared.received.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Flushes a member; a listener that panics stops neither the flush (its removals are all
/// made before listeners run) nor the supervisor.
fn flush(member: &dyn Member) {
    let _ = catch_unwind(AssertUnwindSafe(|| member.flush()));
}

impl Shared {
    /// The live members registered under `name`.
    fn members_named(&self, name: &str) -> Vec<Arc<dyn Member>> {
        self.members.lock().get(name).cloned().unwrap_or_default()
    }

    /// Flushes every member, counted; again if one registered meanwhile, so that none
    /// registered before it returns keeps what it stored before. `lost`: because
    /// invalidations may have been lost, not because tracking came on.
    fn flush_all(&self, lost: bool) {
        let mut flushed = 0;
        loop {
            let (members, registrations) = {
                let members = self.members.lock();
                let all: Vec<Arc<dyn Member>> = members.values().flatten().cloned().collect();
                (all, self.registrations.load(Ordering::Acquire))
            };
            flushed += members.len();
            for member in members {
                flush(&*member);
            }
            if self.registrations.load(Ordering::Acquire) == registrations {
                break;
            }
        }
        self.flushes.fetch_add(1, Ordering::Relaxed);
        crate::trace::coherence_flushed(self.namespace(), flushed, lost);
    }

    /// Tracking is on: flush, then publish the connection and turn healthy (rule 1).
    fn become_healthy(&self, connection: MultiplexedConnection) {
        self.flush_all(false);
        *self.connection.lock() = Some(connection);
        self.turn_healthy();
    }

    /// A fault that ends the connection: turn unhealthy, withdraw the connection, then flush
    /// (rule 1).
    fn become_unhealthy(&self) {
        self.turn_unhealthy();
        *self.connection.lock() = None;
        self.flush_all(true);
    }

    fn turn_healthy(&self) {
        let mut unhealthy = self.unhealthy.lock();
        if let Some(since) = unhealthy.since.take() {
            unhealthy.before += since.elapsed();
        }
        self.healthy.store(true, Ordering::Release);
        crate::trace::coherence_healthy(self.namespace());
    }

    fn turn_unhealthy(&self) {
        self.healthy.store(false, Ordering::Release);
        self.unhealthy.lock().since.get_or_insert_with(Instant::now);
    }
}

/// Leaves the handle unhealthy and flushed when the supervisor ends, however it ends.
struct UnhealthyOnExit(Weak<Shared>);

impl Drop for UnhealthyOnExit {
    fn drop(&mut self) {
        if let Some(shared) = self.0.upgrade() {
            shared.become_unhealthy();
        }
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
