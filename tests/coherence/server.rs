//! A real `redis-server` of a test's own: started on a free loopback port with nothing saved,
//! stopped when dropped, with the faults the tests inject (a restart on the same port, a
//! freeze with SIGSTOP) and `redis-cli` for what another client would do.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub(crate) struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    /// Arguments of the test's own, given at every launch.
    extra: Vec<String>,
}

impl RedisServer {
    /// A server on a free port; panics with what to install if `redis-server` is missing.
    pub(crate) fn start() -> Self {
        let mut server = Self::not_started();
        server.launch();
        server
    }

    /// Starts the server with `extra` arguments too, now and at every later launch.
    pub(crate) fn launch_with(&mut self, extra: &[&str]) {
        self.extra = extra.iter().map(|arg| (*arg).to_owned()).collect();
        self.launch();
    }

    /// A server's address on a free port, with no server there yet (`launch` starts one).
    pub(crate) fn not_started() -> Self {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("ttlcache-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            child: None,
            port,
            dir,
            extra: Vec::new(),
        }
    }

    /// A path in the server's own directory (for a unix socket).
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    #[allow(dead_code, reason = "only the tests that put a proxy in front use it")]
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Starts the server (again) on its port and waits until it answers.
    pub(crate) fn launch(&mut self) {
        assert!(self.child.is_none(), "the server is running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--enable-debug-command", "yes"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot run redis-server ({error}): install Debian's package \
                     (apt-get install redis-server); .ci/run does"
                )
            });
        let pid = format!("process_id:{}", child.id());
        self.child = Some(child);
        // Until this server answers: not another test's on the same port, should one have
        // taken it meanwhile.
        let give_up = Instant::now() + Duration::from_secs(10);
        while !self
            .try_cli(&["INFO", "server"])
            .is_some_and(|info| info.lines().any(|line| line.trim() == pid))
        {
            let exited = self.child.as_mut().unwrap().try_wait().unwrap();
            assert!(exited.is_none(), "redis-server exited: {exited:?}");
            assert!(
                Instant::now() < give_up,
                "redis-server did not answer in 10 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the server and waits for it to exit.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered.
    pub(crate) fn freeze(&self) {
        self.signal("STOP");
    }

    /// Lets a frozen server go on (SIGCONT).
    pub(crate) fn thaw(&self) {
        self.signal("CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("the server is running").id();
        let status = Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Runs `redis-cli` against the server; its output, trimmed.
    pub(crate) fn cli(&self, args: &[&str]) -> String {
        self.try_cli(args)
            .unwrap_or_else(|| panic!("redis-cli {args:?} failed"))
    }

    /// Runs `redis-cli` as an ACL user.
    pub(crate) fn cli_as(&self, user: &str, password: &str, args: &[&str]) -> String {
        let mut with_user = vec!["--user", user, "--pass", password, "--no-auth-warning"];
        with_user.extend_from_slice(args);
        self.cli(&with_user)
    }

    /// Runs `redis-cli` from a thread of its own, for a command that blocks the server
    /// (`DEBUG SLEEP`).
    pub(crate) fn cli_in_background(&self, args: &[&str]) {
        let port = self.port.to_string();
        let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        std::thread::spawn(move || {
            let _ = Command::new("redis-cli")
                .args(["-h", "127.0.0.1", "-p", &port])
                .args(&args)
                .output();
        });
    }

    fn try_cli(&self, args: &[&str]) -> Option<String> {
        let output = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        (output.status.success() && !text.starts_with("Could not connect")).then_some(text)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A test that failed while the server was frozen: thaw it, then kill it.
            let _ = Command::new("kill")
                .args(["-CONT".to_owned(), child.id().to_string()])
                .status();
        }
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
