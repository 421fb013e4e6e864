//! An application with rustls's `aws_lc_rs` provider compiled in beside ttlcache's `ring`,
//! and none installed: a `rediss://` coherence still connects (ttlcache follows an installed
//! provider, and installs `ring`'s where there is none), against a real `redis-server` with
//! TLS.

#[allow(dead_code, reason = "the fault injection this test does not need")]
#[path = "../../coherence/server.rs"]
mod server;

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use server::RedisServer;
use ttlcache::{TtlCache, redis::Coherence};

#[test]
fn rediss_works_with_two_crypto_providers_compiled_in_and_none_installed() {
    assert!(
        rustls::crypto::CryptoProvider::get_default().is_none(),
        "the application installed none"
    );
    let mut server = RedisServer::not_started();
    let dir = server.path("");
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes"])
        .args(["-keyout", "server.key", "-out", "server.crt", "-days", "2"])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl is needed for the TLS test (apt-get install openssl)");
    assert!(status.success());
    let tls_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    server.launch_with(&[
        "--tls-port",
        &tls_port.to_string(),
        "--tls-cert-file",
        &path("server.crt"),
        "--tls-key-file",
        &path("server.key"),
        "--tls-ca-cert-file",
        &path("server.crt"),
        "--tls-auth-clients",
        "no",
    ]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // A self-signed certificate: `#insecure` skips the check, the handshake still runs.
        let url = format!("rediss://127.0.0.1:{tls_port}/#insecure");
        let connect = || async {
            Coherence::builder(&url, "app")
                .ping_every(Duration::from_millis(50))
                .lease(Duration::from_millis(1_500))
                .connect()
                .await
                .unwrap()
        };
        let (a, b) = (connect().await, connect().await);
        let give_up = Instant::now() + Duration::from_secs(10);
        while !(a.is_healthy() && b.is_healthy()) {
            assert!(Instant::now() < give_up, "never healthy: {:?}", a.health());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let cache = |coherence: &Coherence| {
            TtlCache::<u64, String>::builder()
                .coherent(coherence, "users")
                .build()
                .unwrap()
        };
        let (users_a, users_b) = (cache(&a), cache(&b));
        // Stored once served: a write made while the handle is not trusted is refused.
        while users_b.get(&1).is_none() {
            assert!(Instant::now() < give_up, "never stored");
            users_b.insert(1, "one".into());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        users_a.invalidate_everywhere(&1).await.unwrap();
        while users_b.get(&1).is_some() {
            assert!(Instant::now() < give_up, "the invalidation did not cross");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
}
