//! A coherence handle's report to the `metrics` facade (feature `metrics`; the sink, and the
//! table of every metric, are in the crate's `metrics.rs`).

use ::metrics::{counter, describe_counter, describe_gauge, gauge};

use super::{Coherence, CoherenceStats};
use crate::metrics::{Family, report_while_alive};

/// A coherence handle's metrics.
static COHERENCE: Family = Family {
    describe: describe_coherence,
};

impl Coherence {
    /// Has the process's metrics reporter report this handle for as long as one lives,
    /// labelled with its namespace.
    pub(crate) fn report_metrics(&self) {
        let namespace = self.inner.namespace().to_owned();
        report_while_alive(&COHERENCE, &self.inner, move |inner| {
            let coherence = Coherence { inner };
            report(
                &namespace,
                coherence.inner.id,
                &coherence.stats(),
                coherence.is_healthy(),
            );
        });
    }
}

fn describe_coherence() {
    describe_counter!(
        "ttlcache_coherence_sent_total",
        "Invalidations written to Redis"
    );
    describe_counter!(
        "ttlcache_coherence_received_total",
        "Invalidated keys received from Redis"
    );
    describe_counter!(
        "ttlcache_coherence_flushes_total",
        "Flushes of every member, because invalidations may have been lost"
    );
    describe_counter!(
        "ttlcache_coherence_reconnects_total",
        "Tracking connections re-established after the first"
    );
    describe_gauge!(
        "ttlcache_coherence_unhealthy_seconds",
        ::metrics::Unit::Seconds,
        "Time spent unhealthy, the current stretch included"
    );
    describe_gauge!(
        "ttlcache_coherence_healthy",
        "1 while invalidations reach the members, 0 otherwise"
    );
}

/// Reports a coherence handle's counts under `namespace = namespace` and `handle = id`, so
/// that two handles of one namespace in a process keep series of their own.
fn report(namespace: &str, id: u64, stats: &CoherenceStats, healthy: bool) {
    let labels = [
        ("namespace", namespace.to_owned()),
        ("handle", id.to_string()),
    ];
    counter!("ttlcache_coherence_sent_total", &labels).absolute(stats.sent);
    counter!("ttlcache_coherence_received_total", &labels).absolute(stats.received);
    counter!("ttlcache_coherence_flushes_total", &labels).absolute(stats.flushes);
    counter!("ttlcache_coherence_reconnects_total", &labels).absolute(stats.reconnects);
    gauge!("ttlcache_coherence_unhealthy_seconds", &labels).set(stats.time_unhealthy.as_secs_f64());
    gauge!("ttlcache_coherence_healthy", &labels).set(if healthy { 1.0 } else { 0.0 });
}
