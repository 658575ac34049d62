//! The Kubernetes manifests (`deploy/k8s`), checked the way a CI pipeline
//! checks them without a cluster: rendered by `kubectl kustomize`, validated
//! against the pinned Kubernetes version's JSON schemas
//! (`kubernetes-validate`, offline), scanned by `checkov`, and held against
//! the binary itself: every variable they set is one it reads, every probe
//! path is one it serves, and the image is the one the project builds.
//! `scripts/prereqs.sh` installs the three tools into `.tools/k8s-venv`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

/// The Kubernetes version the manifests are written for: the `sleep`
/// pre-stop action is on by default from 1.30.
const KUBERNETES_VERSION: &str = "1.31.0";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A tool from `.tools/k8s-venv`, or from PATH.
fn tool(name: &str) -> Command {
    let local = root().join(".tools/k8s-venv/bin").join(name);
    Command::new(if local.exists() { local } else { PathBuf::from(name) })
}

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|error| panic!("cannot run {command:?} (scripts/prereqs.sh installs it): {error}"));
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{command:?} failed:\n{text}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `kubectl kustomize` of a folder under `deploy/k8s`.
fn render(folder: &str) -> String {
    run(tool("kubectl").arg("kustomize").arg(root().join("deploy/k8s").join(folder)))
}

/// The local overlay, rendered into a file of its own, for the tools that read files.
fn rendered_file() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("booking-lab-k8s-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rendered.yaml");
    std::fs::write(&file, render("overlays/kind")).unwrap();
    file
}

/// The rendered objects of the local overlay (the base and everything it needs).
fn objects() -> Vec<Yaml> {
    YamlLoader::load_from_str(&render("overlays/kind")).expect("kustomize renders YAML").into_iter().filter(|doc| !doc.is_null()).collect()
}

fn find<'a>(objects: &'a [Yaml], kind: &str, name: &str) -> &'a Yaml {
    objects
        .iter()
        .find(|object| object["kind"].as_str() == Some(kind) && object["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name} in the rendered manifests"))
}

fn list(yaml: &Yaml) -> &[Yaml] {
    yaml.as_vec().map_or(&[], Vec::as_slice)
}

/// The one container of a workload's pod template.
fn container(workload: &Yaml) -> &Yaml {
    let containers = list(&workload["spec"]["template"]["spec"]["containers"]);
    assert_eq!(containers.len(), 1, "one container: {workload:?}");
    &containers[0]
}

/// The variables `booking-service SUBCOMMAND --help` names.
fn accepted_env(subcommand: &str) -> BTreeSet<String> {
    let help = run(Command::new(env!("CARGO_BIN_EXE_booking-service")).args([subcommand, "--help"]));
    help.split("[env: ").skip(1).map(|rest| rest.split(['=', ']']).next().unwrap().to_owned()).collect()
}

/// Every variable a container gets: its own `env`, and every key of the
/// ConfigMaps it takes whole (`envFrom`).
fn env_of(objects: &[Yaml], container: &Yaml) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = list(&container["env"]).iter().filter_map(|var| var["name"].as_str().map(str::to_owned)).collect();
    for source in list(&container["envFrom"]) {
        let name = source["configMapRef"]["name"].as_str().expect("envFrom takes ConfigMaps only");
        let map = find(objects, "ConfigMap", name);
        names.extend(map["data"].as_hash().expect("data").keys().filter_map(|key| key.as_str().map(str::to_owned)));
    }
    names
}

fn int(yaml: &Yaml) -> i64 {
    yaml.as_i64().unwrap_or_else(|| yaml.as_str().and_then(|text| text.parse().ok()).unwrap_or_else(|| panic!("not a number: {yaml:?}")))
}

#[test]
fn the_base_and_the_local_overlay_render() {
    let base = render("base");
    assert!(base.contains("kind: Deployment"), "{base}");
    let kinds: BTreeSet<String> = objects().iter().filter_map(|object| object["kind"].as_str().map(str::to_owned)).collect();
    for kind in
        ["Deployment", "Job", "Service", "Ingress", "PodDisruptionBudget", "HorizontalPodAutoscaler", "StatefulSet", "Secret", "ConfigMap", "Namespace"]
    {
        assert!(kinds.contains(kind), "the overlay has a {kind}: {kinds:?}");
    }
    for statefulset in ["postgres", "redis", "etcd"] {
        find(&objects(), "StatefulSet", statefulset);
    }
}

#[test]
fn every_object_validates_against_the_pinned_kubernetes_schemas() {
    let file = rendered_file();
    let out = run(tool("kubernetes-validate").args(["--strict", "--kubernetes-version", KUBERNETES_VERSION]).arg(&file));
    let objects = objects().len();
    let valid = out.lines().filter(|line| line.contains("passed for resource")).count();
    assert_eq!(valid, objects, "every one of the {objects} objects is valid for Kubernetes {KUBERNETES_VERSION}:\n{out}");
}

#[test]
fn checkov_passes_and_every_skipped_check_says_why() {
    let file = rendered_file();
    let out = run(tool("checkov").args(["--framework", "kubernetes", "--quiet", "--compact", "--skip-download", "-f"]).arg(&file));
    assert!(!out.contains("FAILED for resource"), "{out}");

    for object in objects() {
        let Some(annotations) = object["metadata"]["annotations"].as_hash() else { continue };
        for (key, value) in annotations {
            let key = key.as_str().unwrap_or_default();
            if key.starts_with("checkov.io/skip") {
                let value = value.as_str().unwrap_or_default();
                let (check, reason) = value.split_once('=').unwrap_or_else(|| panic!("{key}: {value} names no reason"));
                assert!(check.starts_with("CKV"), "{key} names a check: {value}");
                assert!(reason.split_whitespace().count() >= 6, "{key} skips {check} with a reason of a sentence: {reason:?}");
            }
        }
    }
}

#[test]
fn the_replicas_keep_the_lab_s_guarantees_through_a_rolling_update() {
    let objects = objects();
    let deployment = find(&objects, "Deployment", "booking");
    let spec = &deployment["spec"];
    assert_eq!(int(&spec["replicas"]), 3);
    assert_eq!(spec["strategy"]["type"].as_str(), Some("RollingUpdate"));
    assert_eq!(int(&spec["strategy"]["rollingUpdate"]["maxUnavailable"]), 0, "a rolling update never removes a replica before its successor is ready");

    let pod = &spec["template"]["spec"];
    let booking = container(deployment);
    assert_eq!(booking["readinessProbe"]["httpGet"]["path"].as_str(), Some("/ready"));
    assert_eq!(booking["livenessProbe"]["httpGet"]["path"].as_str(), Some("/health"));
    assert!(booking["startupProbe"]["httpGet"]["path"].as_str().is_some(), "a startup probe");

    // SIGTERM drains requests for up to REQUEST_DEADLINE_MS after the pre-stop pause.
    let config = find(&objects, "ConfigMap", deployment_config_name(booking).as_str());
    let deadline_secs = int(&config["data"]["REQUEST_DEADLINE_MS"]) / 1000;
    let pause = int(&booking["lifecycle"]["preStop"]["sleep"]["seconds"]);
    assert!(pause > 0, "a pre-stop pause, so endpoints drop the pod before it stops accepting");
    let grace = int(&pod["terminationGracePeriodSeconds"]);
    assert!(grace > pause + deadline_secs, "grace {grace} s outlasts the pause {pause} s and the request deadline {deadline_secs} s");

    assert!(pod["securityContext"]["runAsNonRoot"].as_bool() == Some(true), "non-root");
    assert!(booking["securityContext"]["readOnlyRootFilesystem"].as_bool() == Some(true), "read-only root filesystem");
    for resource in ["cpu", "memory"] {
        assert!(!booking["resources"]["requests"][resource].is_badvalue(), "a {resource} request");
        assert!(!booking["resources"]["limits"][resource].is_badvalue(), "a {resource} limit");
    }
    let instance_id = list(&booking["env"]).iter().find(|var| var["name"].as_str() == Some("INSTANCE_ID")).expect("INSTANCE_ID is set");
    assert_eq!(instance_id["valueFrom"]["fieldRef"]["fieldPath"].as_str(), Some("metadata.name"), "the instance id is the pod's name");
    let annotations = &spec["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"].as_str(), Some("true"), "Prometheus finds every pod");

    let budget = find(&objects, "PodDisruptionBudget", "booking");
    assert_eq!(int(&budget["spec"]["maxUnavailable"]), 1);
    let hpa = find(&objects, "HorizontalPodAutoscaler", "booking");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"].as_str(), Some("booking"));
    assert_eq!(list(&hpa["spec"]["metrics"])[0]["resource"]["name"].as_str(), Some("cpu"));
}

fn deployment_config_name(container: &Yaml) -> String {
    list(&container["envFrom"])[0]["configMapRef"]["name"].as_str().expect("a ConfigMap").to_owned()
}

#[test]
fn every_variable_the_manifests_set_is_one_the_binary_reads() {
    let objects = objects();
    let serve = accepted_env("serve");
    let booking = container(find(&objects, "Deployment", "booking"));
    let set = env_of(&objects, booking);
    let unknown: Vec<_> = set.difference(&serve).collect();
    assert!(unknown.is_empty(), "the Deployment sets variables `booking-service serve` does not read: {unknown:?}");
    for needed in ["DATABASE_URL", "REDIS_URL", "REDLOCK_URLS", "ETCD_ENDPOINTS", "ADMIN_TOKEN", "INSTANCE_ID", "LISTEN_ADDR"] {
        assert!(set.contains(needed), "the Deployment sets {needed}");
    }

    let migrate = accepted_env("migrate");
    let job = find(&objects, "Job", "booking-migrate");
    let set = env_of(&objects, container(job));
    let unknown: Vec<_> = set.difference(&migrate).collect();
    assert!(unknown.is_empty(), "the migration Job sets variables `booking-service migrate` does not read: {unknown:?}");
    assert_eq!(list(&container(job)["args"])[0].as_str(), Some("migrate"));

    // Every Secret a container reads from exists, with the key it reads.
    for workload in [find(&objects, "Deployment", "booking"), job] {
        for var in list(&container(workload)["env"]) {
            let reference = &var["valueFrom"]["secretKeyRef"];
            if let (Some(name), Some(key)) = (reference["name"].as_str(), reference["key"].as_str()) {
                let secret = find(&objects, "Secret", name);
                assert!(!secret["data"][key].is_badvalue(), "Secret {name} has {key}");
            }
        }
    }
}

#[test]
fn the_probes_the_ports_and_the_image_are_the_service_s_own() {
    let objects = objects();
    let deployment = find(&objects, "Deployment", "booking");
    let booking = container(deployment);

    // The probe paths are operations of the API document.
    let document = serde_json::to_value(booking_server::http::openapi_document(true)).unwrap();
    for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
        let path = booking[probe]["httpGet"]["path"].as_str().unwrap_or_else(|| panic!("{probe} is an HTTP GET"));
        assert!(document["paths"][path]["get"].is_object(), "{probe}: GET {path} is in the API");
        assert_eq!(booking[probe]["httpGet"]["port"].as_str(), Some("http"), "{probe} asks the named port");
    }

    // The named port is the one the replica listens on, and the Service sends there.
    let port = list(&booking["ports"]).iter().find(|port| port["name"].as_str() == Some("http")).expect("a port named http");
    let config = find(&objects, "ConfigMap", deployment_config_name(booking).as_str());
    let listen = config["data"]["LISTEN_ADDR"].as_str().expect("LISTEN_ADDR");
    assert_eq!(listen.rsplit(':').next().map(str::parse::<i64>), Some(Ok(int(&port["containerPort"]))), "LISTEN_ADDR {listen}");
    let service = find(&objects, "Service", "booking");
    assert_eq!(list(&service["spec"]["ports"])[0]["targetPort"].as_str(), Some("http"));
    for ingress in objects.iter().filter(|object| object["kind"].as_str() == Some("Ingress")) {
        for rule in list(&ingress["spec"]["rules"]) {
            for path in list(&rule["http"]["paths"]) {
                assert_eq!(path["backend"]["service"]["name"].as_str(), Some("booking"));
            }
        }
    }

    // The image is the one Compose builds from the Dockerfile, tagged with the crate's version.
    let compose = std::fs::read_to_string(root().join("docker-compose.yml")).unwrap();
    let compose = YamlLoader::load_from_str(&compose).unwrap().remove(0);
    let built = compose["services"]["booking"]["image"].as_str().expect("Compose names the image it builds");
    let expected = format!("{built}:{}", env!("CARGO_PKG_VERSION"));
    for workload in [deployment, find(&objects, "Job", "booking-migrate")] {
        assert_eq!(container(workload)["image"].as_str(), Some(expected.as_str()));
    }
    assert!(Path::new(&root().join("Dockerfile")).exists());
}
