//! RowCol as a real process, for the tests that need one (three instances
//! on one database): the binary cargo built for this test run, on a free
//! port, its output in a log file, killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Nothing of the caller's RowCol or Leptos settings reaches the child.
pub fn scrub_env(cmd: &mut Command) {
    for (k, _) in std::env::vars() {
        if k.starts_with("ROWCOL_") || k.starts_with("LEPTOS_") || k == "DATABASE_URL" {
            cmd.env_remove(k);
        }
    }
}

/// The build stamp `bin` carries (`rowcol-build:<profile>:<16 hex>`), as
/// `serve` reports it when refusing a site without one (before it touches
/// any database: scripts/check-site-guard.sh relies on the same).
pub fn build_stamp(bin: &Path, dir: &Path) -> String {
    let probe = dir.join("probe-site");
    std::fs::create_dir_all(probe.join("pkg")).expect("probe site");
    std::fs::write(probe.join("pkg/rowcol.wasm"), b"\0asm no stamp\0").expect("probe wasm");
    let mut cmd = Command::new(bin);
    scrub_env(&mut cmd);
    let out = cmd
        .arg("serve")
        .env("LEPTOS_SITE_ROOT", &probe)
        .env("ROWCOL_ADDR", "127.0.0.1:0")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/probe.db", dir.display()),
        )
        .env("ROWCOL_DATA_DIR", dir)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.split("this binary is ")
        .nth(1)
        .and_then(|t| t.split(|c: char| c == '.' || c.is_whitespace()).next())
        .filter(|t| t.starts_with("rowcol-build:"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("{} did not name its build stamp:\n{text}", bin.display()))
}

/// A site holding only a wasm file with `stamp`: enough for `serve`'s
/// bundle check (these tests drive the API, not the pages).
pub fn stub_site(dir: &Path, stamp: &str) -> PathBuf {
    let site = dir.join("site");
    std::fs::create_dir_all(site.join("pkg")).expect("site dir");
    std::fs::write(
        site.join("pkg/rowcol.wasm"),
        format!("\0asm test stub {stamp}\0"),
    )
    .expect("stub wasm");
    site
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    l.local_addr().expect("addr").port()
}

/// A running `rowcol serve`; SIGKILLed when dropped.
pub struct Server {
    pub base: String,
    pub log: PathBuf,
    child: Child,
}

impl Server {
    /// Start `bin` with `env` on a free port (its output in `log`) and wait
    /// until `/readyz` answers 200. A start that lost its port to another
    /// process between the probe and its bind is retried.
    pub async fn start(bin: &Path, site: &Path, env: &[(&str, String)], log: &Path) -> Server {
        for _ in 0..5 {
            if let Some(s) = Self::try_start(bin, site, env, log, free_port()).await {
                return s;
            }
        }
        panic!("no free port five times");
    }

    /// Start on `port` (known before the start: another process must be
    /// told this one's address). Panics if the port is taken.
    pub async fn start_at(
        bin: &Path,
        site: &Path,
        env: &[(&str, String)],
        log: &Path,
        port: u16,
    ) -> Server {
        Self::try_start(bin, site, env, log, port)
            .await
            .unwrap_or_else(|| panic!("port {port} was taken"))
    }

    /// None: the port was taken. Any other failure to start panics with
    /// the end of the server's log.
    async fn try_start(
        bin: &Path,
        site: &Path,
        env: &[(&str, String)],
        log: &Path,
        port: u16,
    ) -> Option<Server> {
        {
            let addr = format!("127.0.0.1:{port}");
            let out = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .expect("log file");
            let mut cmd = Command::new(bin);
            cmd.arg("serve");
            scrub_env(&mut cmd);
            cmd.env("ROWCOL_ADDR", &addr)
                .env("LEPTOS_SITE_ADDR", &addr)
                .env("LEPTOS_SITE_ROOT", site)
                .env("RUST_LOG", "info,sqlx=warn");
            for (k, v) in env {
                cmd.env(k, v);
            }
            let child = cmd
                .stdin(Stdio::null())
                .stdout(out.try_clone().expect("log"))
                .stderr(out)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
            let mut server = Server {
                base: format!("http://{addr}"),
                log: log.to_path_buf(),
                child,
            };
            match server.ready().await {
                Ok(()) => Some(server),
                Err(e) => {
                    let text = std::fs::read_to_string(log).unwrap_or_default();
                    if text.contains("Address already in use") {
                        return None;
                    }
                    panic!("{e}\n{}", tail(&text, 40));
                }
            }
        }
    }

    async fn ready(&mut self) -> Result<(), String> {
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
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("the server exited at start ({status})"));
            }
            if Instant::now() > deadline {
                return Err("the server was not ready after 120 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        tail(&std::fs::read_to_string(&self.log).unwrap_or_default(), n)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
