//! HTTPS for a LAN or a trial: a local certificate authority made once and
//! kept beside the database, and a server certificate it signs for this
//! machine's names. Agents trust the authority once (its fingerprint is
//! printed at start); the server certificate can then be re-issued — a new
//! name, a renewal — without anyone trusting anything again.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, Days, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use super::cert::{self, Loaded};

/// How long the server certificate lasts: within the 398 days browsers
/// accept of a server certificate.
const SERVER_DAYS: u64 = 397;
/// A server certificate this close to expiry is re-issued at start.
const RENEW_DAYS: u64 = 30;
/// How long the local authority lasts.
const AUTHORITY_DAYS: u64 = 3650;

/// The certificate in use and how agents come to trust it.
#[derive(Debug)]
pub struct SelfSigned {
    /// The server certificate and key.
    pub loaded: Loaded,
    /// The authority's certificate, for agents' browsers to trust.
    pub authority_file: PathBuf,
    /// The authority's SHA-256 fingerprint.
    pub authority_fingerprint: String,
    /// Whether this start made a new authority (agents must trust it).
    pub new_authority: bool,
    /// Whether this start issued a new server certificate.
    pub issued: bool,
}

/// Makes, or finds and keeps, the authority and the server certificate in
/// `dir`, the server certificate covering every name of `names`.
pub fn ensure(dir: &Path, names: &[String], now: DateTime<Utc>) -> Result<SelfSigned, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the TLS folder {}: {e}", dir.display()))?;
    let ca_pem = dir.join("ca.pem");
    let ca_key = dir.join("ca.key");
    let server_pem = dir.join("server.pem");
    let server_key = dir.join("server.key");
    let (authority, authority_key, new_authority) = if ca_pem.exists() && ca_key.exists() {
        let key_text = read_text(&ca_key)?;
        let key = KeyPair::from_pem(&key_text)
            .map_err(|e| format!("the authority key {} is unusable: {e}", ca_key.display()))?;
        (read_text(&ca_pem)?, key, false)
    } else {
        let key = KeyPair::generate().map_err(|e| format!("generating a key: {e}"))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default();
        let on = if host.is_empty() {
            "this machine"
        } else {
            &host
        };
        params.distinguished_name.push(
            DnType::CommonName,
            format!("dialcrm local authority on {on}"),
        );
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        set_validity(&mut params, now, AUTHORITY_DAYS);
        let cert = params
            .self_signed(&key)
            .map_err(|e| format!("making the local authority: {e}"))?;
        cert::write_file(&ca_key, &key.serialize_pem(), true)?;
        cert::write_file(&ca_pem, &cert.pem(), false)?;
        (cert.pem(), key, true)
    };
    let authority_der = cert::read_chain(&ca_pem)?.remove(0);
    let authority_fingerprint = cert::fingerprint(authority_der.as_ref());

    // The server certificate is kept while it covers every name, is far
    // from expiry and was signed by this authority.
    if !new_authority && server_pem.exists() && server_key.exists() {
        if let Ok(loaded) = cert::load_pair(&server_pem, &server_key) {
            let fresh = loaded.facts.not_after > now + Days::new(RENEW_DAYS);
            let ours = loaded.key.cert.get(1).map(|c| c.as_ref()) == Some(authority_der.as_ref());
            if fresh && ours && names.iter().all(|n| loaded.facts.covers(n)) {
                return Ok(SelfSigned {
                    loaded,
                    authority_file: ca_pem,
                    authority_fingerprint,
                    new_authority,
                    issued: false,
                });
            }
        }
    }
    let issuer = Issuer::from_ca_cert_pem(&authority, &authority_key)
        .map_err(|e| format!("the authority {} is unusable: {e}", ca_pem.display()))?;
    let key = KeyPair::generate().map_err(|e| format!("generating a key: {e}"))?;
    let mut params = CertificateParams::new(names.to_vec())
        .map_err(|e| format!("a TLS name is not a valid host name or address: {e}"))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(first) = names.first() {
        params
            .distinguished_name
            .push(DnType::CommonName, first.as_str());
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, now, SERVER_DAYS);
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|e| format!("issuing the server certificate: {e}"))?;
    cert::write_file(&server_key, &key.serialize_pem(), true)?;
    cert::write_file(&server_pem, &format!("{}{}", cert.pem(), authority), false)?;
    let loaded = cert::load_pair(&server_pem, &server_key)?;
    Ok(SelfSigned {
        loaded,
        authority_file: ca_pem,
        authority_fingerprint,
        new_authority,
        issued: true,
    })
}

/// Valid from yesterday (clocks disagree) to `days` from today, at
/// midnight UTC.
fn set_validity(params: &mut CertificateParams, now: DateTime<Utc>, days: u64) {
    let day = |d: chrono::NaiveDate| rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8);
    let today = now.date_naive();
    params.not_before = day(today - Days::new(1));
    params.not_after = day(today + Days::new(days));
}

fn read_text(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The names this machine is reached by: its host name, `localhost`, and
/// the addresses of its interfaces (link-local ones left out), then
/// `extra`, without repeats.
pub fn machine_names(extra: &[String]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut add = |n: String| {
        let n = n.trim().to_ascii_lowercase();
        if !n.is_empty() && !names.contains(&n) {
            names.push(n);
        }
    };
    for n in extra {
        add(n.clone());
    }
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        add(host);
    }
    add("localhost".into());
    for ip in local_addresses() {
        add(ip.to_string());
    }
    names
}

/// This machine's own addresses, from the kernel's routing tables.
fn local_addresses() -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = vec![[127, 0, 0, 1].into(), std::net::Ipv6Addr::LOCALHOST.into()];
    // IPv4: each local address appears in fib_trie followed by "/32 host LOCAL".
    if let Ok(trie) = std::fs::read_to_string("/proc/net/fib_trie") {
        let lines: Vec<&str> = trie.lines().collect();
        for pair in lines.windows(2) {
            if pair[1].trim() == "/32 host LOCAL" {
                if let Some(ip) = pair[0]
                    .trim()
                    .trim_start_matches(['|', '-', '+', ' ', '`'])
                    .parse::<IpAddr>()
                    .ok()
                    .filter(|ip| !ips.contains(ip))
                {
                    ips.push(ip);
                }
            }
        }
    }
    // IPv6: the first column of if_inet6 is the address in 32 hex digits.
    if let Ok(table) = std::fs::read_to_string("/proc/net/if_inet6") {
        for line in table.lines() {
            let Some(hex) = line.split_whitespace().next() else {
                continue;
            };
            let Ok(bytes) = hex::decode(hex) else {
                continue;
            };
            let Ok(octets) = <[u8; 16]>::try_from(bytes.as_slice()) else {
                continue;
            };
            let ip = std::net::Ipv6Addr::from(octets);
            // Link-local addresses need a zone and are no use in a URL.
            if (ip.segments()[0] & 0xffc0) != 0xfe80 && !ips.contains(&ip.into()) {
                ips.push(ip.into());
            }
        }
    }
    ips
}
