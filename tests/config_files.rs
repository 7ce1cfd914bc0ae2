//! The shipped config files load and mean what they say.

use impostor::config::Config;
use std::path::Path;

fn repo(p: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

#[test]
fn sample_config_is_exactly_the_default() {
    let sample = Config::load(&repo("deploy/impostor.toml")).expect("deploy/impostor.toml loads");
    let default = Config::default();
    assert_eq!(sample.raw, default.raw, "deploy/impostor.toml must set every key to its default");
    assert_eq!(sample.brands, default.brands);
}

#[test]
fn sample_config_mentions_every_key_and_rule() {
    let text = std::fs::read_to_string(repo("deploy/impostor.toml")).unwrap();
    let shown = Config::default().to_toml(impostor::analysis::catalog());
    for line in shown.lines() {
        let Some((key, _)) = line.split_once(" = ") else { continue };
        if line.starts_with(' ')
            || key.starts_with('[')
            || key == "name"
            || key == "aliases"
            || key == "domains"
            || key == "legitimate_domains"
        {
            continue;
        }
        assert!(text.contains(&format!("{key} = ")), "deploy/impostor.toml does not document {key}");
    }
    for r in impostor::analysis::catalog() {
        assert!(text.contains(r.id), "deploy/impostor.toml does not list rule {}", r.id);
    }
}

#[test]
fn example_brand_profiles_load() {
    let c = Config::load(&repo("deploy/brands-example.toml")).expect("deploy/brands-example.toml loads");
    assert!(c.brands.len() > 5);
    assert!(c.brands.iter().any(|b| b.name == "Microsoft"));
}

#[test]
fn rules_doc_lists_every_registered_rule() {
    let doc = std::fs::read_to_string(repo("docs/rules.md")).unwrap();
    for r in impostor::analysis::catalog() {
        assert!(doc.contains(&format!("### {} (default {:.1})", r.id, r.default_weight)), "docs/rules.md lacks {} with its default", r.id);
    }
}

#[test]
fn configuration_doc_lists_every_key() {
    let doc = std::fs::read_to_string(repo("docs/configuration.md")).unwrap();
    let shown = Config::default().to_toml(impostor::analysis::catalog());
    let mut section = String::new();
    for line in shown.lines() {
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.trim_matches(['[', ']']).to_string();
            continue;
        }
        let Some((key, _)) = line.split_once(" = ") else { continue };
        let full = if section.is_empty() {
            key.to_string()
        } else if section == "scores" {
            "scores.RULE_ID".into()
        } else {
            format!("{section}.{key}")
        };
        assert!(doc.contains(&format!("`{full}`")), "docs/configuration.md lacks `{full}`");
    }
}

#[test]
fn grafana_dashboard_queries_only_exported_series() {
    let dash: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(repo("deploy/grafana-dashboard.json")).unwrap()).unwrap();
    let m = impostor::metrics::Metrics::new();
    // label families are exported once they have a series
    m.messages.get_or_create(&impostor::metrics::ActionLabel::new(impostor::rule::Action::Accept, false)).inc();
    m.findings.get_or_create(&impostor::metrics::RuleLabel { rule: "SPF_FAIL".into() }).inc();
    m.reload(true);
    let exported = m.render();
    let mut n = 0;
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            assert!(expr.contains("instance=~\"$instance\""), "query not filtered by the instance variable: {expr}");
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("impostor_")) {
                let base = word.trim_end_matches("_bucket").trim_end_matches("_total");
                assert!(exported.contains(base), "dashboard uses {word}, not exported");
                n += 1;
            }
        }
    }
    assert!(n >= 8);
    let vars = dash["templating"]["list"].as_array().unwrap();
    assert!(vars
        .iter()
        .any(|v| v["name"] == "instance" && v["query"]["query"].as_str().is_some_and(|q| q.contains("impostor_build_info"))));
}

#[test]
fn content_limits_reach_the_analysis() {
    use impostor::analysis::{analyze, content, Engine, Envelope, MessageInput};
    // the [content] defaults are the analysis's own
    assert_eq!(Engine::new(Config::default()).unwrap().content_limits, content::Limits::default());
    // one link in each of two parts (within one part the extractor stops at the limit without saying so)
    let raw = "From: Jean <jean@sender.example>\r\nSubject: Two links\r\n\
               MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
               --b\r\nContent-Type: text/plain\r\n\r\nSee https://one.example/a\r\n\
               --b\r\nContent-Type: text/plain\r\n\r\nor https://two.example/b\r\n--b--\r\n";
    let run = |toml: &str| {
        let engine = Engine::new(Config::from_toml_str(toml, "t.toml").unwrap()).unwrap();
        let env = Envelope::default();
        let input = MessageInput { envelope: &env, raw: raw.as_bytes(), truncated: false, headers_truncated: false, auth: None };
        analyze(&engine, &input).0
    };
    assert!(!run("").rule_ids().contains(&"CONTENT_LIMIT_REACHED"), "{:?}", run(""));
    let v = run("[content]\nmax_links = 1\nmax_qr_time_ms = 40\n");
    let hit = v.rules.iter().find(|r| r.id == "CONTENT_LIMIT_REACHED").unwrap_or_else(|| panic!("{v:?}"));
    assert!(hit.evidence.contains("max_links (1)"), "{hit:?}");
    let engine = Engine::new(Config::from_toml_str("[content]\nmax_qr_time_ms = 40\nmax_depth = 2\n", "t.toml").unwrap()).unwrap();
    assert_eq!((engine.content_limits.max_qr_time, engine.content_limits.max_depth), (std::time::Duration::from_millis(40), 2));
}

/// `impostor config check` on `text` fails, and its message names the file, the line, the key and the value.
fn check_fails(text: &str, line: usize, must: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("impostor.toml");
    std::fs::write(&path, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_impostor")).args(["config", "check", "-c"]).arg(&path).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "config check accepted {text:?}");
    let at = format!("{}:{line}: ", path.display());
    assert!(err.contains(&at), "{err:?} does not name {at:?}");
    for m in must {
        assert!(err.contains(m), "{err:?} does not name {m:?}");
    }
}

#[test]
fn bad_enum_value_names_line_and_lists_the_valid_values() {
    check_fails("# logs\n\n[log]\nformat = \"jsn\"\n", 4, &["log.format", "jsn", "`text`", "`json`"]);
    check_fails("fail_mode = \"explode\"\n", 1, &["fail_mode", "explode", "`tempfail`", "`accept`"]);
}

#[test]
fn bad_cidr_names_line_key_and_value() {
    check_fails("[allow]\nclient_networks = [\n  \"10.0.0.0/8\",\n  \"10.1.0.0/33\",\n]\n", 4, &["allow.client_networks", "10.1.0.0/33"]);
}

#[test]
fn number_for_a_string_is_an_error_not_a_string() {
    check_fails("[tag]\nsubject_prefix = 5\n", 2, &["tag.subject_prefix", "integer `5`", "expected a string"]);
}

#[test]
fn unknown_key_names_line_and_the_known_keys() {
    check_fails("[actions]\ntag = 5\ntga = 3\n", 3, &["actions.tga", "`quarantine`"]);
    check_fails("[[brand]]\nname = \"A\"\n[[brand]]\nname = \"B\"\nalias = [\"b\"]\n", 5, &["brand[1].alias", "`aliases`"]);
}

#[test]
fn thresholds_out_of_order_name_the_line() {
    check_fails("[actions]\ntag = 5\nquarantine = 10\nreject = 8\n", 4, &["actions.reject", "8", "actions.quarantine (10)"]);
}

#[test]
fn unknown_rule_id_names_the_line() {
    check_fails("[scores]\nBRAND_NAME_FOREIGN_DOMAIN = 6.0\nNO_SUCH_RULE = 3.0\n", 3, &["scores.NO_SUCH_RULE", "unknown rule id"]);
}

#[test]
fn config_check_rejects_a_user_or_group_that_does_not_exist() {
    check_fails("# run as\nuser = \"impostor-no-such-user\"\n", 2, &["user", "no such user", "impostor-no-such-user"]);
    check_fails(
        "[milter]\nsocket = \"unix:/tmp/x.sock\"\nsocket_group = \"impostor-no-such-group\"\n",
        3,
        &["milter.socket_group", "impostor-no-such-group"],
    );
    // accounts that exist pass
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("impostor.toml");
    std::fs::write(&path, "user = \"root\"\n[milter]\nsocket_group = \"root\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_impostor")).args(["config", "check", "-c"]).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `config show` prints the effective configuration of `args`' config file.
fn show(path: &Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_impostor")).args(["config", "show", "-c"]).arg(path).output().unwrap();
    assert!(out.status.success(), "config show {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    // the first line names the source file
    String::from_utf8(out.stdout).unwrap().split_once('\n').unwrap().1.to_string()
}

#[test]
fn config_show_prints_a_file_that_check_accepts_with_the_same_effective_config() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("default.toml", String::new()),
        ("sample.toml", std::fs::read_to_string(repo("deploy/impostor.toml")).unwrap()),
        ("brands.toml", std::fs::read_to_string(repo("deploy/brands-example.toml")).unwrap()),
        (
            "tuned.toml",
            "monitor = true\n[actions]\ntag = 4\nquarantine = 9\nreject = 20\n[tag]\nsubject_prefix = \"[!]\"\n\
             [allow]\nclient_networks = [\"10.0.0.0/8\"]\n[scores]\nBRAND_NAME_FOREIGN_DOMAIN = 7.5\n[rules]\ndisabled = [\"DISPLAY_NAME_ADDRESS_MISMATCH\"]\n\
             [[brand]]\nname = \"ExampleBank\"\ndomains = [\"examplebank.com\"]\n[brand.overrides.actions]\ntag = 2\nquarantine = 4\nreject = 6\n"
                .to_string(),
        ),
    ] {
        let original = dir.path().join(name);
        std::fs::write(&original, &text).unwrap();
        let shown = show(&original);
        let shown_path = dir.path().join(format!("shown-{name}"));
        std::fs::write(&shown_path, &shown).unwrap();
        let check = std::process::Command::new(env!("CARGO_BIN_EXE_impostor"))
            .args(["config", "check", "-c"])
            .arg(&shown_path)
            .output()
            .unwrap();
        assert!(check.status.success(), "config check rejects config show of {name}: {}", String::from_utf8_lossy(&check.stderr));
        // the same effective configuration: the same brands, and showing it again prints the same file
        let a = Config::load(&original).unwrap();
        let b = Config::load(&shown_path).unwrap();
        assert_eq!(a.brands, b.brands, "{name}: brands differ after the round trip");
        assert_eq!((a.monitor, &a.actions, &a.allow, &a.tag), (b.monitor, &b.actions, &b.allow, &b.tag), "{name}");
        assert_eq!(show(&shown_path), shown, "{name}: config show of config show differs");
    }
}

/// A small JSON Schema checker for what `config schema` uses: type, enum, properties,
/// additionalProperties, items, $ref, anyOf/oneOf. Returns the first violation.
fn violates(schema: &serde_json::Value, root: &serde_json::Value, v: &serde_json::Value, at: &str) -> Option<String> {
    use serde_json::Value;
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.strip_prefix("#/$defs/").expect("local $ref");
        return violates(&root["$defs"][name], root, v, at);
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = schema.get(key).and_then(Value::as_array) {
            if alts.iter().all(|s| violates(s, root, v, at).is_some()) {
                return Some(format!("{at}: matches none of {key}"));
            }
        }
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            t => vec![t.as_str().unwrap()],
        };
        let ok = types.iter().any(|t| match *t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "boolean" => v.is_boolean(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "null" => v.is_null(),
            _ => false,
        });
        if !ok {
            return Some(format!("{at}: {v} is not {types:?}"));
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            return Some(format!("{at}: {v} not in {e:?}"));
        }
    }
    if let (Some(obj), Some(props)) = (v.as_object(), schema.get("properties").and_then(Value::as_object)) {
        for (k, x) in obj {
            match props.get(k) {
                Some(s) => {
                    if let Some(e) = violates(s, root, x, &format!("{at}.{k}")) {
                        return Some(e);
                    }
                }
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => return Some(format!("{at}.{k}: unknown key")),
                None => {}
            }
        }
    } else if let (Some(obj), Some(extra)) = (v.as_object(), schema.get("additionalProperties").filter(|a| a.is_object())) {
        for (k, x) in obj {
            if let Some(e) = violates(extra, root, x, &format!("{at}.{k}")) {
                return Some(e);
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            if let Some(e) = violates(items, root, x, &format!("{at}[{i}]")) {
                return Some(e);
            }
        }
    }
    None
}

#[test]
fn config_schema_is_generated_from_the_types_and_accepts_what_the_loader_accepts() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_impostor")).args(["config", "schema"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).expect("config schema prints JSON");
    assert!(schema["$schema"].as_str().is_some_and(|s| s.contains("json-schema.org")), "{schema}");
    let as_json = |text: &str| -> serde_json::Value { toml::from_str(text).unwrap() };
    // every file the loader accepts, the schema accepts; every top-level key is in it
    for f in ["deploy/impostor.toml", "deploy/brands-example.toml"] {
        let v = as_json(&std::fs::read_to_string(repo(f)).unwrap());
        assert_eq!(violates(&schema, &schema, &v, "$"), None, "{f}");
    }
    let shown = Config::default().to_toml(impostor::analysis::catalog());
    let v = as_json(&shown);
    for k in v.as_object().unwrap().keys() {
        assert!(schema["properties"].get(k).is_some(), "schema lacks {k}");
    }
    assert_eq!(violates(&schema, &schema, &v, "$"), None, "config show output");
    // and what the loader rejects for its type, the schema rejects too
    for (bad, why) in [
        ("[log]\nformat = \"jsn\"\n", "not in"),
        ("[actions]\ntga = 3\n", "unknown key"),
        ("[tag]\nsubject_prefix = 5\n", "is not"),
        ("[log]\nfacility = \"kern\"\n", "not in"),
    ] {
        let e = violates(&schema, &schema, &as_json(bad), "$").unwrap_or_else(|| panic!("schema accepts {bad:?}"));
        assert!(e.contains(why), "{bad:?}: {e}");
        assert!(Config::from_toml_str(bad, "x.toml").is_err());
    }
}
