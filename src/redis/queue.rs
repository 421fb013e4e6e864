//! The push queue between a tracking connection and its supervisor: bounded by count and by
//! bytes, counted for the pings' credit (`supervisor.rs`, rule 3), and able to revoke trust
//! from the connection's own task when it must drop a push (`supervisor.rs`, rule 4).

use redis::{PushInfo, Value};
use tokio::sync::mpsc;

use super::CoherenceInner;
use crate::sync::{self, AtomicBool, AtomicU64, Ordering};

/// Pushes queued between the connection and the supervisor; past it, pushes are lost, and
/// the loss is a fault.
pub(super) const PUSH_QUEUE: usize = 1 << 16;

/// Bytes of keys queued between the connection and the supervisor; past it, as past
/// [`PUSH_QUEUE`].
const PUSH_QUEUE_BYTES: u64 = 16 << 20;

/// What the connection has queued for the supervisor, shared by the push sender (on the
/// connection's task), the pings and the supervisor.
pub(super) struct Queue {
    /// Pushes queued since the connection opened.
    pub(super) pushes: AtomicU64,
    /// Bytes of keys in the queue now.
    pub(super) bytes: AtomicU64,
    /// A push was dropped: invalidations were lost (`supervisor.rs`, rule 4).
    overflowed: AtomicBool,
    /// Told when a push is dropped, so that the supervisor acts at once.
    pub(super) dropped: tokio::sync::Notify,
    /// The handle, whose trust a dropped push revokes at once.
    inner: sync::Weak<CoherenceInner>,
    /// Whether this queue's connection is the handle's current one: cleared when its
    /// tracking ends ([`Retired`]), so that an old connection kept alive a while (a write in
    /// flight) revokes nothing of a newer one's trust.
    current: AtomicBool,
}

/// Clears [`Queue::current`] when dropped: when tracking on the queue's connection ends, or
/// never began.
pub(super) struct Retired(pub(super) sync::Arc<Queue>);

impl Drop for Retired {
    fn drop(&mut self) {
        self.0.current.store(false, Ordering::Release);
    }
}

impl Queue {
    pub(super) fn new(inner: sync::Weak<CoherenceInner>) -> Self {
        Self {
            pushes: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            overflowed: AtomicBool::new(false),
            dropped: tokio::sync::Notify::new(),
            inner,
            current: AtomicBool::new(true),
        }
    }

    /// A push was dropped: trust ends now (if this queue's connection is still the one
    /// trusted), and the supervisor is told.
    fn overflow(&self) {
        self.overflowed.store(true, Ordering::Release);
        if self.current.load(Ordering::Acquire)
            && let Some(inner) = self.inner.upgrade()
        {
            inner.trust.revoke();
        }
        self.dropped.notify_one();
    }

    pub(super) fn has_overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Acquire)
    }
}

/// Queues a push for the supervisor, counted; refused (and the queue marked overflowed)
/// past its count or bytes. Runs on the connection's task: it never blocks.
pub(super) fn enqueue(
    queue: &Queue,
    sender: &mpsc::Sender<PushInfo>,
    push: PushInfo,
) -> Result<(), mpsc::error::TrySendError<PushInfo>> {
    let size = size_of(&push);
    let full = queue.has_overflowed()
        || queue.bytes.load(Ordering::Relaxed).saturating_add(size) > PUSH_QUEUE_BYTES;
    if full {
        queue.overflow();
        return Err(mpsc::error::TrySendError::Full(push));
    }
    queue.bytes.fetch_add(size, Ordering::Relaxed);
    sender.try_send(push).inspect_err(|error| {
        queue.bytes.fetch_sub(size, Ordering::Relaxed);
        if matches!(error, mpsc::error::TrySendError::Full(_)) {
            queue.overflow();
        }
    })?;
    queue.pushes.fetch_add(1, Ordering::AcqRel);
    Ok(())
}

/// The bytes of keys a push carries, as the queue counts them.
pub(super) fn size_of(push: &PushInfo) -> u64 {
    fn size(value: &Value) -> u64 {
        match value {
            Value::BulkString(bytes) => bytes.len() as u64,
            Value::Array(values) => values.iter().map(size).sum(),
            _ => 0,
        }
    }
    push.data.iter().map(size).sum()
}
