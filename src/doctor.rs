//! `dialcrm doctor`: checks what a first installation gets wrong and
//! prints one line per check, `ok` or `FAIL`, with what to do about a
//! failure. It exits non-zero when any check failed. Run it before the
//! first start, or with the service stopped: it binds the ports the
//! service would.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use crate::{redact_url, Overrides, Settings};

/// How long a trunk has to answer each probe.
const TRUNK_LIMIT: Duration = Duration::from_secs(5);

/// Runs every check and prints the results; returns whether all passed.
pub async fn run(config: Option<&Path>, overrides: &Overrides) -> bool {
    let mut report = Report::default();
    let settings = match Settings::load(config, overrides) {
        Ok(s) => {
            let source = config.map_or("defaults".into(), |p| p.display().to_string());
            report.ok("configuration", &format!("read from {source}"));
            s
        }
        Err(e) => {
            report.fail("configuration", &format!("{e:#}"));
            return report.finish();
        }
    };
    database(&settings, &mut report).await;
    if let Some(url) = &settings.nats_url {
        let shown = crate::redact_nats_url(url.expose());
        match dashboard::stream::shared::SharedStream::check(url.expose()).await {
            Ok(detail) => report.ok("NATS", &format!("{shown}: {detail}")),
            Err(e) => report.fail("NATS", &format!("{shown}: {e}")),
        }
    }
    recordings(&settings.recordings_dir, &mut report);
    http_port(settings.http_addr, &mut report).await;
    tls(&settings, &mut report).await;
    let gateway = settings.gateway_config();
    sip_ports(&gateway, &mut report).await;
    rtp_ports(&gateway, &mut report).await;
    if let Some(ip) = gateway.advertised_ip {
        advertised(ip, &mut report).await;
    }
    if settings.trunks.is_empty() {
        report.ok(
            "trunks",
            "none configured: calls go to the built-in simulated carrier",
        );
    }
    for trunk in &settings.trunks {
        let what = format!("trunk {}", trunk.name);
        match sip_gateway::gateway::probe_trunk(&gateway, trunk, TRUNK_LIMIT).await {
            Err(e) => report.fail(&what, &e.to_string()),
            Ok(p) => {
                report.ok(
                    &what,
                    &format!("{} answers OPTIONS ({})", p.address, p.options),
                );
                match p.register {
                    Some(200..=299) => report.ok(&what, "accepts our credentials (REGISTER)"),
                    Some(status) => report.fail(
                        &what,
                        &format!("refused our REGISTER ({status}): check username and password"),
                    ),
                    None => {}
                }
            }
        }
    }
    report.finish()
}

#[derive(Default)]
struct Report {
    failed: usize,
}

impl Report {
    fn ok(&mut self, what: &str, detail: &str) {
        println!("ok    {what}: {detail}");
    }

    /// Something that works but could be better; not counted as a failure.
    fn note(&mut self, what: &str, detail: &str) {
        println!("note  {what}: {detail}");
    }

    fn fail(&mut self, what: &str, why: &str) {
        self.failed += 1;
        println!("FAIL  {what}: {why}");
    }

    fn finish(self) -> bool {
        match self.failed {
            0 => println!("all checks passed"),
            n => println!("{n} check(s) failed"),
        }
        self.failed == 0
    }
}

async fn database(settings: &Settings, report: &mut Report) {
    let url = settings.database_url.expose();
    let shown = redact_url(url);
    let store = match crm::Store::connect(url).await {
        Ok(store) => store,
        Err(e) => return report.fail("database", &format!("{shown}: {e}")),
    };
    match store.pending_migrations().await {
        Ok(pending) if pending.is_empty() => {
            report.ok("database", &format!("{shown} answers, migrations current"))
        }
        Ok(pending) => report.ok(
            "database",
            &format!(
                "{shown} answers; {} migration(s) to apply, which serve does at start",
                pending.len()
            ),
        ),
        Err(e) => report.fail("database", &format!("{shown}: {e}")),
    }
    store.close().await;
}

fn recordings(dir: &Path, report: &mut Report) {
    let probe = dir.join(".dialcrm-doctor");
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b"probe"))
        .and_then(|()| std::fs::remove_file(&probe));
    match written {
        Ok(()) => report.ok("recordings", &format!("{} is writable", dir.display())),
        Err(e) => report.fail(
            "recordings",
            &format!("{} is not writable: {e}", dir.display()),
        ),
    }
}

async fn http_port(addr: SocketAddr, report: &mut Report) {
    match tokio::net::TcpListener::bind(addr).await {
        Ok(_) => report.ok("http", &format!("{addr} is free")),
        Err(e) => report.fail(
            "http",
            &format!("{addr} cannot be bound ({e}); is dialcrm already running?"),
        ),
    }
}

/// A certificate this close to expiry fails the check.
const EXPIRY_MARGIN_DAYS: i64 = 14;

async fn tls(settings: &Settings, report: &mut Report) {
    use crate::tls::{cert, Source};
    let now = chrono::Utc::now();
    // The configuration loaded, so the source is valid.
    let Ok(source) = settings.tls.source() else {
        return;
    };
    let check_files =
        |report: &mut Report, file: &Path, key: &Path, names: &[String]| match cert::load_pair(
            file, key,
        ) {
            Err(e) => report.fail("tls", &e),
            Ok(loaded) => match cert::check(&loaded.facts, file, names, now) {
                Err(e) => report.fail("tls", &e),
                Ok(())
                    if loaded.facts.not_after - now
                        < chrono::Duration::days(EXPIRY_MARGIN_DAYS) =>
                {
                    report.fail(
                        "tls",
                        &format!(
                            "{} expires on {}: renew it now",
                            file.display(),
                            loaded.facts.not_after.format("%Y-%m-%d")
                        ),
                    )
                }
                Ok(()) => report.ok(
                    "tls",
                    &format!(
                        "{} matches its key, is for {} and is valid until {}",
                        file.display(),
                        loaded.facts.names_text(),
                        loaded.facts.not_after.format("%Y-%m-%d")
                    ),
                ),
            },
        };
    match source {
        None => report.ok(
            "tls",
            "off: browsers on other computers give the microphone only to HTTPS pages \
             (docs/deployment.md)",
        ),
        Some(Source::Files { cert, key }) => check_files(report, cert, key, &settings.tls.names),
        Some(Source::SelfSigned) => {
            let dir = settings.state_dir().join("dialcrm-tls");
            let file = dir.join("server.pem");
            if file.exists() {
                check_files(report, &file, &dir.join("server.key"), &settings.tls.names);
            } else {
                report.ok(
                    "tls",
                    &format!(
                        "a local authority and certificate are made at start in {}",
                        dir.display()
                    ),
                );
            }
        }
        Some(Source::Acme(acme)) => {
            let file = acme.cache_dir.join("cert.pem");
            if file.exists() {
                check_files(
                    report,
                    &file,
                    &acme.cache_dir.join("key.pem"),
                    &acme.domains,
                );
            }
            let port = settings.http_addr.port();
            if acme.directory == crate::tls::acme::LETS_ENCRYPT && port != 443 {
                report.ok(
                    "tls",
                    &format!(
                        "Let's Encrypt checks {} on port 443: forward 443 to port {port}, or serve on 443",
                        acme.domains.join(", ")
                    ),
                );
            } else {
                report.ok(
                    "tls",
                    &format!(
                        "certificates for {} come from {}",
                        acme.domains.join(", "),
                        acme.directory
                    ),
                );
            }
        }
    }
    if let Some(addr) = settings.tls.redirect_addr {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(_) => report.ok("http redirect", &format!("{addr} is free")),
            Err(e) => report.fail("http redirect", &format!("{addr} cannot be bound ({e})")),
        }
    }
}

async fn sip_ports(gateway: &sip_gateway::gateway::GatewayConfig, report: &mut Report) {
    match tokio::net::UdpSocket::bind(gateway.sip_udp).await {
        Ok(socket) => {
            report.ok("sip", &format!("udp {} is free", gateway.sip_udp));
            receive_buffer(&socket, report);
        }
        Err(e) => report.fail(
            "sip",
            &format!(
                "udp {} cannot be bound ({e}); is dialcrm or another SIP server running?",
                gateway.sip_udp
            ),
        ),
    }
    if let Some(tcp) = gateway.sip_tcp {
        match tokio::net::TcpListener::bind(tcp).await {
            Ok(_) => report.ok("sip", &format!("tcp {tcp} is free")),
            Err(e) => report.fail("sip", &format!("tcp {tcp} cannot be bound ({e})")),
        }
    }
}

/// Whether the kernel grants the SIP socket the receive buffer the gateway asks for.
fn receive_buffer(socket: &tokio::net::UdpSocket, report: &mut Report) {
    use sip_gateway::gateway::{widen_receive_buffer, SIP_RECEIVE_BUFFER};
    let wanted = SIP_RECEIVE_BUFFER / 1024;
    match widen_receive_buffer(socket) {
        Ok(granted) if granted >= SIP_RECEIVE_BUFFER => {
            report.ok("sip", &format!("udp receive buffer {} KiB", granted / 1024))
        }
        Ok(granted) => report.note(
            "sip",
            &format!(
                "udp receive buffer {} KiB of {wanted} KiB asked: a burst of datagrams may be \
                 dropped; raise net.core.rmem_max (docs/deployment.md, \"The ports\")",
                granted / 1024
            ),
        ),
        Err(e) => report.note("sip", &format!("udp receive buffer not widened ({e})")),
    }
}

async fn rtp_ports(gateway: &sip_gateway::gateway::GatewayConfig, report: &mut Report) {
    let (min, max) = (gateway.rtp_port_min, gateway.rtp_port_max);
    if min == 0 && max == 0 {
        return report.ok("rtp", "ports chosen by the system");
    }
    if min > max {
        return report.fail(
            "rtp",
            &format!("rtp_port_min {min} is above rtp_port_max {max}"),
        );
    }
    let ip = gateway.sip_udp.ip();
    for port in [min, max] {
        if let Err(e) = tokio::net::UdpSocket::bind(SocketAddr::new(ip, port)).await {
            return report.fail("rtp", &format!("udp port {port} cannot be bound ({e})"));
        }
    }
    report.ok("rtp", &format!("udp {min}-{max} on {ip} can be bound"));
}

async fn advertised(ip: IpAddr, report: &mut Report) {
    if tokio::net::UdpSocket::bind(SocketAddr::new(ip, 0))
        .await
        .is_ok()
    {
        return report.ok(
            "advertised_ip",
            &format!("{ip} is an address of this machine"),
        );
    }
    if is_private(ip) {
        report.fail(
            "advertised_ip",
            &format!(
                "{ip} is not an address of this machine, and a private one cannot be a \
                 NAT's public address: trunks and browsers would not reach it"
            ),
        );
    } else {
        report.ok(
            "advertised_ip",
            &format!(
                "{ip} is not on this machine: taken to be a NAT's public address \
                 (forward SIP and the RTP range to this machine)"
            ),
        );
    }
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private() || v4.is_loopback() || v4.is_link_local() || v4.is_unspecified()
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}
