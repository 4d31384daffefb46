//! The HTTP client that posts deliveries: HTTP/1.1 over plain TCP or
//! rustls, certificates verified against the system's CA certificates (or
//! an operator's file), one deadline for the whole exchange, no redirects.

use std::error::Error as StdError;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, USER_AGENT};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use crm::store::webhooks::AttemptResult;

/// How much of an answer's body is read (and dropped) so the connection
/// can serve the next delivery.
const BODY_LIMIT: usize = 64 * 1024;

/// Posts JSON to endpoints.
#[derive(Clone)]
pub struct WebhookClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    /// Why https cannot be verified, when no CA certificate could be read.
    no_roots: Option<String>,
}

impl WebhookClient {
    /// Builds a client that gives each exchange `timeout`, trusting the CA
    /// certificates of `ca_file` when given, else the system's.
    pub fn new(timeout: Duration, ca_file: Option<&Path>) -> Result<Self, String> {
        let (roots, no_roots) = match ca_file {
            Some(path) => (roots_from(path)?, None),
            None => system_roots(),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS set-up failed: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(8)
            .build(connector);
        Ok(WebhookClient {
            client,
            timeout,
            no_roots,
        })
    }

    /// Posts `body` to `url` with `headers`; a 2xx answer within the
    /// deadline is a delivery, anything else a failure that says why.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: Vec<u8>,
    ) -> AttemptResult {
        let failed = |status: Option<u16>, error: String| AttemptResult::Failed { status, error };
        let uri: Uri = match url.parse() {
            Ok(u) => u,
            Err(e) => return failed(None, format!("the URL cannot be used: {e}")),
        };
        if uri.scheme_str() == Some("https") {
            if let Some(why) = &self.no_roots {
                return failed(None, why.clone());
            }
        }
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("dialcrm/", env!("CARGO_PKG_VERSION")));
        for (name, value) in headers {
            match (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                (Ok(n), Ok(v)) => request = request.header(n, v),
                _ => return failed(None, format!("header {name} cannot be sent")),
            }
        }
        let request = match request.body(Full::new(Bytes::from(body))) {
            Ok(r) => r,
            Err(e) => return failed(None, format!("the request cannot be built: {e}")),
        };
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status();
            // Read what little the endpoint says, so the connection can be
            // kept; its content is never stored (it might echo the payload).
            let _ = Limited::new(response.into_body(), BODY_LIMIT)
                .collect()
                .await;
            Ok::<StatusCode, hyper_util::client::legacy::Error>(status)
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => failed(
                None,
                format!("no answer within {} s", self.timeout.as_secs_f64()),
            ),
            Ok(Err(e)) => failed(None, describe(&e)),
            Ok(Ok(status)) if status.is_success() => AttemptResult::Delivered {
                status: status.as_u16(),
            },
            Ok(Ok(status)) if status.is_redirection() => failed(
                Some(status.as_u16()),
                format!("HTTP {status}: redirects are not followed"),
            ),
            Ok(Ok(status)) => failed(Some(status.as_u16()), format!("HTTP {status}")),
        }
    }
}

/// Names what went wrong from an error and its causes, for the delivery log.
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut parts = Vec::new();
    let mut source: Option<&dyn StdError> = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    if parts.is_empty() {
        return e.to_string();
    }
    let what = if e.is_connect() {
        "cannot connect"
    } else {
        "the exchange failed"
    };
    format!("{what}: {}", parts.join(": "))
}

/// Reads the system's CA certificates; without any, https cannot be
/// verified and says so on each attempt.
fn system_roots() -> (RootCertStore, Option<String>) {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::debug!(%error, "a system CA certificate could not be read");
    }
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = "no system CA certificates found to verify https endpoints \
                   (install ca-certificates, or set webhooks.ca_file)";
        // Said in each https delivery's log; plain http endpoints still work.
        tracing::debug!("{why}");
        return (roots, Some(why.into()));
    }
    (roots, None)
}

/// Reads every CA certificate of a PEM file.
fn roots_from(path: &Path) -> Result<RootCertStore, String> {
    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read webhooks.ca_file {shown}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("webhooks.ca_file {shown} is not PEM: {e}"))?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!(
            "webhooks.ca_file {shown} holds no usable CA certificate"
        ));
    }
    Ok(roots)
}
