//! The supervisor: one task per [`Coherence`](super::Coherence), on the handle's own runtime
//! (two workers, beside the connection's task, pings and marker writes), that keeps its
//! tracking connection, hands invalidations to the members, and grants and revokes the
//! handle's trust (`trust.rs`).
//!
//! States and transitions:
//!
//! | state | what holds | leaves for |
//! |---|---|---|
//! | Connecting | unhealthy (members were flushed when it was entered from Tracking) | Probing, once `CLIENT TRACKING ON BCAST PREFIX` is acknowledged; Backoff on any error |
//! | Probing | unhealthy; the probe marker written | Tracking, once its push arrives; Backoff if it does not within half the lease (5 s at most) |
//! | Backoff | unhealthy; a wait of 50 ms doubling to `max_backoff`, spread by a quarter | Connecting |
//! | Tracking | members flushed once more, then trusted until the lease after each credited ping | Backoff (through a flush) on any fault that ends the connection |
//!
//! The wait starts again from 50 ms only after a connection stayed up for a lease: a server
//! that accepts connections and drops them at once (a reconnect storm) sees attempts slow
//! down as it would if it refused them.
//!
//! Faults, each a sign that invalidations may have been lost. Those that put the connection
//! in doubt end it (Tracking → Backoff): it closes (noticed at once, from redis-rs's
//! disconnection push or the push queue closing; a server restart is this), trust ends (no
//! ping credited within the lease), a ping fails, or more pushes come than the queue holds
//! (by count or by bytes). The others lose nothing on the connection and are handled on it:
//! FLUSHALL's null invalidation, `tracking-redir-broken`, a push of an unknown shape, a
//! marker that no member can decode, a member that panics while it removes a key. For those,
//! trust is revoked, pushes are taken in until none has brought such a fault for 20 ms (at
//! most 250 ms, or a quarter of the lease), and one flush covers them all; trust then returns
//! as the last credited ping left it. A burst of a thousand bad markers is one flush, or one
//! per 250 ms of it.
//!
//! Members (their listeners, their keys' and values' `Drop`) run on this task: a panic there
//! is caught, and a listener that blocks delays invalidations and trust's renewal, never
//! trust's end; marker writes and the connection's own task go on on the other worker.
//!
//! Rules:
//! 1. Trust is granted only in Tracking, after the flush that follows the probe, and revoked
//!    before the flush that follows a fault: a member that serves while trusted has been
//!    flushed since tracking came on (and a member registered during that flush is flushed
//!    too before trust is granted).
//! 2. The connection is published for writers (markers) only while Tracking.
//! 3. Pushes are handled in the order Redis sent them. Redis answers a ping after every push
//!    it queued before, and redis-rs hands those pushes to the queue before it hands over the
//!    answer; so the ping's task reads, once answered, how many pushes were queued, and the
//!    ping is credited (trust granted until the lease after it was sent) only once that many
//!    have been handed to the members. A ping answered while pushes wait earns nothing yet.
//! 4. No ping is credited once a push has been dropped for want of room (the queue
//!    overflowed): that is a fault, which revokes trust at once from the connection's task
//!    (while that connection is the current one) and is checked again after every grant.
//! 5. However the task ends, the handle is left unhealthy and flushed; one that panicked is
//!    started again ([`keep`]).
//! 6. A lease that passed is a fault (Tracking → Backoff), checked before every credit: a
//!    ping answered meanwhile does not renew it, and a lapse never heals unseen.

use std::{
    collections::VecDeque,
    panic::{AssertUnwindSafe, catch_unwind},
    time::{Duration, Instant},
};

use redis::{AsyncConnectionConfig, Client, PushInfo, PushKind, Value, aio::MultiplexedConnection};
use tokio::sync::mpsc;

use super::fault::{Fault, Trouble};
use super::{
    CoherenceInner, Member,
    backoff::Backoff,
    marker,
    queue::{PUSH_QUEUE, Queue, Retired, enqueue, size_of},
};
use crate::sync::{self, Ordering};

/// Keys handed to members between two yields, so that pings and the connection's own task
/// run while a large push is taken in.
const KEYS_PER_YIELD: usize = 64;

/// After a fault that loses nothing on the connection, how long without another before the
/// one flush that covers them ([`settle`]).
const QUIET: Duration = Duration::from_millis(20);

/// The longest a burst of such faults is taken in before its flush: a longer burst costs one
/// flush per this much of it.
const SETTLE_AT_MOST: Duration = Duration::from_millis(250);

/// The longest a connection attempt, the tracking command or the probe may take, whatever
/// the lease: a lease of an hour must not leave a replica waiting an hour to reconnect.
const LONGEST_WAIT: Duration = Duration::from_secs(10);

/// A tracking connection, its probe's push seen.
struct Tracking {
    connection: MultiplexedConnection,
    pushes: mpsc::Receiver<PushInfo>,
    queue: sync::Arc<Queue>,
    /// Retires the queue when tracking ends.
    _retired: Retired,
    /// Pushes taken from the queue so far.
    taken: u64,
    /// When `CLIENT TRACKING` was sent: trust counts from there (`trust.rs`, rule 1).
    asked_at: Instant,
}

/// How long after a supervisor panicked (in redis-rs, say) another is started.
const RESTART_AFTER: Duration = Duration::from_secs(1);

/// Runs the supervisor as a task of the handle's own runtime, from the calling thread (the
/// handle's, which only waits), until the handle is dropped (`stop` is told). A supervisor
/// that panics is a fault (the handle is left unhealthy and flushed, rule 5), and another is
/// started after [`RESTART_AFTER`].
pub(super) fn keep(
    runtime: &tokio::runtime::Runtime,
    inner: &sync::Weak<CoherenceInner>,
    stop: &tokio::sync::Notify,
    client: &Client,
) {
    runtime.block_on(async {
        loop {
            let mut task = tokio::spawn(crate::trace::carried(run(inner.clone(), client.clone())));
            let ended = tokio::select! {
                () = stop.notified() => {
                    task.abort();
                    return;
                }
                ended = &mut task => ended,
            };
            if !ended.is_err_and(|ended| ended.is_panic()) {
                return;
            }
            match inner.upgrade() {
                Some(strong) => strong.fault(&Fault::SupervisorPanicked.into()),
                None => return,
            }
            tokio::select! {
                () = stop.notified() => return,
                () = tokio::time::sleep(RESTART_AFTER) => {}
            }
        }
    });
}

/// Runs until the handle is dropped (then `keep` stops it, or it finds `inner` gone).
async fn run(inner: sync::Weak<CoherenceInner>, client: Client) {
    // However this task ends, the handle is left unhealthy and its members flushed, never
    // trusted with no one to hear invalidations.
    let _guard = UnhealthyOnExit(inner.clone());
    let mut backoff = Backoff::new();
    let mut connected_before = false;
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let settings = strong.settings;
        drop(strong);
        let outcome = track(&client, &inner, settings.lease).await;
        let Some(strong) = inner.upgrade() else {
            return;
        };
        match outcome {
            Ok(tracking) => {
                if connected_before {
                    strong.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                connected_before = true;
                strong.become_healthy(tracking.connection.clone(), tracking.asked_at);
                drop(strong);
                let tracked_since = Instant::now();
                let Some(trouble) = serve(&inner, tracking).await else {
                    return;
                };
                let Some(strong) = inner.upgrade() else {
                    return;
                };
                strong.become_unhealthy(Some(&trouble));
                drop(strong);
                if tracked_since.elapsed() >= settings.lease {
                    backoff.reset();
                }
            }
            Err(trouble) => {
                strong.fault(&trouble);
                drop(strong);
            }
        }
        tokio::time::sleep(backoff.next(settings.max_backoff)).await;
    }
}

/// Connects, with RESP3 and a push queue, turns tracking on and sees the probe's push.
async fn track(
    client: &Client,
    inner: &sync::Weak<CoherenceInner>,
    lease: Duration,
) -> Result<Tracking, Trouble> {
    let prefix = inner.upgrade().ok_or(Fault::Closed)?.prefix.clone();
    let wait = lease.min(LONGEST_WAIT);
    let (sender, mut pushes) = mpsc::channel(PUSH_QUEUE);
    let queue = sync::Arc::new(Queue::new(inner.clone()));
    let retired = Retired(sync::Arc::clone(&queue));
    let queued = sync::Arc::clone(&queue);
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(wait))
        .set_response_timeout(Some(wait))
        .set_push_sender(move |push: PushInfo| enqueue(&queued, &sender, push));
    let failed = |fault: Fault| {
        move |error| Trouble {
            fault,
            error: Some(error),
        }
    };
    let mut connection = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(failed(Fault::ConnectFailed))?;
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
        .map_err(failed(Fault::TrackingRefused))?;
    // The probe: a marker of this connection's own, whose push shows that pushes arrive.
    let nonce = probe_nonce();
    let probe = marker::of_probe(&prefix, &nonce);
    write_marker(&mut connection, &probe)
        .await
        .map_err(failed(Fault::ProbeNotWritten))?;
    // Pushes before the probe's are dropped: the flush that follows covers their keys. Half
    // the lease at most: trust counts from `asked_at`, and the first ping must renew it.
    let mut taken = 0;
    let heard = tokio::time::timeout(wait / 2, async {
        while let Some(push) = pushes.recv().await {
            taken += 1;
            queue.bytes.fetch_sub(size_of(&push), Ordering::Relaxed);
            match push.kind {
                PushKind::Disconnection => return false,
                PushKind::Invalidate if carries(&push, &prefix, &nonce) => return true,
                _ => {}
            }
        }
        false
    })
    .await;
    if queue.has_overflowed() {
        return Err(Fault::Overflowed.into());
    }
    match heard {
        Ok(true) => Ok(Tracking {
            connection,
            pushes,
            queue,
            _retired: retired,
            taken,
            asked_at,
        }),
        Ok(_) => Err(Fault::Closed.into()),
        Err(_) => Err(Fault::ProbeUnheard.into()),
    }
}

/// Whether an invalidation push names the probe of `nonce`.
fn carries(push: &PushInfo, prefix: &str, nonce: &str) -> bool {
    let Some(Value::Array(keys)) = push.data.first() else {
        return false;
    };
    keys.iter().any(|key| {
        matches!(key, Value::BulkString(key)
            if marker::parse(prefix, key) == Some(marker::Target::Probe(nonce.as_bytes())))
    })
}

/// A nonce no other probe of this or another process shares.
fn probe_nonce() -> String {
    use std::hash::BuildHasher;
    static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seed = std::hash::RandomState::new().hash_one(Instant::now());
    format!(
        "probe:{}:{}:{seed:016x}",
        std::process::id(),
        PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// Writes `marker` and deletes it in one transaction: both writes invalidate, and no key
/// is left behind in Redis.
pub(super) async fn write_marker(
    connection: &mut MultiplexedConnection,
    marker: &[u8],
) -> redis::RedisResult<()> {
    redis::pipe()
        .atomic()
        .set(marker, 1)
        .ignore()
        .del(marker)
        .ignore()
        .query_async::<()>(connection)
        .await
}

/// `ttlcache:<namespace>`, in the bytes Redis accepts in a client name.
fn client_name(prefix: &str) -> String {
    let namespace = prefix.strip_suffix(marker::SEGMENT).unwrap_or(prefix);
    let name = format!("ttlcache:{namespace}");
    name.chars()
        .map(|c| if ('!'..='~').contains(&c) { c } else { '_' })
        .collect()
}

/// Tracking: hands pushes to the members, pings, and credits pings with trust, until a
/// fault that ends the connection (or the handle is gone: `None`).
async fn serve(inner: &sync::Weak<CoherenceInner>, tracking: Tracking) -> Option<Trouble> {
    let Tracking {
        connection,
        mut pushes,
        queue,
        _retired,
        mut taken,
        asked_at,
    } = tracking;
    let settings = inner.upgrade()?.settings;
    let mut ticks = tokio::time::interval(settings.ping_every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The evidence trust was last granted on (`trust.rs`, rule 1).
    let mut credited = asked_at;
    // Answered pings not yet credited: when each was sent, and the pushes to take first.
    let mut answered: VecDeque<(Instant, u64)> = VecDeque::new();
    let mut ping = Ping::default();
    loop {
        let strong = inner.upgrade()?;
        if let Some(fault) = doubt(&strong, &queue) {
            return Some(fault.into());
        }
        let trust_ends = strong.trust.ends();
        drop(strong);
        let fault = tokio::select! {
            () = queue.dropped.notified() => Some(Fault::Overflowed),
            push = pushes.recv() => match push {
                None => Some(Fault::Closed),
                Some(push) => {
                    taken += 1;
                    queue.bytes.fetch_sub(size_of(&push), Ordering::Relaxed);
                    hand_over(inner, push).await?.err()
                }
            },
            answer = ping.answer() => match answer {
                Some(credit) => {
                    answered.push_back(credit);
                    None
                }
                None => Some(Fault::PingFailed),
            },
            () = sleep_until(trust_ends) => Some(Fault::LeaseExpired),
            _ = ticks.tick(), if !ping.is_out() => {
                ping.send(&connection, &queue);
                None
            }
        };
        let fault = fault.or_else(|| queue.has_overflowed().then_some(Fault::Overflowed));
        match fault {
            None => {}
            Some(fault) if fault.ends_the_connection() => return Some(fault.into()),
            Some(fault) => {
                // Nothing lost on the connection: take in the rest of the burst, then one
                // flush covers it all, on the same connection, which stays published.
                let strong = inner.upgrade()?;
                strong.turn_unhealthy();
                strong.fault(&fault.into());
                drop(strong);
                let mut inbox = Inbox {
                    pushes: &mut pushes,
                    queue: &queue,
                    taken: &mut taken,
                };
                if let Some(trouble) = settle(inner, &mut inbox, settings.lease).await? {
                    return Some(trouble);
                }
                if queue.has_overflowed() {
                    return Some(Fault::Overflowed.into());
                }
                let strong = inner.upgrade()?;
                strong.flush_all(true);
                strong.turn_healthy(credited);
            }
        }
        if queue.has_overflowed() {
            return Some(Fault::Overflowed.into());
        }
        // Credit every answered ping whose pushes have all been handed over (rule 3), unless
        // the lease passed meanwhile (rule 6) or a push was dropped (rule 4), checked again
        // after the grant: the connection's task may drop one at any time.
        while let Some(&(sent, needed)) = answered.front() {
            if taken < needed {
                break;
            }
            let strong = inner.upgrade()?;
            if let Some(fault) = doubt(&strong, &queue) {
                return Some(fault.into());
            }
            answered.pop_front();
            credited = sent;
            strong.trust.grant(sent, settings.lease);
            if let Some(fault) = doubt(&strong, &queue) {
                return Some(fault.into());
            }
        }
    }
}

/// A dropped push (rule 4: trust is revoked on the way) or a lease that passed (rule 6, even
/// if a ping is about to be credited: a lapse never heals unseen), whatever else is going on.
fn doubt(inner: &CoherenceInner, queue: &Queue) -> Option<Fault> {
    if queue.has_overflowed() {
        inner.trust.revoke();
        return Some(Fault::Overflowed);
    }
    (!inner.trust.holds()).then_some(Fault::LeaseExpired)
}

/// The queue's receiving end, as [`settle`] takes pushes from it.
struct Inbox<'a> {
    pushes: &'a mut mpsc::Receiver<PushInfo>,
    queue: &'a Queue,
    taken: &'a mut u64,
}

/// Takes in the rest of a burst after a fault that loses nothing on the connection: pushes
/// until none has brought a fault for [`QUIET`], or for [`SETTLE_AT_MOST`] (a quarter of the
/// lease, if less) in all. Further faults of that kind cost nothing more: the one flush that
/// follows covers them. `Some(Some(_))` for a fault that ends the connection; `None` if the
/// handle is gone.
async fn settle(
    inner: &sync::Weak<CoherenceInner>,
    inbox: &mut Inbox<'_>,
    lease: Duration,
) -> Option<Option<Trouble>> {
    let settled = tokio::time::Instant::now() + SETTLE_AT_MOST.min(lease / 4);
    let mut quiet = tokio::time::Instant::now() + QUIET;
    loop {
        // Checked before the queue, which a steady stream would keep ready forever.
        let until = quiet.min(settled);
        if tokio::time::Instant::now() >= until {
            return Some(None);
        }
        let push = tokio::select! {
            biased;
            push = inbox.pushes.recv() => push,
            () = tokio::time::sleep_until(until) => return Some(None),
        };
        let Some(push) = push else {
            return Some(Some(Fault::Closed.into()));
        };
        *inbox.taken += 1;
        inbox
            .queue
            .bytes
            .fetch_sub(size_of(&push), Ordering::Relaxed);
        match hand_over(inner, push).await? {
            Err(fault) if fault.ends_the_connection() => return Some(Some(fault.into())),
            Err(_) => quiet = tokio::time::Instant::now() + QUIET,
            Ok(()) => {}
        }
        if inbox.queue.has_overflowed() {
            return Some(Some(Fault::Overflowed.into()));
        }
    }
}

/// Sleeps until `deadline`; forever for `None` (a lease that never ends).
async fn sleep_until(deadline: Option<Instant>) {
    let Some(deadline) = deadline else {
        return std::future::pending().await;
    };
    let now = Instant::now();
    let left = deadline.saturating_duration_since(now);
    // `Instant + Duration` can overflow where the lease is huge: a wait that long is forever.
    match tokio::time::Instant::now().checked_add(left) {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The ping in flight, if any: a task of its own, aborted when dropped so that it keeps no
/// connection alive after tracking ends.
#[derive(Default)]
struct Ping {
    out: Option<(Instant, tokio::task::JoinHandle<Option<u64>>)>,
}

impl Ping {
    fn is_out(&self) -> bool {
        self.out.is_some()
    }

    /// Sends a ping; once answered, its task reads how many pushes were queued (rule 3).
    fn send(&mut self, connection: &MultiplexedConnection, queue: &sync::Arc<Queue>) {
        let mut connection = connection.clone();
        let queue = sync::Arc::clone(queue);
        let answer = tokio::spawn(async move {
            redis::cmd("PING")
                .query_async::<()>(&mut connection)
                .await
                .ok()?;
            Some(queue.pushes.load(Ordering::Acquire))
        });
        self.out = Some((Instant::now(), answer));
    }

    /// When the ping in flight was sent and the pushes queued before its answer, once it is
    /// answered; `None` if it failed. Pending while no ping is out.
    async fn answer(&mut self) -> Option<(Instant, u64)> {
        let Some((sent, answer)) = &mut self.out else {
            return std::future::pending().await;
        };
        let queued = answer.await.ok().flatten();
        let sent = *sent;
        self.out = None;
        queued.map(|queued| (sent, queued))
    }
}

impl Drop for Ping {
    fn drop(&mut self) {
        if let Some((_, answer)) = &self.out {
            answer.abort();
        }
    }
}

/// Hands one push to the members, yielding every [`KEYS_PER_YIELD`] keys; `None` if the
/// handle is gone.
async fn hand_over(
    inner: &sync::Weak<CoherenceInner>,
    push: PushInfo,
) -> Option<Result<(), Fault>> {
    match push.kind {
        PushKind::Invalidate => {}
        PushKind::Disconnection => return Some(Err(Fault::Closed)),
        PushKind::Other(kind) if kind == "tracking-redir-broken" => {
            return Some(Err(Fault::RedirBroken));
        }
        // Replies to subscriptions this connection never makes: nothing to lose.
        _ => return Some(Ok(())),
    }
    // `invalidate` carries one array of keys, or a null for "everything" (FLUSHALL).
    let keys = match push.data.into_iter().next() {
        Some(Value::Array(keys)) => keys,
        Some(Value::Nil) => return Some(Err(Fault::FlushAll)),
        _ => return Some(Err(Fault::UnknownPush)),
    };
    let mut outcome = Ok(());
    // The members of the name last seen: a push of many keys of one cache looks them up once.
    let mut named: Option<(String, Vec<sync::Arc<dyn Member>>)> = None;
    for (index, key) in keys.into_iter().enumerate() {
        if index > 0 && index % KEYS_PER_YIELD == 0 {
            tokio::task::yield_now().await;
        }
        let inner = inner.upgrade()?;
        let Value::BulkString(key) = key else {
            outcome = Err(Fault::UnknownPush);
            continue;
        };
        match marker::parse(&inner.prefix, &key) {
            Some(marker::Target::Key(name, key)) => {
                for member in members_named(&inner, &mut named, name) {
                    // A listener or a key's `Drop` that panics must not end the supervisor.
                    match catch_unwind(AssertUnwindSafe(|| member.invalidate(key))) {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => outcome = Err(Fault::Undecodable),
                        Err(_) => outcome = Err(Fault::MemberPanicked),
                    }
                }
            }
            Some(marker::Target::All(name)) => {
                for member in members_named(&inner, &mut named, name) {
                    flush(&**member);
                }
            }
            // A probe (this handle's or another's) or no marker: nothing to invalidate.
            Some(marker::Target::Probe(_)) | None => continue,
        }
        inner.received.fetch_add(1, Ordering::Relaxed);
    }
    Some(outcome)
}

/// The members registered under `name`, looked up only when it is not the name `named`
/// holds.
fn members_named<'a>(
    inner: &CoherenceInner,
    named: &'a mut Option<(String, Vec<sync::Arc<dyn Member>>)>,
    name: &str,
) -> &'a [sync::Arc<dyn Member>] {
    if named.as_ref().is_none_or(|(last, _)| last != name) {
        *named = Some((name.to_owned(), inner.members_named(name)));
    }
    named
        .as_ref()
        .map_or(&[], |(_, members)| members.as_slice())
}

/// Flushes a member; a listener that panics stops neither the flush (its removals are all
/// made before listeners run) nor the supervisor.
fn flush(member: &dyn Member) {
    let _ = catch_unwind(AssertUnwindSafe(|| member.flush()));
}

impl CoherenceInner {
    /// The live members registered under `name`.
    fn members_named(&self, name: &str) -> Vec<sync::Arc<dyn Member>> {
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
                let all: Vec<sync::Arc<dyn Member>> = members.values().flatten().cloned().collect();
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

    /// Tracking is on and its probe heard: flush, then publish the connection and trust
    /// (rule 1), from `asked_at`.
    fn become_healthy(&self, connection: MultiplexedConnection, asked_at: Instant) {
        self.flush_all(false);
        *self.connection.lock() = Some(connection);
        self.turn_healthy(asked_at);
    }

    /// A fault that ends the connection (`trouble`, if known): revoke trust, record it,
    /// withdraw the connection, then flush (rule 1).
    fn become_unhealthy(&self, trouble: Option<&Trouble>) {
        self.turn_unhealthy();
        if let Some(trouble) = trouble {
            self.fault(trouble);
        }
        *self.connection.lock() = None;
        self.flush_all(true);
    }

    /// Trusts from `evidence` (`trust.rs`, rule 1), and ends the unhealthy stretch.
    fn turn_healthy(&self, evidence: Instant) {
        self.faults.lock().healed = true;
        {
            let mut unhealthy = self.unhealthy.lock();
            if let Some(since) = unhealthy.since.take() {
                unhealthy.before += since.elapsed();
            }
        }
        self.trust.grant(evidence, self.settings.lease);
        // Traced unlocked: a subscriber may ask for the handle's stats.
        crate::trace::coherence_healthy(self.namespace());
    }

    fn turn_unhealthy(&self) {
        self.trust.revoke();
        self.unhealthy.lock().since.get_or_insert_with(Instant::now);
    }
}

/// Leaves the handle unhealthy and flushed when the supervisor ends, however it ends.
struct UnhealthyOnExit(sync::Weak<CoherenceInner>);

impl Drop for UnhealthyOnExit {
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade() {
            inner.become_unhealthy(None);
        }
    }
}
