//! A headless Chromium and a minimal Chrome DevTools Protocol client for it.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{anyhow, bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Returns the Chromium binary to drive, from `DIALCRM_CHROMIUM` or the `PATH`.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("DIALCRM_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A running headless Chromium, killed when dropped.
pub struct Chromium {
    child: Child,
    /// The browser-wide DevTools websocket URL.
    pub ws_url: String,
}

impl Chromium {
    /// Starts Chromium with a fresh profile in `profile` and `fake_mic` as its microphone.
    pub async fn start(binary: &Path, profile: &Path, fake_mic: &Path) -> Result<Chromium> {
        Self::start_with(binary, profile, fake_mic, &[]).await
    }

    /// Starts Chromium as [`Chromium::start`] does, with `flags` added.
    pub async fn start_with(
        binary: &Path,
        profile: &Path,
        fake_mic: &Path,
        flags: &[String],
    ) -> Result<Chromium> {
        let mut child = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                "--allow-loopback-in-peer-connection",
                "--autoplay-policy=no-user-gesture-required",
                "--remote-debugging-port=0",
            ])
            .arg(format!(
                "--use-file-for-fake-audio-capture={}",
                fake_mic.display()
            ))
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(flags)
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stderr = child.stderr.take().context("taking Chromium's stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = Vec::new();
        let ws_url = loop {
            let Some(line) = lines.next_line().await? else {
                bail!(
                    "Chromium exited before DevTools listened:\n{}",
                    seen.join("\n")
                );
            };
            if let Some(url) = line.strip_prefix("DevTools listening on ") {
                break url.trim().to_string();
            }
            seen.push(line);
        };
        // Keep draining stderr so Chromium never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Chromium { child, ws_url })
    }

    /// Asks the browser to quit, then makes sure it has.
    pub async fn stop(mut self, cdp: &mut Cdp) {
        let _ = cdp.call(None, "Browser.close", json!({})).await;
        let exited = tokio::time::timeout(std::time::Duration::from_secs(5), self.child.wait());
        if exited.await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

/// A DevTools connection with flattened target sessions.
pub struct Cdp {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Cdp {
    /// Connects to the browser-wide DevTools websocket.
    pub async fn connect(ws_url: &str) -> Result<Cdp> {
        let (ws, _) = tokio_tungstenite::connect_async(ws_url)
            .await
            .context("connecting to DevTools")?;
        Ok(Cdp { ws, next_id: 1 })
    }

    /// Opens `url` in a new tab, once it has loaded, and returns the session id that addresses it.
    pub async fn open_page(&mut self, url: &str) -> Result<String> {
        let target = self
            .call(None, "Target.createTarget", json!({ "url": "about:blank" }))
            .await?;
        let target_id = target["targetId"].clone();
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
            )
            .await?;
        let session = attached["sessionId"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("no session id in {attached}"))?;
        // Page.navigate answers once the new document is committed, so scripts
        // evaluated after it run in the page, not in the blank one before it.
        let navigated = self
            .call(Some(&session), "Page.navigate", json!({ "url": url }))
            .await?;
        if let Some(error) = navigated.get("errorText") {
            bail!("opening {url} failed: {error}");
        }
        let loaded = "new Promise((r) => document.readyState === 'complete' ? r(location.href) \
                      : addEventListener('load', () => r(location.href)))";
        let href = self.evaluate(&session, loaded).await?;
        if href.as_str() != Some(url) {
            bail!("the page is at {href}, not {url}");
        }
        Ok(session)
    }

    /// Evaluates `expression` in the page, awaiting a promise, and returns its value.
    pub async fn evaluate(&mut self, session: &str, expression: &str) -> Result<Value> {
        let params = json!({
            "expression": expression,
            "awaitPromise": true,
            "returnByValue": true,
        });
        let result = self.call(Some(session), "Runtime.evaluate", params).await?;
        if let Some(details) = result.get("exceptionDetails") {
            bail!("page script failed: {details}");
        }
        Ok(result["result"]["value"].clone())
    }

    /// Sends one command and returns its result, skipping events meanwhile.
    pub async fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.ws.send(Message::text(message.to_string())).await?;
        while let Some(frame) = self.ws.next().await {
            let Message::Text(text) = frame? else {
                continue;
            };
            let reply: Value = serde_json::from_str(&text)?;
            if reply["id"] != json!(id) {
                continue;
            }
            if let Some(error) = reply.get("error") {
                bail!("{method} failed: {error}");
            }
            return Ok(reply["result"].clone());
        }
        bail!("DevTools closed while waiting for {method}")
    }
}
