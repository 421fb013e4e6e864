//! Faults: the signs that invalidations may have been lost, as the supervisor tells them apart
//! and as [`Health`](super::Health) shows them.

use std::fmt;

/// Why tracking ended, could not start, or was interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fault {
    ConnectFailed,
    TrackingRefused,
    ProbeNotWritten,
    /// The probe's push did not arrive within half the lease: pushes do not reach this handle.
    ProbeUnheard,
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
    /// The supervisor itself panicked (in redis-rs or rustls, say): it starts again.
    SupervisorPanicked,
}

impl Fault {
    /// Whether the connection itself is in doubt. The others lose nothing on it: they are
    /// handled on the same connection, by one flush.
    pub(super) fn ends_the_connection(self) -> bool {
        !matches!(
            self,
            Self::RedirBroken
                | Self::FlushAll
                | Self::Undecodable
                | Self::UnknownPush
                | Self::MemberPanicked
        )
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ConnectFailed => "could not connect to Redis",
            Self::TrackingRefused => "Redis refused CLIENT TRACKING",
            Self::ProbeNotWritten => "could not write the probe marker",
            Self::ProbeUnheard => {
                "the probe marker's invalidation did not arrive within half the lease: the server \
                 (or a proxy) sends no tracking pushes, or an ACL filters them"
            }
            Self::Closed => "the tracking connection closed",
            Self::LeaseExpired => "no ping was credited within the lease",
            Self::PingFailed => "a ping failed",
            Self::Overflowed => "more invalidations came than could be queued: some were dropped",
            Self::RedirBroken => "tracking-redir-broken",
            Self::FlushAll => "the server flushed everything (FLUSHALL or FLUSHDB)",
            Self::Undecodable => "a marker that no member could decode",
            Self::UnknownPush => "a push of an unknown shape",
            Self::MemberPanicked => "a member panicked while removing a key",
            Self::SupervisorPanicked => "the supervisor panicked; it starts again in a second",
        })
    }
}

/// A fault, with the error that came with it, if any.
pub(super) struct Trouble {
    pub(super) fault: Fault,
    pub(super) error: Option<redis::RedisError>,
}

impl From<Fault> for Trouble {
    fn from(fault: Fault) -> Self {
        Self { fault, error: None }
    }
}

#[cfg(all(test, not(ttlcache_loom)))]
mod tests {
    use super::*;

    #[test]
    fn every_fault_reads_as_a_reason() {
        assert!(Fault::ProbeUnheard.to_string().contains("pushes"));
        assert!(Fault::LeaseExpired.ends_the_connection());
        assert!(!Fault::Undecodable.ends_the_connection());
    }
}
