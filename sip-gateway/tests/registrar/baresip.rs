//! Debian's baresip as an agent's desk phone, registering with the gateway over UDP.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use sip_gateway::gateway::Gateway;
use tokio::process::{Child, Command};

use super::phone::REALM;

/// A running baresip with one account; killed when dropped.
pub struct DeskBaresip {
    child: Child,
    /// Where it sends and receives SIP.
    pub sip: SocketAddr,
    dir: PathBuf,
}

impl DeskBaresip {
    /// Starts baresip registering as `user` with `password` through the gateway, in `dir`;
    /// `None` when baresip is missing outside CI.
    pub async fn start(
        dir: &Path,
        gw: &Gateway,
        (user, password): (&str, &str),
    ) -> Option<DeskBaresip> {
        let installed = Command::new("baresip")
            .arg("-h")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok();
        if !installed {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(!ci, "baresip is not installed and CI=true");
            eprintln!(
                "!!! SKIPPING baresip desk phone test: baresip is not installed \
                 (apt-get install baresip) !!!"
            );
            return None;
        }
        std::fs::create_dir_all(dir).unwrap();
        let sip = SocketAddr::from(([127, 0, 0, 1], super::free_port()));
        let config = format!(
            "poll_method epoll\n\
             sip_listen {sip}\n\
             module_path /usr/lib/baresip/modules\n\
             module g711.so\n\
             module_app account.so\n"
        );
        std::fs::write(dir.join("config"), config).unwrap();
        // The AOR names the realm's domain; requests go to the gateway as outbound proxy.
        let account = format!(
            "<sip:{user}@{REALM}>;auth_pass=\"{password}\";\
             outbound=\"sip:{};transport=udp\";regint=600\n",
            gw.sip_udp_addr()
        );
        std::fs::write(dir.join("accounts"), account).unwrap();
        let log = std::fs::File::create(dir.join("baresip.log")).unwrap();
        let child = Command::new("baresip")
            .arg("-f")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("baresip starts");
        Some(DeskBaresip {
            child,
            sip,
            dir: dir.to_path_buf(),
        })
    }

    /// Asks baresip to quit, as SIGTERM does: it unregisters first.
    pub async fn quit(&self) {
        let pid = self.child.id().expect("baresip is running");
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await
            .unwrap();
        assert!(status.success());
    }

    /// Returns what baresip logged, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("baresip.log")).unwrap_or_default()
    }
}
