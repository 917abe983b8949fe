//! The dependency rule: domain crates stay usable as plain libraries, so
//! none of them may depend, even transitively, on a web framework, a
//! database driver, an HTTP client, a cache or a pool.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use serde_json::Value;

/// The framework-free crates (those not created yet are skipped until they are).
const DOMAIN_CRATES: [&str; 7] = [
    "portico-kernel",
    "portico-tenancy",
    "portico-billing",
    "portico-credits",
    "portico-crm",
    "portico-metering",
    "portico-messaging",
];

/// What a domain crate must never pull in.
const FORBIDDEN: [&str; 7] =
    ["actix-web", "diesel", "diesel-async", "tokio-postgres", "reqwest", "moka", "deadpool"];

/// The host's target triple (`rustc -vV`), to resolve only what builds here.
fn host_triple() -> String {
    let output = Command::new("rustc").arg("-vV").output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    text.lines().find_map(|line| line.strip_prefix("host: ")).unwrap().to_owned()
}

fn metadata() -> Value {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--filter-platform",
            &host_triple(),
            "--manifest-path",
        ])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml"))
        .output()
        .unwrap();
    assert!(output.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Every package `root` depends on through normal or build dependencies
/// (dev-dependencies only build its tests), by name.
fn dependencies_of(metadata: &Value, root: &str) -> BTreeSet<String> {
    let names: HashMap<&str, &str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let nodes: HashMap<&str, &Value> = metadata["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let root_id = names.iter().find(|(_, name)| **name == root).map(|(id, _)| *id).unwrap();

    let mut seen = BTreeSet::new();
    let mut stack = vec![root_id];
    while let Some(id) = stack.pop() {
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let not_dev_only =
                dep["dep_kinds"].as_array().unwrap().iter().any(|kind| kind["kind"].as_str() != Some("dev"));
            let dep_id = dep["pkg"].as_str().unwrap();
            if not_dev_only && seen.insert(names[dep_id].to_owned()) {
                stack.push(dep_id);
            }
        }
    }
    seen
}

#[test]
fn domain_crates_depend_on_no_framework_or_io_crate() {
    let metadata = metadata();
    let members: BTreeSet<&str> =
        metadata["packages"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    let present: Vec<&str> = DOMAIN_CRATES.into_iter().filter(|c| members.contains(c)).collect();
    for built in ["portico-kernel", "portico-tenancy", "portico-credits", "portico-crm", "portico-metering"] {
        assert!(present.contains(&built), "{built} is checked: {present:?}");
    }
    for domain in present {
        let deps = dependencies_of(&metadata, domain);
        let bad: Vec<&str> = FORBIDDEN.into_iter().filter(|f| deps.contains(*f)).collect();
        assert!(bad.is_empty(), "{domain} depends on {bad:?}");
    }
}

#[test]
fn the_check_itself_sees_transitive_dependencies() {
    // The store does depend on diesel through diesel-async: the walk must find it.
    let deps = dependencies_of(&metadata(), "portico-store");
    for expected in ["diesel", "diesel-async", "deadpool", "tokio-postgres", "portico-kernel"] {
        assert!(deps.contains(expected), "{expected} missing from {deps:?}");
    }
    assert!(!dependencies_of(&metadata(), "portico-kernel").contains("portico-testkit"));
}
