//! The Store compiles no telephony: neither it nor the dialler rules it
//! uses depend on the SIP gateway, WebRTC or Opus (docs/decisions/0003).

const TELEPHONY: [&str; 5] = [
    "sip-gateway",
    "str0m",
    "opusic-c",
    "dialer ",
    "dialer.workspace",
];

fn dependencies(manifest: &str) -> String {
    let text = std::fs::read_to_string(manifest).expect("manifest readable");
    // The sections that are built into the library, not dev-dependencies.
    text.split("\n[")
        .filter(|s| s.starts_with("dependencies") || s.starts_with("target."))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_store_and_the_rules_it_uses_compile_no_telephony() {
    let root = env!("CARGO_MANIFEST_DIR");
    for manifest in [
        format!("{root}/Cargo.toml"),
        format!("{root}/../dialer-core/Cargo.toml"),
    ] {
        let deps = dependencies(&manifest);
        assert!(
            deps.contains("chrono"),
            "read the dependencies of {manifest}"
        );
        for name in TELEPHONY {
            assert!(!deps.contains(name), "{manifest} depends on {name}");
        }
    }
}
