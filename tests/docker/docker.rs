//! Running `docker` and `docker compose`, and the image every test shares.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const IMAGE: &str = "booking-lab/booking-service";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a command; its stdout, or a panic with everything it printed.
pub fn run(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{command:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// `docker ARGS`, with the classic builder.
pub fn docker(args: &[&str]) -> Command {
    let mut command = Command::new("docker");
    command.args(args).env("DOCKER_BUILDKIT", "0");
    command
}

/// `docker compose` (Compose v2 from .tools/venv, as scripts/prereqs.sh
/// installs it) for project `project`, in the repository, with `env`.
pub fn compose(project: &str, env: &[(&str, &str)], args: &[&str]) -> Command {
    let venv = root().join(".tools/venv/bin/docker-compose");
    let mut command = Command::new(if venv.exists() { venv } else { PathBuf::from("docker-compose") });
    command.current_dir(root()).args(["-p", project]).args(args).envs(env.iter().copied());
    command
}

/// Builds the base images (once per machine) and the service's image (once
/// per test run; Docker's layer cache makes the second build of the same
/// sources take seconds), from the files git tracks: a file the build
/// needs that a clone would lack fails here.
pub fn image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        // Test processes run in parallel: one builds, the others wait.
        let lock = std::fs::File::create(std::env::temp_dir().join("booking-lab-docker.lock")).expect("lock file");
        lock.lock().expect("lock");
        run(&mut Command::new(root().join("scripts/docker-bases.sh")));
        let context = clone_of_tracked_files();
        let started = Instant::now();
        run(docker(&[
            "build",
            "-q",
            "-t",
            IMAGE,
            "--build-arg",
            "RUST_IMAGE=booking-lab-local/rust:1.95",
            "--build-arg",
            "RUNTIME_IMAGE=booking-lab-local/debian:bookworm",
        ])
        .arg(&context));
        eprintln!("docker build of {IMAGE} took {:?}", started.elapsed());
        let _ = std::fs::remove_dir_all(context);
    });
    IMAGE
}

/// The files git tracks, as they are in the working tree, in a new folder:
/// the build context a fresh clone would give (with its .dockerignore).
fn clone_of_tracked_files() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("booking-lab-context-{}", uuid::Uuid::new_v4().simple()));
    let files = run(Command::new("git").current_dir(root()).args(["ls-files", "-z"]));
    for file in files.split('\0').filter(|file| !file.is_empty()) {
        let from = root().join(file);
        if !from.is_file() {
            continue; // deleted in the working tree
        }
        let to = dir.join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap_or_else(|error| panic!("copy {file}: {error}"));
    }
    dir
}

/// Polls `check` every 200 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A container's field, by Go template (`{{.State.Health.Status}}`).
pub fn inspect(container: &str, template: &str) -> String {
    run(&mut docker(&["inspect", "-f", template, container])).trim().to_owned()
}
