//! A headless Firefox and a minimal WebDriver BiDi client for it.
//!
//! Firefox's own Remote Agent speaks BiDi on the port given by
//! `--remote-debugging-port`, so no geckodriver is needed: the client opens
//! `ws://…/session`, sends `session.new`, and from then on drives the
//! browsing context with `browsingContext.*` and `script.evaluate`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Preferences for a test machine without internet, with a fake microphone
/// and no prompts: the profile's `user.js`, read before the first window.
const PREFS: &[(&str, &str)] = &[
    // A fake microphone (Firefox's own tone), granted without asking.
    ("media.navigator.streams.fake", "true"),
    ("media.navigator.permission.disabled", "true"),
    // Remote audio plays without a click.
    ("media.autoplay.default", "0"),
    ("media.autoplay.blocking_policy", "0"),
    // The gateway listens on 127.0.0.1, so the browser must offer loopback
    // candidates. It gathers them (and plain addresses rather than mDNS
    // names) only for an origin allowed the microphone, as `start` grants.
    ("media.peerconnection.ice.loopback", "true"),
    ("media.peerconnection.ice.obfuscate_host_addresses", "false"),
    // Nothing reaches for the network behind the test's back.
    ("app.update.disabledForTesting", "true"),
    ("app.update.auto", "false"),
    ("media.gmp-manager.updateEnabled", "false"),
    ("browser.shell.checkDefaultBrowser", "false"),
    ("browser.startup.page", "0"),
    ("browser.startup.homepage_override.mstone", "\"ignore\""),
    ("startup.homepage_welcome_url", "\"about:blank\""),
    ("startup.homepage_welcome_url.additional", "\"\""),
    ("browser.aboutwelcome.enabled", "false"),
    ("browser.newtabpage.enabled", "false"),
    ("datareporting.policy.dataSubmissionEnabled", "false"),
    ("datareporting.healthreport.uploadEnabled", "false"),
    ("toolkit.telemetry.enabled", "false"),
    ("toolkit.telemetry.reportingpolicy.firstRun", "false"),
    ("browser.safebrowsing.malware.enabled", "false"),
    ("browser.safebrowsing.phishing.enabled", "false"),
    ("browser.safebrowsing.downloads.enabled", "false"),
    ("extensions.update.enabled", "false"),
    ("extensions.getAddons.cache.enabled", "false"),
    ("network.captive-portal-service.enabled", "false"),
    ("network.connectivity-service.enabled", "false"),
    ("network.dns.disableIPv6", "true"),
    ("network.proxy.type", "0"),
];

/// How long Firefox may take to start listening; a cold profile takes seconds.
const START_LIMIT: Duration = Duration::from_secs(30);

/// Returns the Firefox binary to drive, from `DIALCRM_FIREFOX` or the `PATH`.
pub(crate) fn find_firefox() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("DIALCRM_FIREFOX") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["firefox-esr", "firefox"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A running headless Firefox, killed when dropped.
pub(crate) struct Firefox {
    child: Child,
    /// The Remote Agent's websocket address, without the `/session` path.
    pub(crate) ws_url: String,
    /// The browser's version, as `firefox --version` prints it.
    pub(crate) version: String,
}

impl Firefox {
    /// Starts Firefox on a fresh profile in `profile`, with the test
    /// preferences, and the microphone allowed to `origin` for good.
    pub(crate) async fn start(binary: &Path, profile: &Path, origin: &str) -> Result<Firefox> {
        let version = Command::new(binary)
            .arg("--version")
            .output()
            .await
            .with_context(|| format!("running {} --version", binary.display()))?;
        let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
        let _ = std::fs::remove_dir_all(profile);
        std::fs::create_dir_all(profile).context("creating the Firefox profile")?;
        // A remembered "Allow" for the microphone, as an agent would give
        // once; without it Firefox offers only default-route candidates.
        let permissions = profile.join("permissions.txt");
        std::fs::write(&permissions, format!("origin\tmicrophone\t1\t{origin}\n"))
            .context("writing the permissions")?;
        let mut prefs: String = PREFS
            .iter()
            .map(|(name, value)| format!("user_pref(\"{name}\", {value});\n"))
            .collect();
        prefs.push_str(&format!(
            "user_pref(\"permissions.manager.defaultsUrl\", \"file://{}\");\n",
            permissions.display()
        ));
        std::fs::write(profile.join("user.js"), prefs).context("writing user.js")?;
        let mut child = Command::new(binary)
            .arg("--headless")
            .arg("--profile")
            .arg(profile)
            .args(["--remote-debugging-port", "0", "--no-remote", "about:blank"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stderr = child.stderr.take().context("taking Firefox's stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = Vec::new();
        let listening = async {
            loop {
                let Some(line) = lines.next_line().await? else {
                    bail!(
                        "Firefox exited before its Remote Agent listened:\n{}",
                        seen.join("\n")
                    );
                };
                if let Some(url) = line.strip_prefix("WebDriver BiDi listening on ") {
                    return Ok(url.trim().to_string());
                }
                seen.push(line);
            }
        };
        let ws_url = tokio::time::timeout(START_LIMIT, listening)
            .await
            .context("Firefox did not start its Remote Agent in time")??;
        // Keep draining stderr so Firefox never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Firefox {
            child,
            ws_url,
            version,
        })
    }

    /// Asks the browser to quit, then makes sure it has.
    pub(crate) async fn stop(mut self, bidi: &mut Bidi) {
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            bidi.call("browser.close", json!({})),
        )
        .await;
        let exited = tokio::time::timeout(Duration::from_secs(5), self.child.wait());
        if exited.await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

/// A WebDriver BiDi session on one browser.
pub(crate) struct Bidi {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Bidi {
    /// Connects to the Remote Agent and starts a session.
    pub(crate) async fn connect(ws_url: &str) -> Result<Bidi> {
        let url = format!("{}/session", ws_url.trim_end_matches('/'));
        let (ws, _) = tokio_tungstenite::connect_async(&url)
            .await
            .with_context(|| format!("connecting to {url}"))?;
        let mut bidi = Bidi { ws, next_id: 1 };
        bidi.call("session.new", json!({ "capabilities": {} }))
            .await?;
        Ok(bidi)
    }

    /// Returns the id of the first top-level browsing context (the start tab).
    pub(crate) async fn top_context(&mut self) -> Result<String> {
        let tree = self
            .call("browsingContext.getTree", json!({ "maxDepth": 0 }))
            .await?;
        tree["contexts"][0]["context"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("no browsing context in {tree}"))
    }

    /// Loads `url` in `context` and waits until its document has loaded.
    pub(crate) async fn navigate(&mut self, context: &str, url: &str) -> Result<()> {
        self.call(
            "browsingContext.navigate",
            json!({ "context": context, "url": url, "wait": "complete" }),
        )
        .await
        .with_context(|| format!("opening {url}"))?;
        Ok(())
    }

    /// Evaluates `expression` in the context's page, awaiting a promise, and returns its value as JSON.
    pub(crate) async fn evaluate(&mut self, context: &str, expression: &str) -> Result<Value> {
        let result = self
            .call(
                "script.evaluate",
                json!({
                    "expression": expression,
                    "target": { "context": context },
                    "awaitPromise": true,
                    "resultOwnership": "none",
                }),
            )
            .await?;
        match result["type"].as_str() {
            Some("success") => Ok(to_json(&result["result"])),
            Some("exception") => {
                let details = &result["exceptionDetails"];
                bail!(
                    "page script failed: {}",
                    details["text"].as_str().unwrap_or("(no message)")
                )
            }
            _ => bail!("unexpected script result: {result}"),
        }
    }

    /// Sends one command and returns its result, skipping events meanwhile.
    pub(crate) async fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let message = json!({ "id": id, "method": method, "params": params });
        self.ws.send(Message::text(message.to_string())).await?;
        while let Some(frame) = self.ws.next().await {
            let Message::Text(text) = frame? else {
                continue;
            };
            let reply: Value = serde_json::from_str(&text)?;
            if reply["id"] != json!(id) {
                continue;
            }
            if reply["type"] == "error" {
                bail!(
                    "{method} failed: {}: {}",
                    reply["error"].as_str().unwrap_or("error"),
                    reply["message"].as_str().unwrap_or_default()
                );
            }
            return Ok(reply["result"].clone());
        }
        bail!("the Remote Agent closed while waiting for {method}")
    }
}

/// Turns a BiDi remote value into plain JSON; what JSON cannot hold becomes null.
fn to_json(remote: &Value) -> Value {
    let value = &remote["value"];
    match remote["type"].as_str() {
        Some("string" | "boolean") => value.clone(),
        // Finite numbers arrive as numbers; NaN, -0 and the infinities as strings.
        Some("number") if value.is_number() => value.clone(),
        Some("array") => Value::Array(
            value
                .as_array()
                .map(|items| items.iter().map(to_json).collect())
                .unwrap_or_default(),
        ),
        Some("object") => {
            let mut object = Map::new();
            for pair in value.as_array().into_iter().flatten() {
                let key = match &pair[0] {
                    Value::String(key) => key.clone(),
                    other => to_json(other).to_string(),
                };
                object.insert(key, to_json(&pair[1]));
            }
            Value::Object(object)
        }
        _ => Value::Null,
    }
}
