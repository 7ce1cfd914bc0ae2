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

/// The README's first run command, on a checkout with no /etc/impostor: a daemon
/// listening on the documented default socket. `cargo run` builds and starts the
/// `default-run` binary, so the test starts that binary (already built by `cargo test`)
/// with the command's arguments. `IMPOSTOR_TEST_CARGO_RUN=1` runs the command itself,
/// a release build of several minutes (not in CI by default).
#[test]
fn the_readme_run_command_gives_a_listening_daemon() {
    use std::io::{BufRead, BufReader};
    let readme = read("README.md");
    let block = readme.split("Run the daemon").nth(1).expect("README says how to run the daemon");
    let command = block.split("```sh\n").nth(1).and_then(|b| b.split("\n```").next()).expect("a sh block").trim().to_string();
    assert_eq!(command, "cargo run --release -- serve", "README's run command changed: update this test");
    let args: Vec<&str> = command.split_once(" -- ").unwrap().1.split_whitespace().collect();
    // `cargo run` with two binaries in the workspace needs default-run (or fails "could not determine which binary to run")
    let cargo: toml::Value = toml::from_str(&read("Cargo.toml")).unwrap();
    assert_eq!(cargo["package"]["default-run"].as_str(), Some("impostor"));
    assert!(
        !std::path::Path::new("/etc/impostor/impostor.toml").exists(),
        "/etc/impostor/impostor.toml exists: this test checks the built-in default a fresh checkout runs with"
    );
    // the documented default socket, inet:127.0.0.1:7357
    let default = impostor::config::Config::load_default_or(None).unwrap();
    assert_eq!(default.socket, impostor::config::SocketSpec::Inet("127.0.0.1:7357".into()));
    if let Err(e) = std::net::TcpListener::bind("127.0.0.1:7357") {
        panic!("127.0.0.1:7357 is taken ({e}): stop the impostor serve running there to test the README's command");
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = if std::env::var_os("IMPOSTOR_TEST_CARGO_RUN").is_some() {
        let mut c = std::process::Command::new("sh");
        c.arg("-c").arg(format!("exec {command}")).current_dir(env!("CARGO_MANIFEST_DIR"));
        c
    } else {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_impostor"));
        c.args(&args).current_dir(dir.path());
        c
    };
    let mut child = cmd.env_remove("RUST_LOG").stdin(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let wait = if std::env::var_os("IMPOSTOR_TEST_CARGO_RUN").is_some() { 1800 } else { 20 };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(wait);
    let mut seen = Vec::new();
    let listening = loop {
        if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
            let up = line.contains("impostor listening");
            seen.push(line);
            if up {
                break true;
            }
        }
        if std::time::Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            break false;
        }
    };
    let connected = listening && std::net::TcpStream::connect("127.0.0.1:7357").is_ok();
    // SIGTERM: the daemon drains and exits 0 (its handlers are in place once it is ready, just after "listening")
    std::thread::sleep(std::time::Duration::from_millis(800));
    let _ = std::process::Command::new("kill").args(["-s", "TERM", &child.id().to_string()]).status();
    let status = child.wait().unwrap();
    assert!(listening && connected, "no daemon listening on 127.0.0.1:7357: {seen:#?}");
    assert_eq!(status.code(), Some(0), "{seen:#?}");
}
