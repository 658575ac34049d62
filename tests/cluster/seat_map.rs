//! The seat map in a real browser: Debian's headless Chromium, driven over
//! WebDriver (chromedriver), against a native cluster of three replicas
//! through nginx. Screenshots land in `target/test-artefacts/seat-map/`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::harness::{NativeCluster, ports};

/// chromedriver and one headless Chromium session, stopped when dropped.
struct Browser {
    client: Client,
    driver: Child,
    _port: ports::Reserved,
}

impl Browser {
    async fn start(width: u32, height: u32) -> Self {
        let port = ports::reserve();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={}", port.port))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (apt-get install chromium chromium-driver, or scripts/prereqs.sh)");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({ "binary": "/usr/bin/chromium", "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", format!("--window-size={width},{height}")] }),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector).capabilities(capabilities.clone()).connect(&format!("http://127.0.0.1:{}", port.port)).await {
                Ok(client) => break client,
                Err(error) if Instant::now() < deadline => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => panic!("no WebDriver session from chromedriver: {error}"),
            }
        };
        Self { client, driver, _port: port }
    }

    async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.expect("script")
    }

    /// Polls `script` (an expression) until it is true, for at most `seconds`.
    async fn wait_for(&self, what: &str, seconds: u64, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            if self.js(&format!("return Boolean({script});")).await == json!(true) {
                return;
            }
            if Instant::now() > deadline {
                self.screenshot(&format!("failed-{}", what.replace(' ', "-"))).await;
                panic!("{what}: not true within {seconds} s: {script}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn click(&self, css: &str) {
        self.client.find(Locator::Css(css)).await.unwrap_or_else(|_| panic!("no {css}")).click().await.expect("click");
    }

    async fn type_into(&self, css: &str, text: &str) {
        let input = self.client.find(Locator::Css(css)).await.unwrap_or_else(|_| panic!("no {css}"));
        input.clear().await.expect("clear");
        input.send_keys(text).await.expect("type");
    }

    async fn switch_strategy(&self, strategy: &str) {
        self.client.find(Locator::Css("#strategy-select")).await.unwrap().select_by_value(strategy).await.expect("select");
        self.click("#strategy-button").await;
        let every = format!("[...document.querySelectorAll('#replicas tr')].filter(r => r.dataset.strategy === '{strategy}').length === 3");
        self.wait_for(&format!("every replica shows {strategy}"), 10, &every).await;
    }

    /// Races the seat with the page's own button; returns the answers' statuses.
    async fn race(&self, seat: &str, customers: u32) -> Vec<String> {
        self.click(&format!(".seat[data-seat='{seat}']")).await;
        self.type_into("#race-count", &customers.to_string()).await;
        self.click("#race-button").await;
        self.wait_for("every answer listed", 20, &format!("document.querySelectorAll('#race-results tr').length === {customers}")).await;
        let statuses = self.js("return [...document.querySelectorAll('#race-results tr')].map(r => r.cells[2].textContent);").await;
        serde_json::from_value(statuses).expect("statuses")
    }

    async fn holders(&self, seat: &str) -> u64 {
        let value = self.js(&format!("return Number(document.querySelector(\".seat[data-seat='{seat}']\").dataset.holders);")).await;
        value.as_u64().expect("a number")
    }

    async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artefacts/seat-map");
        std::fs::create_dir_all(&dir).expect("artefact folder");
        let path = dir.join(format!("{name}.png"));
        if let Ok(png) = self.client.screenshot().await {
            std::fs::write(&path, png).expect("screenshot");
        }
        path
    }

    async fn quit(self) {
        let _ = self.client.clone().close().await;
    }
}

/// chromedriver (and the browser it started) goes away with the test, a
/// failing one too.
impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seat_map_shows_the_race_live_through_nginx() {
    let cluster = NativeCluster::up(3);
    let browser = Browser::start(1280, 800).await;
    browser.client.goto(&format!("{}/?event=1", cluster.lb_url)).await.expect("open the page through nginx");
    browser.wait_for("the stream is live", 15, "document.querySelector('#stream-status').classList.contains('live')").await;
    browser.wait_for("three replicas listed", 10, "document.querySelectorAll('#replicas tr').length === 3").await;
    browser.js("window.loadedOnce = 'yes';").await;

    // Under `none`, ten customers race A1 with the page's button: several hold it.
    browser.switch_strategy("none").await;
    let answers = browser.race("A1", 10).await;
    let won = answers.iter().filter(|status| *status != "failed").count();
    assert!(won >= 2, "under none several customers should win: {answers:?}");
    browser.wait_for("A1 shows every holder", 5, &format!("document.querySelector(\".seat[data-seat='A1']\").dataset.holders === '{won}'")).await;
    browser.wait_for("A1 stands out", 1, "document.querySelector(\".seat[data-seat='A1']\").dataset.state === 'double'").await;
    let replicas = browser.js("return new Set([...document.querySelectorAll('#race-results tr')].map(r => r.cells[4].textContent)).size;").await;
    assert!(replicas.as_u64().unwrap() >= 2, "the answers name the replicas that served them");
    browser.click(".seat[data-seat='A1']").await;
    browser.wait_for("the holders are listed", 2, &format!("document.querySelectorAll('#holder-list li').length === {won}")).await;
    // The per-replica strip adds up to the race, from the replicas' own counts
    // (their heartbeats carry them, every 2 s).
    let strip = |column: &str| format!("[...document.querySelectorAll('#replicas td.{column}')].reduce((n, td) => n + Number(td.textContent), 0)");
    let added_up = format!("{} === 1 && {} === {} && {} === {}", strip("confirmed"), strip("double_booked"), won - 1, strip("refused"), 10 - won);
    browser.wait_for("the strip adds up to the race", 8, &added_up).await;
    let shot = browser.screenshot("race-none").await;

    // Under `pessimistic`, the same race: exactly one holder.
    browser.switch_strategy("pessimistic").await;
    browser.click("#reset-button").await;
    browser.wait_for("the reset frees A1", 5, "document.querySelector(\".seat[data-seat='A1']\").dataset.state === 'free'").await;
    let answers = browser.race("B1", 10).await;
    assert_eq!(answers.iter().filter(|status| *status == "confirmed").count(), 1, "{answers:?}");
    assert_eq!(answers.iter().filter(|status| *status == "double_booked").count(), 0, "{answers:?}");
    browser.wait_for("B1 is booked", 5, "document.querySelector(\".seat[data-seat='B1']\").dataset.state === 'booked'").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(browser.holders("B1").await, 1, "pessimistic: exactly one holder");
    browser.screenshot("race-pessimistic").await;

    // A booking written with curl on replica-3 appears without a reload.
    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/book", cluster.replica_port_base + 2))
        .json(&json!({ "event_id": 1, "seat_number": "C5", "customer_id": "curl-carol" }))
        .send()
        .await
        .expect("book on replica-3");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    browser.wait_for("C5 appears live", 5, "document.querySelector(\".seat[data-seat='C5']\").dataset.state === 'booked'").await;
    eprintln!("a booking on replica-3 reached the page in {:?}", started.elapsed());
    assert_eq!(browser.js("return window.loadedOnce;").await, json!("yes"), "the page was reloaded");
    let title = browser.js("return document.querySelector(\".seat[data-seat='C5']\").title;").await;
    assert!(title.as_str().unwrap().contains("curl-carol (replica-3)"), "{title}");

    // The replica serving the page's stream dies; a booking made meanwhile on
    // another replica is on the page once the stream reconnects elsewhere.
    let streaming = browser.js("return document.querySelector('#stream-status').dataset.instance;").await;
    let streaming = streaming.as_str().expect("the stream names its replica").to_owned();
    cluster.script(&["kill", &streaming]);
    let other = (1..=3).find(|i| format!("replica-{i}") != streaming).unwrap();
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/book", cluster.replica_port_base + other - 1))
        .json(&json!({ "event_id": 1, "seat_number": "D4", "customer_id": "during-the-outage" }))
        .send()
        .await
        .expect("book on a live replica");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let moved = format!("document.querySelector('#stream-status').dataset.instance !== '{streaming}' && document.querySelector('#stream-status').classList.contains('live')");
    browser.wait_for("the stream reconnects to another replica", 15, &moved).await;
    browser.wait_for("the page resyncs", 5, "document.querySelector(\".seat[data-seat='D4']\").dataset.state === 'booked'").await;
    assert_eq!(browser.js("return window.loadedOnce;").await, json!("yes"), "resynced without a reload");
    cluster.script(&["start", &streaming]);
    browser.wait_for("three replicas again", 15, "document.querySelectorAll('#replicas tr').length === 3").await;

    // The page switches the cluster, and every replica's label follows.
    // ...and races a seat under the consensus lock: one owner.
    browser.switch_strategy("etcd").await;
    let answers = browser.race("E1", 6).await;
    assert_eq!(answers.iter().filter(|status| *status == "confirmed").count(), 1, "etcd: {answers:?}");
    assert_eq!(answers.iter().filter(|status| *status == "double_booked").count(), 0, "etcd: {answers:?}");
    browser.screenshot("switched-etcd").await;

    // Hold, then pay. A hold taken from the page counts down on its seat,
    // and the seat is back on sale when the hold expires.
    let seat = |name: &str, field: &str| format!("document.querySelector(\".seat[data-seat='{name}']\").dataset.{field}");
    browser.click(".seat[data-seat='F1']").await;
    browser.type_into("#hold-customer", "page-payer").await;
    browser.type_into("#hold-ttl", "3").await;
    browser.click("#hold-button").await;
    browser.wait_for("F1 shows the hold", 5, &format!("{} === 'held'", seat("F1", "state"))).await;
    let left = browser.js(&format!("return Number({});", seat("F1", "remaining"))).await.as_u64().expect("seconds left");
    assert!((1..=3).contains(&left), "F1 counts down from 3 s: {left}");
    let title = browser.js("return document.querySelector(\".seat[data-seat='F1']\").title;").await;
    assert!(title.as_str().unwrap().contains("held by page-payer"), "{title}");
    browser.wait_for("the countdown runs", 3, &format!("Number({}) < {left}", seat("F1", "remaining"))).await;
    browser.screenshot("hold-counting-down").await;
    browser.wait_for("F1 is free again once its hold expired", 8, &format!("{} === 'free'", seat("F1", "state"))).await;
    let hold_id = browser.js("return document.querySelector('#hold-result').textContent;").await;
    let hold_id: i64 = hold_id.as_str().unwrap().split("(hold ").nth(1).and_then(|rest| rest.split(',').next()).and_then(|id| id.parse().ok()).expect("the hold's id on the page");
    let expired = cluster.client().get(&format!("/holds/{hold_id}")).await.expect("the hold");
    assert_eq!(expired["status"], "expired", "{expired}");

    // A hold taken with curl on replica-3 appears live on the page, as held.
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/holds", cluster.replica_port_base + 2))
        .json(&json!({ "event_id": 1, "seat_number": "F2", "customer_id": "curl-dave", "ttl_ms": 60000 }))
        .send()
        .await
        .expect("hold on replica-3");
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    browser.wait_for("F2 appears held, live", 5, &format!("{} === 'held'", seat("F2", "state"))).await;

    // Hold F3 from the page, then pay: the seat is booked.
    browser.click(".seat[data-seat='F3']").await;
    browser.type_into("#hold-ttl", "60").await;
    browser.click("#hold-button").await;
    browser.wait_for("F3 held", 5, &format!("{} === 'held'", seat("F3", "state"))).await;
    browser.click("#confirm-button").await;
    browser.wait_for("F3 booked after paying", 5, &format!("{} === 'booked'", seat("F3", "state"))).await;
    let said = browser.js("return document.querySelector('#hold-result').textContent;").await;
    assert!(said.as_str().unwrap().starts_with("200: Seat F3 booked for page-payer"), "{said}");
    browser.screenshot("hold-confirmed").await;
    browser.quit().await;
    eprintln!("screenshots in {}", shot.parent().unwrap().display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_event_is_summarised_the_page_fits_a_phone_and_asks_for_the_admin_token() {
    let cluster = NativeCluster::up_with(1, &[("ADMIN_TOKEN", "page-token")]);
    let created = cluster
        .client()
        .post_json("/admin/events", json!({ "name": "Stadium", "rows": 200, "seats_per_row": 100 }))
        .await
        .expect("an event of 20 000 seats");
    let event = created["event"]["id"].as_i64().expect("id");
    let browser = Browser::start(390, 844).await;
    let started = Instant::now();
    browser.client.goto(&format!("{}/?event={event}", cluster.lb_url)).await.expect("open");
    browser.wait_for("200 row bars", 20, "document.querySelectorAll('.row-summary').length === 200").await;
    eprintln!("20 000 seats rendered as 200 rows in {:?}", started.elapsed());
    assert_eq!(browser.js("return document.querySelectorAll('.seat').length;").await, json!(0), "no seat is drawn until its row opens");
    browser.click(".row-summary[data-row='B']").await;
    browser.wait_for("row B opens", 5, "document.querySelectorAll(\".seat-row[data-row='B'] .seat\").length === 100").await;
    browser.screenshot("phone-large-event").await;
    let fits = browser.js("return document.documentElement.scrollWidth <= window.innerWidth + 1;").await;
    let wide = browser
        .js("return [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.seat-map, .table-scroll')).slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className);")
        .await;
    assert_eq!(fits, json!(true), "the page scrolls sideways at phone width; too wide: {wide}");
    browser.quit().await;

    let small = Browser::start(390, 844).await;
    small.client.goto(&format!("{}/?event=1", cluster.lb_url)).await.expect("open");
    small.wait_for("100 seats drawn", 10, "document.querySelectorAll('.seat').length === 100").await;
    // The replicas want a token: the page asks for it, then uses it.
    small.wait_for("the page asks for the token", 5, "!document.querySelector('#token-form').hidden").await;
    assert_eq!(small.js("return document.querySelectorAll('#replicas tr').length;").await, json!(0));
    small.type_into("#token-input", "page-token").await;
    small.click("#token-save").await;
    small.wait_for("the replicas appear with the token", 5, "document.querySelectorAll('#replicas tr').length === 1").await;
    assert_eq!(small.js("return sessionStorage.getItem('adminToken');").await, json!("page-token"), "kept for the session");
    small.screenshot("phone-event-1").await;
    small.quit().await;
}
