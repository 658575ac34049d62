//! Runs Schemathesis (the `schemathesis` CLI from PyPI, which
//! `scripts/prereqs.sh` installs) against a running API with every check it
//! has (`--checks all`) and the project's `schemathesis.toml`, as
//! `scripts/api-fuzz.sh` does.

use std::path::PathBuf;
use std::time::Duration;

/// The checks every run makes: all of them.
pub const CHECKS: &str = "all";

/// What a run printed, and whether it found nothing.
pub struct Run {
    pub passed: bool,
    pub output: String,
    /// Where its JUnit report is kept (a test artefact).
    pub report_dir: PathBuf,
}

/// Every phase (examples, coverage, fuzzing, stateful), `max_examples` per
/// operation, with a fixed seed so a failure can be replayed; bounded to ten
/// minutes.
pub async fn run(base_url: &str, admin_token: Option<&str>, max_examples: u32, name: &str) -> Run {
    let report_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artefacts/schemathesis").join(name);
    std::fs::create_dir_all(&report_dir).expect("artefact folder");
    // scripts/prereqs.sh installs it into the project's own virtual environment.
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/venv/bin/schemathesis");
    let mut command = tokio::process::Command::new(if venv.exists() { venv.as_path() } else { std::path::Path::new("schemathesis") });
    command
        .current_dir(&report_dir)
        .arg("--config-file")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemathesis.toml"))
        .args(["--no-color", "run", &format!("{base_url}/openapi.json"), "--checks", CHECKS])
        .args(["--max-examples", &max_examples.to_string(), "--seed", "20261126", "--generation-database", "none"])
        .args(["--request-timeout", "30", "--report", "junit", "--report-dir"])
        .arg(&report_dir)
        .kill_on_drop(true);
    if let Some(token) = admin_token {
        command.args(["--header", &format!("Authorization: Bearer {token}")]);
    }
    let output = match tokio::time::timeout(Duration::from_secs(600), command.output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(error)) => panic!("cannot run schemathesis ({error}): run scripts/prereqs.sh, or pip install schemathesis==4.32.5"),
        Err(_) => panic!("schemathesis ran for more than ten minutes against {base_url}"),
    };
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    std::fs::write(report_dir.join("output.txt"), &text).expect("artefact");
    Run { passed: output.status.success(), output: text, report_dir }
}

/// How many test cases Schemathesis says it generated (its summary line
/// "N generated, ..."), to show a run was not empty.
pub fn generated(output: &str) -> u64 {
    output
        .lines()
        .find_map(|line| line.trim().split_once(" generated").and_then(|(count, _)| count.trim().parse().ok()))
        .unwrap_or(0)
}
