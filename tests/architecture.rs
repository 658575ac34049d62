//! The house rules of docs/architecture.md, checked: which part of the
//! server may import which, and what the lab takes from the server.
//!
//! Read from the source as text: every `crate::<module>` a part names
//! outside comments must be one its floor allows. A new import that runs
//! the wrong way (storage reaching up into the booking service, the
//! strategies into HTTP) fails here with the file and line that made it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each part of `server/src`, and the parts it may import: the table in
/// docs/architecture.md, from the bottom floor up.
const SERVER: &[(&str, &[&str])] = &[
    ("domain", &[]),
    ("keys", &[]),
    ("redis_ops", &[]),
    ("config", &["domain"]),
    ("metrics", &["domain"]),
    ("activity", &["domain"]),
    ("storage", &["domain"]),
    ("error", &["storage"]),
    ("telemetry", &["config"]),
    ("healthcheck", &["config"]),
    ("strategy", &["domain", "keys", "redis_ops", "config", "metrics", "storage", "error"]),
    ("cluster", &["domain", "keys", "redis_ops", "metrics", "activity", "storage", "error"]),
    ("live", &["domain", "cluster"]),
    ("booking", &["domain", "metrics", "activity", "storage", "error", "strategy", "cluster", "live"]),
    ("holds", &["domain", "metrics", "storage", "error", "strategy", "live", "booking"]),
    ("state", &["domain", "keys", "config", "activity", "storage", "cluster", "live", "booking", "holds"]),
    ("gauges", &["metrics", "storage", "state"]),
    (
        "http",
        &["domain", "config", "metrics", "storage", "error", "telemetry", "cluster", "live", "booking", "holds", "state"],
    ),
    (
        "app",
        &[
            "domain", "keys", "config", "metrics", "activity", "storage", "strategy", "cluster", "live", "booking", "holds", "state",
            "gauges", "http",
        ],
    ),
];

/// What the lab may take from the server: the vocabulary, and the `Secret`
/// type its token settings share.
const LAB_FROM_SERVER: &[&str] = &["domain", "config"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_owned()];
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).unwrap_or_else(|error| panic!("{}: {error}", path.display())) {
        files.extend(rust_files(&entry.unwrap().path()));
    }
    files.retain(|file| file.extension().is_some_and(|ext| ext == "rs"));
    files
}

/// Every `<prefix><name>` in the code of `file` (comments left out), with its line.
fn named(file: &Path, prefix: &str) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for (at, _) in code.match_indices(prefix) {
            let name: String = code[at + prefix.len()..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            found.push((number + 1, name));
        }
    }
    found
}

#[test]
fn every_server_part_imports_only_from_the_floors_below_it() {
    let src = root().join("server/src");
    let mut parts: BTreeSet<String> = BTreeSet::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().trim_end_matches(".rs").to_owned();
        if name != "lib" {
            parts.insert(name);
        }
    }
    let listed: BTreeSet<String> = SERVER.iter().map(|(part, _)| part.to_string()).collect();
    assert_eq!(parts, listed, "every part of server/src has a row in the table (and in docs/architecture.md)");

    let mut wrong = Vec::new();
    for (part, allowed) in SERVER {
        let path = if src.join(part).is_dir() { src.join(part) } else { src.join(format!("{part}.rs")) };
        for file in rust_files(&path) {
            for (line, name) in named(&file, "crate::") {
                if name != *part && !allowed.contains(&name.as_str()) {
                    wrong.push(format!("{}:{line}: {part} imports crate::{name}", file.strip_prefix(root()).unwrap().display()));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "imports that run the wrong way:\n{}", wrong.join("\n"));
}

#[test]
fn the_lab_takes_only_the_vocabulary_from_the_server() {
    let mut wrong = Vec::new();
    for file in rust_files(&root().join("lab/src")) {
        for (line, name) in named(&file, "booking_server::") {
            if !LAB_FROM_SERVER.contains(&name.as_str()) {
                wrong.push(format!("{}:{line}: booking_server::{name}", file.strip_prefix(root()).unwrap().display()));
            }
        }
    }
    assert!(wrong.is_empty(), "the lab reaches into the server:\n{}", wrong.join("\n"));
    let server_manifest = std::fs::read_to_string(root().join("server/Cargo.toml")).unwrap();
    assert!(!server_manifest.contains("booking-lab"), "a replica never links the lab's tools");
}
