//! The `rowcol` process under test: started on the run's database, killed
//! with SIGKILL, restarted; its people signed in.

use super::*;

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(300))
        .build()
        .expect("client")
}

pub(crate) struct Run {
    pub(crate) engine: Engine,
    pub(crate) bin: PathBuf,
    pub(crate) site: PathBuf,
    pub(crate) tmp: tempfile::TempDir,
    pub(crate) db_url: String,
    pub(crate) log: PathBuf,
    pub(crate) child: Option<Arc<Mutex<Child>>>,
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    /// The firm's admin: another person than the advisor, who completes
    /// payments waiting for a second approval (issue #16).
    pub(crate) admin: reqwest::Client,
    pub(crate) clients: Vec<String>,
    pub(crate) stats: Stats,
}

pub(crate) fn log_tail(path: &Path, n: usize) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    let from = lines.len().saturating_sub(n);
    format!(
        "----- last {n} lines of {} -----\n{}",
        path.display(),
        lines[from..].join("\n")
    )
}

impl Run {
    /// Start the binary on the run's database, on a free port (its output
    /// appended to the run's log); not waiting for it.
    pub(crate) fn spawn(&mut self) -> Arc<Mutex<Child>> {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().expect("addr").port()
        };
        let addr = format!("127.0.0.1:{port}");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut cmd = Command::new(&self.bin);
        cmd.arg("serve");
        scrub_env(&mut cmd);
        cmd.env("ROWCOL_ADDR", &addr)
            .env("LEPTOS_SITE_ADDR", &addr)
            .env("LEPTOS_SITE_ROOT", &self.site)
            .env("DATABASE_URL", &self.db_url)
            .env("ROWCOL_RAILS", "sandbox")
            .env("ROWCOL_DEMO_PASSWORD", support::PASSWORD)
            .env("ROWCOL_ENCRYPTION_KEY", KEY)
            .env("ROWCOL_RAMP_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("ROWCOL_PLAID_SECRET", PLAID_SECRET)
            .env("ROWCOL_SANDBOX_START", support::sandbox_start().to_string())
            .env(
                "ROWCOL_SANDBOX_CLIENTS",
                sandbox::world::TEST_CLIENTS.to_string(),
            )
            .env("ROWCOL_SANDBOX_LIVING", "false")
            .env("ROWCOL_WORKER", "true")
            .env("ROWCOL_DATA_DIR", self.tmp.path())
            .env(
                "RUST_LOG",
                std::env::var("CRASH_RUST_LOG").unwrap_or_else(|_| "info,sqlx=warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.bin.display()));
        self.base = format!("http://{addr}");
        let child = Arc::new(Mutex::new(child));
        self.child = Some(child.clone());
        child
    }

    /// Wait until `/readyz` answers 200. Err: the process exited first, or
    /// 120 s passed.
    pub(crate) async fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let probe = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        loop {
            if let Ok(r) = probe.get(format!("{}/readyz", self.base)).send().await {
                if r.status().as_u16() == 200 {
                    return Ok(());
                }
            }
            if let Some(c) = &self.child {
                if let Ok(Some(status)) = c.lock().expect("child").try_wait() {
                    return Err(format!("the server exited at start ({status})"));
                }
            }
            if Instant::now() > deadline {
                return Err("the server was not ready after 120 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Start and wait for readiness; a start that loses its port to another
    /// process (between our probe and its bind) is retried.
    pub(crate) async fn start(&mut self) {
        for _ in 0..5 {
            self.spawn();
            match self.wait_ready().await {
                Ok(()) => {
                    self.stats.restarts += 1;
                    return;
                }
                Err(e) => {
                    let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                    let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join("\n");
                    if tail.contains("Address already in use") {
                        continue;
                    }
                    panic!(
                        "[{}] restart failed after {} kills: {e}\n{}",
                        engine_name(self.engine),
                        self.stats.kills,
                        log_tail(&self.log, 60)
                    );
                }
            }
        }
        panic!("could not find a free port five times");
    }

    pub(crate) fn kill(&mut self) {
        if let Some(c) = self.child.take() {
            let mut c = c.lock().expect("child");
            let _ = c.kill(); // SIGKILL on Unix
            let _ = c.wait();
        }
    }

    /// Start the binary and SIGKILL it 5–400 ms later, ready or not.
    pub(crate) async fn kill_starting(&mut self, rng: &mut Prng) {
        let child = self.spawn();
        let after = Duration::from_millis(rng.between(5, 400));
        tokio::time::sleep(after).await;
        {
            let mut c = child.lock().expect("child");
            let _ = c.kill();
            let _ = c.wait();
        }
        self.child = None;
        self.stats.kills += 1;
        self.stats.kills_at_start += 1;
    }

    pub(crate) async fn sign_in(&mut self) {
        self.http = client();
        self.admin = client();
        'who: for (http, email) in [(&self.http, ADVISOR), (&self.admin, ADMIN)] {
            for _ in 0..20 {
                if let Ok(r) = http
                    .post(format!("{}/api/login", self.base))
                    .form(&[("email", email), ("password", support::PASSWORD)])
                    .send()
                    .await
                {
                    let s = r.status().as_u16();
                    if s == 200 || s == 302 {
                        continue 'who;
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            panic!("could not sign in {email}\n{}", log_tail(&self.log, 40));
        }
    }

    pub(crate) async fn load_clients(&mut self) {
        let body = post_json(&self.http, &format!("{}/api/portfolio", self.base), &[])
            .await
            .expect("portfolio");
        let mut ids: Vec<String> = body
            .as_array()
            .expect("portfolio array")
            .iter()
            .filter_map(|c| c["client_id"].as_str().map(str::to_owned))
            .collect();
        ids.sort();
        assert!(!ids.is_empty(), "no clients in the demo firm");
        self.clients = ids;
    }
}
