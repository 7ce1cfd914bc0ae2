//! The Debian package and systemd unit, checked without building them: what lintian and systemd need.

fn read(p: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(p)).unwrap()
}

#[test]
fn unit_is_notify_with_a_runtime_directory() {
    let unit = read("deploy/impostor.service");
    let keys: Vec<&str> = unit.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(keys.contains(&"Type=notify"), "{unit}");
    assert!(keys.contains(&"RuntimeDirectory=impostor"), "{unit}");
    assert!(keys.contains(&"ProtectSystem=strict"));
}

#[test]
fn debian_changelog_matches_the_version_and_the_synopsis_is_lintian_clean() {
    let cargo: toml::Value = toml::from_str(&read("Cargo.toml")).unwrap();
    let version = cargo["package"]["version"].as_str().unwrap();
    let deb = &cargo["package"]["metadata"]["deb"];
    let changelog = read(deb["changelog"].as_str().expect("package.metadata.deb.changelog"));
    let first = changelog.lines().next().unwrap();
    assert!(first.starts_with(&format!("impostor ({version}-")) && first.contains("urgency="), "{first}");
    // the maintainer line: " -- Name <mail>  RFC 2822 date"
    let sig = changelog.lines().find(|l| l.starts_with(" -- ")).expect("a signature line");
    assert!(sig.contains(deb["maintainer"].as_str().unwrap()) && sig.contains("  ") && sig.ends_with("+0000"), "{sig}");
    // lintian: synopsis under 80 characters, not starting with an article, no full stop
    let synopsis = cargo["package"]["description"].as_str().unwrap();
    assert!(synopsis.len() < 80, "{synopsis}");
    let first_word = synopsis.split(' ').next().unwrap().to_ascii_lowercase();
    assert!(!["a", "an", "the"].contains(&first_word.as_str()) && !synopsis.ends_with('.'), "{synopsis}");
}

#[test]
fn purge_keeps_the_system_user() {
    let postrm = read("deploy/debian/postrm");
    let code: String = postrm.lines().filter(|l| !l.trim_start().starts_with('#')).collect::<Vec<_>>().join("\n");
    assert!(!code.contains("deluser") && !code.contains("delgroup"), "{postrm}");
}

#[test]
fn review_unit_keeps_only_the_capabilities_postfix_tools_need_and_is_packaged() {
    let unit = read("deploy/impostor-review.service");
    let keys: Vec<&str> = unit.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(keys.contains(&"ExecStart=/usr/sbin/impostor review -c /etc/impostor/impostor.toml"), "{unit}");
    assert!(keys.contains(&"CapabilityBoundingSet=CAP_SETUID CAP_SETGID CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH"), "{unit}");
    assert!(keys.contains(&"NoNewPrivileges=yes") && keys.contains(&"ProtectSystem=strict"), "{unit}");
    let cargo: toml::Value = toml::from_str(&read("Cargo.toml")).unwrap();
    let units = cargo["package"]["metadata"]["deb"]["systemd-units"].as_array().expect("systemd-units is a list");
    assert!(units.iter().any(|u| u["unit-name"].as_str() == Some("impostor-review")), "{units:?}");
}
