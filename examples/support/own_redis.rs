//! A `redis-server` of a program's own (the `replicas` example, the `coherence` bench), on a
//! free loopback port with nothing saved, killed when dropped.

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub(crate) struct OwnRedis {
    child: Child,
    port: u16,
}

impl OwnRedis {
    /// Starts one and waits until it answers; says what to install if it cannot.
    pub(crate) fn start() -> Result<Self, Box<dyn std::error::Error>> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|error| {
                format!(
                    "REDIS_URL is not set and redis-server cannot be started ({error}): \
                     install Redis (Debian: apt-get install redis-server) or set REDIS_URL"
                )
            })?;
        let server = Self { child, port };
        let started = Instant::now();
        while redis::Client::open(server.url())?.get_connection().is_err() {
            if started.elapsed() > Duration::from_secs(10) {
                return Err("redis-server did not answer in 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(server)
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
