//! [`CoherenceBuilder`]: a [`Coherence`]'s settings, checked once at `connect`.

use std::{
    collections::HashMap,
    fmt,
    time::{Duration, Instant},
};

use redis::{Client, ConnectionInfo, IntoConnectionInfo};

use super::{
    Coherence, CoherenceError, CoherenceInner, Faults, Trust, Unhealthy, UnhealthyTime, marker,
    redact, supervisor,
};
use crate::sync::{self, AtomicU64, Mutex};

/// Settings for a [`Coherence`], made by [`Coherence::builder`].
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ttlcache::redis::CoherenceError> {
/// use std::time::Duration;
/// use ttlcache::redis::{Coherence, Unhealthy};
///
/// let coherence = Coherence::builder("redis://127.0.0.1:6379/", "myapp")
///     .ping_every(Duration::from_millis(250))
///     .lease(Duration::from_secs(1))
///     .when_unhealthy(Unhealthy::ServeLocal)
///     .connect()
///     .await?;
/// # drop(coherence);
/// # Ok(())
/// # }
/// ```
#[must_use]
pub struct CoherenceBuilder {
    pub(super) url: String,
    pub(super) namespace: String,
    pub(super) settings: CoherenceSettings,
    /// Certificates for `rediss://` (feature `redis-tls`).
    #[cfg(feature = "redis-tls")]
    pub(super) tls: Tls,
}

/// The certificates a `rediss://` connection is made with, where the system's are not the
/// ones: a private authority, a client certificate (mutual TLS).
#[cfg(feature = "redis-tls")]
#[derive(Default)]
pub(super) struct Tls {
    /// PEM: the authorities trusted instead of the system's.
    root: Option<Vec<u8>>,
    /// PEM: the client's certificate chain and key.
    client: Option<(Vec<u8>, Vec<u8>)>,
}

/// The longest `ping_every`: a period past it would overflow the timer's instants.
const LONGEST_PING: Duration = Duration::from_secs(24 * 60 * 60);

/// The settings the supervisor runs by.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CoherenceSettings {
    pub(crate) ping_every: Duration,
    pub(crate) lease: Duration,
    pub(crate) when_unhealthy: Unhealthy,
    pub(crate) max_backoff: Duration,
}

impl Default for CoherenceSettings {
    fn default() -> Self {
        Self {
            ping_every: Duration::from_millis(500),
            lease: Duration::from_secs(2),
            when_unhealthy: Unhealthy::Bypass,
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl CoherenceBuilder {
    /// How often the tracking connection is pinged; by default every 500 ms. It must be at
    /// most half the [`lease`](Self::lease), so that a ping answered late still renews trust
    /// before it ends. A zero is taken as a millisecond, and anything over a day as a day.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = ttlcache::redis::Coherence::builder("redis://127.0.0.1/", "app")
    ///     .ping_every(std::time::Duration::from_millis(100));
    /// # drop(builder);
    /// ```
    pub fn ping_every(mut self, ping_every: Duration) -> Self {
        self.settings.ping_every = ping_every.clamp(Duration::from_millis(1), LONGEST_PING);
        self
    }

    /// How long the handle trusts its members after the last credited ping (counted from when
    /// it was sent; a ping is credited once every push received before its answer has been
    /// applied); by default 2 s. Past it, members stop serving at once, where values are read,
    /// and the supervisor flushes them and reconnects: no replica serves a value invalidated
    /// elsewhere for longer, whatever the network, the runtime or a slow listener does. A
    /// zero is taken as a millisecond; a lease too long for an instant is "never expires".
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = ttlcache::redis::Coherence::builder("redis://127.0.0.1/", "app")
    ///     .lease(std::time::Duration::from_secs(1));
    /// # drop(builder);
    /// ```
    pub fn lease(mut self, lease: Duration) -> Self {
        self.settings.lease = lease.max(Duration::from_millis(1));
        self
    }

    /// What members do while the handle is unhealthy; by default [`Unhealthy::Bypass`].
    ///
    /// # Examples
    ///
    /// ```
    /// use ttlcache::redis::{Coherence, Unhealthy};
    ///
    /// let builder = Coherence::builder("redis://127.0.0.1/", "app")
    ///     .when_unhealthy(Unhealthy::ServeLocal);
    /// # drop(builder);
    /// ```
    pub fn when_unhealthy(mut self, when_unhealthy: Unhealthy) -> Self {
        self.settings.when_unhealthy = when_unhealthy;
        self
    }

    /// The longest wait between two reconnection attempts; by default 5 s. Waits start at
    /// 50 ms and double, each spread by up to a quarter either way.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = ttlcache::redis::Coherence::builder("redis://127.0.0.1/", "app")
    ///     .max_backoff(std::time::Duration::from_secs(1));
    /// # drop(builder);
    /// ```
    pub fn max_backoff(mut self, max_backoff: Duration) -> Self {
        self.settings.max_backoff = max_backoff.max(Duration::from_millis(1));
        self
    }

    /// Trusts the certificate authorities in `pem` (one or more PEM certificates) for a
    /// `rediss://` server, instead of the system's: a private authority, as managed Redis
    /// services and in-house ones use (feature `redis-tls`).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let coherence = ttlcache::redis::Coherence::builder("rediss://redis.internal:6380/", "app")
    ///     .tls_root_certificates(std::fs::read("/etc/redis/ca.crt")?)
    ///     .connect()
    ///     .await?;
    /// # drop(coherence);
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "redis-tls")]
    pub fn tls_root_certificates(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls.root = Some(pem.into());
        self
    }

    /// Presents `certificate` (a PEM chain) with its `key` (PEM) to a `rediss://` server that
    /// asks for one: mutual TLS (feature `redis-tls`).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let coherence = ttlcache::redis::Coherence::builder("rediss://redis.internal:6380/", "app")
    ///     .tls_root_certificates(std::fs::read("/etc/redis/ca.crt")?)
    ///     .tls_client_certificate(
    ///         std::fs::read("/etc/app/client.crt")?,
    ///         std::fs::read("/etc/app/client.key")?,
    ///     )
    ///     .connect()
    ///     .await?;
    /// # drop(coherence);
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "redis-tls")]
    pub fn tls_client_certificate(
        mut self,
        certificate: impl Into<Vec<u8>>,
        key: impl Into<Vec<u8>>,
    ) -> Self {
        self.tls.client = Some((certificate.into(), key.into()));
        self
    }

    /// Checks the URL, namespace and settings, and starts the supervisor on a thread and tokio
    /// runtime of the handle's own; returns at once, connected or not. It needs no runtime of
    /// the caller's.
    ///
    /// For a `rediss://` URL (feature `redis-tls`), rustls's process-wide crypto provider is
    /// the application's if it installed one, and ring's, installed here, if not: an
    /// application that wants another one (`aws_lc_rs`) installs it before it connects.
    ///
    /// # Errors
    ///
    /// As [`Coherence::connect`].
    ///
    /// # Cancel safety
    ///
    /// As [`Coherence::connect`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ttlcache::redis::{Coherence, CoherenceError};
    ///
    /// let error = Coherence::builder("mysql://db/", "app").connect().await.unwrap_err();
    /// assert!(matches!(error, CoherenceError::InvalidUrl { .. }));
    /// # }
    /// ```
    pub async fn connect(self) -> Result<Coherence, CoherenceError> {
        self.start()
    }

    /// What [`connect`](Self::connect) does: it awaits nothing.
    fn start(self) -> Result<Coherence, CoherenceError> {
        if self.namespace.is_empty()
            || self.namespace.contains(':')
            || self.namespace.chars().any(char::is_control)
        {
            return Err(CoherenceError::InvalidNamespace {
                namespace: self.namespace,
            });
        }
        let CoherenceSettings {
            ping_every, lease, ..
        } = self.settings;
        if ping_every > lease / 2 {
            return Err(CoherenceError::PingEveryTooLong { ping_every, lease });
        }
        let info = self.url.as_str().into_connection_info().map_err(|error| {
            CoherenceError::InvalidUrl {
                reason: format!("{:?}", error.kind()),
            }
        })?;
        let client = client(
            info.clone(),
            #[cfg(feature = "redis-tls")]
            &self.tls,
        )?;
        let no_thread = |error: std::io::Error| CoherenceError::NoBackgroundThread {
            reason: error.to_string(),
        };
        // Two workers: the supervisor's task runs member code (listeners, `Drop`), and one
        // that blocks delays neither the connection's own task nor marker writes, which the
        // other worker takes. Otherwise a push wakes the supervisor on the worker that read
        // it, with no hop between threads.
        let runtime = OwnRuntime(Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("ttlcache-coherence-io")
                .enable_all()
                .build()
                .map_err(no_thread)?,
        ));
        let stop = sync::Arc::new(tokio::sync::Notify::new());
        #[cfg(feature = "metrics")]
        static HANDLES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let inner = sync::Arc::new(CoherenceInner {
            prefix: marker::prefix(&self.namespace),
            namespace: self.namespace,
            settings: self.settings,
            trust: Trust::revoked(),
            info: info.clone(),
            faults: Mutex::new(Faults::default()),
            #[cfg(feature = "metrics")]
            id: HANDLES.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            runtime: runtime.get().handle().clone(),
            members: Mutex::new(HashMap::new()),
            registrations: AtomicU64::new(0),
            connection: Mutex::new(None),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            unhealthy: Mutex::new(UnhealthyTime {
                before: Duration::ZERO,
                since: Some(Instant::now()),
            }),
            stop: sync::Arc::clone(&stop),
        });
        // The thread lives as long as the supervisor: dropping the last handle aborts it, and
        // the runtime (the connection's own task with it) goes when the thread ends.
        let supervised = sync::Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("ttlcache-coherence".to_owned())
            .spawn({
                let subscriber = crate::trace::Inherited::here();
                move || {
                    subscriber.run(|| supervisor::keep(runtime.get(), &supervised, &stop, &client));
                }
            })
            .map_err(no_thread)?;
        let coherence = Coherence { inner };
        #[cfg(feature = "metrics")]
        coherence.report_metrics();
        Ok(coherence)
    }
}

/// The client the supervisor connects with: RESP3 whatever the URL said (pushes need it), and
/// for `rediss://`, the builder's certificates and a crypto provider rustls need not guess.
fn client(
    info: ConnectionInfo,
    #[cfg(feature = "redis-tls")] tls: &Tls,
) -> Result<Client, CoherenceError> {
    let redis = info
        .redis_settings()
        .clone()
        .set_protocol(redis::ProtocolVersion::RESP3);
    let info = info.set_redis_settings(redis);
    #[cfg(feature = "redis-tls")]
    if matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. }) {
        choose_crypto_provider();
        if tls.root.is_some() || tls.client.is_some() {
            check_pem(tls)?;
            let certificates = redis::TlsCertificates {
                client_tls: tls
                    .client
                    .as_ref()
                    .map(|(certificate, key)| redis::ClientTlsConfig {
                        client_cert: certificate.clone(),
                        client_key: key.clone(),
                    }),
                root_cert: tls.root.clone(),
            };
            return Client::build_with_tls(info, certificates).map_err(|error| {
                CoherenceError::InvalidTls {
                    reason: error.to_string(),
                }
            });
        }
    }
    #[cfg(feature = "redis-tls")]
    if tls.root.is_some() || tls.client.is_some() {
        return Err(CoherenceError::InvalidTls {
            reason: "certificates were given for a URL that is not rediss://".to_owned(),
        });
    }
    Client::open(info).map_err(|error| CoherenceError::InvalidUrl {
        reason: format!("{:?}", error.kind()),
    })
}

/// Refuses PEM that holds no certificate (redis-rs would take it as an empty trust store, and
/// every connection would fail later, with a less telling reason).
#[cfg(feature = "redis-tls")]
fn check_pem(tls: &Tls) -> Result<(), CoherenceError> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let holds_certificates = |pem: &[u8]| {
        let mut certificates = CertificateDer::pem_slice_iter(pem);
        matches!(certificates.next(), Some(Ok(_))) && certificates.all(|one| one.is_ok())
    };
    let roots = tls.root.as_deref().is_none_or(holds_certificates);
    let client = tls
        .client
        .as_ref()
        .is_none_or(|(certificate, _)| holds_certificates(certificate));
    match (roots, client) {
        (true, true) => Ok(()),
        (false, _) => Err(CoherenceError::InvalidTls {
            reason: "tls_root_certificates holds no PEM certificate".to_owned(),
        }),
        (_, false) => Err(CoherenceError::InvalidTls {
            reason: "tls_client_certificate holds no PEM certificate".to_owned(),
        }),
    }
}

/// Follows the application's process-wide rustls crypto provider if it installed one, and
/// installs ring's (this crate's choice) if not. rustls picks a provider by itself only when
/// exactly one is compiled in: with two (an application that enables `aws_lc_rs` beside this
/// crate's `ring`) and none installed, redis-rs's `ClientConfig::builder()` would panic. An
/// application that wants another provider installs it before its first `rediss://` connect.
#[cfg(feature = "redis-tls")]
fn choose_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may install one meanwhile: then that one is used, as it should be.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// A handle's runtime. Shut down without waiting when dropped, so that one dropped where it
/// was made (in `connect`, should its thread not start), inside the caller's runtime, does not
/// panic there.
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl OwnRuntime {
    fn get(&self) -> &tokio::runtime::Runtime {
        self.0.as_ref().expect("taken only when dropped")
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl fmt::Debug for CoherenceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoherenceBuilder")
            .field("url", &redact::url(&self.url))
            .field("namespace", &self.namespace)
            .field("settings", &self.settings)
            .finish()
    }
}
