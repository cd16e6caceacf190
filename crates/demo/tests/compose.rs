//! Static checks of `deploy/docker-compose.yml` (Docker cannot run here): the services it
//! declares, that every environment variable it sets is one the service's binary reads (from
//! the binary's `--help`), that dependencies exist, and that the Dockerfiles it builds exist.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One service of the compose file, as far as these checks need it.
#[derive(Debug, Default)]
struct Service {
    image: Option<String>,
    dockerfile: Option<String>,
    entrypoint: Option<String>,
    command: Option<String>,
    env: BTreeSet<String>,
    depends_on: BTreeSet<String>,
}

/// Reads the block-style subset the file keeps to (maps by indentation, flow lists as text).
fn parse(text: &str) -> BTreeMap<String, Service> {
    let mut services = BTreeMap::new();
    let mut in_services = false;
    let mut current: Option<String> = None;
    let mut section = String::new();
    for raw in text.lines() {
        let line = raw.split(" #").next().unwrap_or("").trim_end();
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let (key, value) = match line.trim().split_once(':') {
            Some((k, v)) => (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()),
            None => (line.trim().to_owned(), String::new()),
        };
        match indent {
            0 => in_services = key == "services",
            2 if in_services => {
                current = Some(key.clone());
                services.insert(key, Service::default());
            }
            4 if in_services => {
                section = key.clone();
                let s = services
                    .get_mut(current.as_deref().expect("a service"))
                    .expect("service");
                match key.as_str() {
                    "image" => s.image = Some(value),
                    "entrypoint" => s.entrypoint = Some(value),
                    "command" => s.command = Some(value),
                    _ => {}
                }
            }
            6 if in_services => {
                let s = services
                    .get_mut(current.as_deref().expect("a service"))
                    .expect("service");
                match section.as_str() {
                    "environment" => {
                        s.env.insert(key);
                    }
                    "depends_on" => {
                        s.depends_on.insert(key);
                    }
                    "build" if key == "dockerfile" => s.dockerfile = Some(value),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    services
}

fn compose() -> BTreeMap<String, Service> {
    let text = std::fs::read_to_string(repo().join("deploy/docker-compose.yml"))
        .expect("deploy/docker-compose.yml");
    parse(&text)
}

/// The env var names a binary documents in `--help` (clap prints `[env: NAME=…]`).
fn env_names(bin: &str, args: &[&str]) -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_BIN_EXE_dm-demo"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let path = dir.join(bin);
    assert!(
        path.is_file(),
        "{} is missing: build the binaries first (cargo build --bins; make test does)",
        path.display()
    );
    let out = Command::new(&path)
        .args(args)
        .arg("--help")
        .output()
        .expect("run --help");
    let help = String::from_utf8_lossy(&out.stdout);
    help.split("[env: ")
        .skip(1)
        .filter_map(|s| s.split(['=', ']']).next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn declares_the_infrastructure_the_seed_and_the_three_services() {
    let names: Vec<String> = compose().into_keys().collect();
    assert_eq!(
        names,
        [
            "analytics",
            "auditor",
            "consumer",
            "mongodb",
            "mysql",
            "nats",
            "seed"
        ]
    );
}

#[test]
fn every_environment_variable_is_read_by_its_binary() {
    let services = compose();
    // (service, binary, subcommand): what each container runs.
    let runs = [
        ("consumer", "dm-consumer", vec![]),
        ("auditor", "dm-auditor", vec!["run"]),
        ("analytics", "dm-analytics", vec!["run"]),
        ("seed", "dm-demo", vec!["seed"]),
    ];
    for (service, bin, args) in runs {
        let s = &services[service];
        let known = env_names(bin, &args);
        assert!(!known.is_empty(), "{bin} --help lists no env vars");
        let unknown: Vec<_> = s.env.difference(&known).collect();
        assert!(
            unknown.is_empty(),
            "{service}: {bin} does not read {unknown:?}"
        );
        if let Some(sub) = args.first() {
            let cmd = s.command.as_deref().unwrap_or_default();
            assert!(cmd.contains(sub), "{service} runs `{cmd}`, not `{sub}`");
        }
        if let Some(ep) = &s.entrypoint {
            assert!(
                ep.contains(&format!("/usr/local/bin/{bin}")),
                "{service}: {ep}"
            );
        }
    }
}

#[test]
fn schedulers_run_without_leader_election_and_with_the_charts_names() {
    let services = compose();
    for name in ["auditor", "analytics"] {
        let env = &services[name].env;
        for var in [
            "MYSQL_URI",
            "MONGODB_URL",
            "SUPPORTED_PAIRS",
            "LEADER_ELECTION",
        ] {
            assert!(env.contains(var), "{name} lacks {var}");
        }
    }
    assert!(services["consumer"].env.contains("NATS_URL"));
    let text = std::fs::read_to_string(repo().join("deploy/docker-compose.yml")).expect("file");
    assert_eq!(text.matches("LEADER_ELECTION: disabled").count(), 2);
}

#[test]
fn dependencies_images_and_dockerfiles_exist() {
    let services = compose();
    for (name, s) in &services {
        for dep in &s.depends_on {
            assert!(
                services.contains_key(dep),
                "{name} depends on unknown {dep}"
            );
        }
        if let Some(df) = &s.dockerfile {
            assert!(repo().join(df).is_file(), "{name}: {df} does not exist");
        }
        assert!(s.image.is_some(), "{name} has no image");
    }
    // The schedulers run the image the seed service builds.
    let built = services["seed"].image.clone();
    assert_eq!(services["auditor"].image, built);
    assert_eq!(services["analytics"].image, built);
}

#[test]
fn parser_reads_maps_by_indentation() {
    let s = parse(
        "services:\n  a:\n    image: x # c\n    environment:\n      K: \"1\"\n    depends_on:\n      b:\n        condition: y\n  b:\n    build:\n      dockerfile: D\n",
    );
    assert_eq!(s["a"].image.as_deref(), Some("x"));
    assert_eq!(s["a"].env.iter().collect::<Vec<_>>(), ["K"]);
    assert_eq!(s["a"].depends_on.iter().collect::<Vec<_>>(), ["b"]);
    assert_eq!(s["b"].dockerfile.as_deref(), Some("D"));
}
