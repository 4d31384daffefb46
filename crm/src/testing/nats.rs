//! A NATS server of a test's own: `nats-server -js` on a free port with
//! its store in a fresh folder, which the test may kill and start again.
//!
//! In CI (`CI=true`) a missing `nats-server` fails the test; elsewhere the
//! test skips with a loud message.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// A running `nats-server` with JetStream on, for one test.
pub struct TestNats {
    /// The URL nodes are given.
    pub url: String,
    port: u16,
    dir: PathBuf,
    binary: PathBuf,
    child: Option<Child>,
}

impl TestNats {
    /// Starts a server; `None` only when `nats-server` is missing outside CI.
    pub async fn start() -> Option<TestNats> {
        let Some(binary) = find_binary() else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but nats-server is not installed (scripts/install-deps)");
            }
            eprintln!(
                "\n!!!!! SKIPPING this NATS test: nats-server is not installed \
                 (scripts/install-deps installs it). CI runs it for real. !!!!!\n"
            );
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("dialcrm-nats-{}", super::unique_suffix()));
        std::fs::create_dir_all(&dir).expect("the temporary folder is writable");
        let mut nats = TestNats {
            url: format!("nats://127.0.0.1:{port}"),
            port,
            dir,
            binary,
            child: None,
        };
        nats.run().await;
        Some(nats)
    }

    /// Kills the server at once, as a crash would.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts the server again on the same port and store.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.run().await;
    }

    async fn run(&mut self) {
        let child = Command::new(&self.binary)
            .args(["-js", "-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("-sd")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "nats-server did not listen on port {} within 10 s",
            self.port
        );
    }
}

impl Drop for TestNats {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `nats-server` on the PATH, or where Debian puts it.
fn find_binary() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/bin")])
        .map(|dir| dir.join("nats-server"))
        .find(|path| path.is_file())
}
