//! Feature `tracing`: what the crate tells a `tracing` subscriber, and nothing without it.
//!
//! Rules:
//! 1. Nothing per hit. Events come from loads (each runs in a `load` span carrying the cache's
//!    name and, where it was asked for with [`CacheBuilder::trace_keys`], the key; a batch in a
//!    `batch_load` span with its number of keys), refreshes,
//!    timeouts, failures, panics in loaders and listeners, and coherence flushes.
//! 2. Levels: `debug` for what happens in normal work (a load finished, a refresh started),
//!    `info` for a coherence handle's tracking coming on, `warn` for a failure the caller sees
//!    as an error (a load failed or timed out, a flush because invalidations may have been
//!    lost), `error` for a panic in user code. A timeout or a loader's panic is told twice: by
//!    its own event, then by the `load failed` that every failed load ends with.
//! 3. Without the feature every item here is an empty inline function or a plain future, so
//!    call sites need no `cfg`.
//!
//! [`CacheBuilder::trace_keys`]: crate::CacheBuilder::trace_keys

use std::{fmt, future::Future, time::Duration};

/// How a cache's events show its keys: `K`'s `Debug`, where the builder was asked to.
pub(crate) type KeyFormat<K> = fn(&K, &mut fmt::Formatter<'_>) -> fmt::Result;

/// A key as events show it: by its `Debug`, or as `_` in a cache not asked to show keys.
pub(crate) struct ShownKey<'a, K>(pub(crate) &'a K, pub(crate) Option<KeyFormat<K>>);

impl<K> fmt::Debug for ShownKey<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(format) => format(self.0, f),
            None => f.write_str("_"),
        }
    }
}

/// The subscriber current where a background thread was started (a coherence's), for the
/// thread to report to as the code that started it would.
#[cfg(feature = "redis")]
pub(crate) struct Inherited {
    #[cfg(feature = "tracing")]
    dispatch: tracing::Dispatch,
}

#[cfg(feature = "redis")]
impl Inherited {
    /// The subscriber current here.
    pub(crate) fn here() -> Self {
        Self {
            #[cfg(feature = "tracing")]
            dispatch: tracing::dispatcher::get_default(Clone::clone),
        }
    }

    /// Runs `run` with the inherited subscriber as the thread's.
    pub(crate) fn run<R>(self, run: impl FnOnce() -> R) -> R {
        #[cfg(feature = "tracing")]
        return tracing::dispatcher::with_default(&self.dispatch, run);
        #[cfg(not(feature = "tracing"))]
        run()
    }
}

/// `future`, reporting to the subscriber current here wherever it is polled (a task spawned
/// on a coherence's own runtime).
#[cfg(feature = "redis")]
pub(crate) fn carried<F: Future>(future: F) -> impl Future<Output = F::Output> {
    #[cfg(feature = "tracing")]
    return tracing::instrument::WithSubscriber::with_current_subscriber(future);
    #[cfg(not(feature = "tracing"))]
    future
}

/// The span a load runs in.
#[derive(Clone)]
pub(crate) struct LoadSpan {
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

impl LoadSpan {
    /// A span for loading `key` into the cache called `cache`.
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    #[inline]
    pub(crate) fn new<K>(cache: Option<&str>, key: ShownKey<'_, K>) -> Self {
        Self {
            #[cfg(feature = "tracing")]
            span: tracing::debug_span!("load", cache = cache.unwrap_or(""), key = ?key),
        }
    }

    #[cfg(feature = "tokio")]
    /// A span for loading a batch of `keys` keys.
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    #[inline]
    pub(crate) fn batch(cache: Option<&str>, keys: usize) -> Self {
        Self {
            #[cfg(feature = "tracing")]
            span: tracing::debug_span!("batch_load", cache = cache.unwrap_or(""), keys),
        }
    }

    /// `load`, run inside the span.
    #[inline]
    pub(crate) fn wrap<F: Future>(self, load: F) -> impl Future<Output = F::Output> {
        #[cfg(feature = "tracing")]
        {
            tracing::Instrument::instrument(load, self.span)
        }
        #[cfg(not(feature = "tracing"))]
        {
            load
        }
    }
}

/// A load (in its span) finished, having taken `took`.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
#[inline]
pub(crate) fn load_finished(succeeded: bool, took: Duration) {
    #[cfg(feature = "tracing")]
    if succeeded {
        tracing::debug!(took_ms = took.as_secs_f64() * 1e3, "load finished");
    } else {
        tracing::warn!(took_ms = took.as_secs_f64() * 1e3, "load failed");
    }
}

#[cfg(feature = "tokio")]
/// A load (in its span) ran past `load_timeout`.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
#[inline]
pub(crate) fn load_timed_out(limit: Duration) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        load_timeout_ms = limit.as_secs_f64() * 1e3,
        "load timed out"
    );
}

#[cfg(feature = "tokio")]
/// A loader (in its load's span) panicked.
#[inline]
pub(crate) fn loader_panicked() {
    #[cfg(feature = "tracing")]
    tracing::error!("loader panicked");
}

#[cfg(feature = "tokio")]
/// A background reload of `key` started.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
#[inline]
pub(crate) fn refresh_started<K>(cache: Option<&str>, key: ShownKey<'_, K>) {
    #[cfg(feature = "tracing")]
    tracing::debug!(cache = cache.unwrap_or(""), key = ?key, "refresh started");
}

/// An `AsyncLazy`'s initializer produced a value.
#[inline]
pub(crate) fn lazy_loaded() {
    #[cfg(feature = "tracing")]
    tracing::debug!("lazy value loaded");
}

/// An `AsyncLazy`'s initializer failed, or panicked.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
#[inline]
pub(crate) fn lazy_failed(panicked: bool) {
    #[cfg(feature = "tracing")]
    if panicked {
        tracing::error!("lazy initializer panicked");
    } else {
        tracing::warn!("lazy load failed");
    }
}

/// A removal listener panicked `panics` times during one call.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
#[inline]
pub(crate) fn listener_panicked(cache: Option<&str>, panics: usize) {
    #[cfg(feature = "tracing")]
    tracing::error!(
        cache = cache.unwrap_or(""),
        panics,
        "eviction listener panicked"
    );
}

#[cfg(feature = "redis")]
/// A coherence handle flushed its `members`: invalidations may have been lost (`lost`), or
/// tracking came on and what was stored before it is dropped.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
#[inline]
pub(crate) fn coherence_flushed(namespace: &str, members: usize, lost: bool) {
    #[cfg(feature = "tracing")]
    if lost {
        tracing::warn!(namespace, members, "coherence lost: flushed every member");
    } else {
        tracing::info!(
            namespace,
            members,
            "coherence tracking on: flushed every member"
        );
    }
}

#[cfg(feature = "redis")]
/// A coherence handle saw a fault (`fault`, what it means), with Redis's or the connection's
/// error, its password already cut out.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
#[inline]
pub(crate) fn coherence_fault(namespace: &str, fault: &str, error: Option<&str>) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        namespace,
        fault,
        error = error.unwrap_or(""),
        "coherence fault"
    );
}

#[cfg(feature = "redis")]
/// A coherence handle turned healthy: invalidations reach its members again.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
#[inline]
pub(crate) fn coherence_healthy(namespace: &str) {
    #[cfg(feature = "tracing")]
    tracing::info!(namespace, "coherence healthy");
}
