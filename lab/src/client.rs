//! A typed client for the booking API, as the lab tools and tests use it.

use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// What one booking request came back with.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    /// `X-Instance-Id` of the replica that served it.
    pub instance: Option<String>,
    pub body: Value,
}

impl Answer {
    async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let instance = response.headers().get("x-instance-id").and_then(|value| value.to_str().ok()).map(str::to_owned);
        let body = response.json().await.unwrap_or(Value::Null);
        Self { status, instance, body }
    }

    /// `confirmed`, `double_booked`, `failed`, or `error` for anything else.
    pub fn outcome(&self) -> &str {
        match (self.status, self.body["status"].as_str()) {
            (StatusCode::OK, Some(status @ ("confirmed" | "double_booked"))) => status,
            (StatusCode::CONFLICT, Some("failed")) => "failed",
            _ => "error",
        }
    }
}

/// Answers counted by what they say, and by the replica that served them.
#[derive(Debug, Default, Clone)]
pub struct AnswerCounts {
    pub confirmed: usize,
    pub double_booked: usize,
    pub failed: usize,
    /// Neither a booking nor a 409: a 5xx, or no answer at all.
    pub errors: usize,
    /// Refusals by `reason`.
    pub reasons: std::collections::BTreeMap<String, usize>,
    pub replicas: std::collections::BTreeMap<String, usize>,
}

impl AnswerCounts {
    pub fn record(&mut self, answer: anyhow::Result<Answer>) {
        let Ok(answer) = answer else {
            self.errors += 1;
            return;
        };
        match answer.outcome() {
            "confirmed" => self.confirmed += 1,
            "double_booked" => self.double_booked += 1,
            "failed" => {
                self.failed += 1;
                let reason = answer.body["reason"].as_str().unwrap_or("unknown").to_owned();
                *self.reasons.entry(reason).or_default() += 1;
            }
            _ => self.errors += 1,
        }
        *self.replicas.entry(answer.instance.unwrap_or_else(|| "unknown".into())).or_default() += 1;
    }

    /// Every answer counted, errors included.
    pub fn total(&self) -> usize {
        self.confirmed + self.double_booked + self.failed + self.errors
    }

    pub fn merge(&mut self, other: AnswerCounts) {
        self.confirmed += other.confirmed;
        self.double_booked += other.double_booked;
        self.failed += other.failed;
        self.errors += other.errors;
        for (reason, count) in other.reasons {
            *self.reasons.entry(reason).or_default() += count;
        }
        for (replica, count) in other.replicas {
            *self.replicas.entry(replica).or_default() += count;
        }
    }
}

/// The HTTP client every LabClient uses, sending `headers` with each request.
fn http_client(headers: reqwest::header::HeaderMap) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).default_headers(headers).build()
}

#[derive(Clone)]
pub struct LabClient {
    base_url: String,
    http: reqwest::Client,
    /// Tries of a booking that got no answer (with the same key).
    tries: u64,
    /// Whether bookings carry an `Idempotency-Key`.
    keys: bool,
}

impl LabClient {
    pub fn new(base_url: &str) -> anyhow::Result<Self> {
        let http = http_client(reqwest::header::HeaderMap::new())?;
        Ok(Self { base_url: base_url.trim_end_matches('/').to_owned(), http, tries: 3, keys: true })
    }

    /// The same client, sending `Authorization: Bearer <token>` with every
    /// request (the replicas' `ADMIN_TOKEN`); `None` sends none.
    pub fn with_admin_token(mut self, token: Option<&str>) -> anyhow::Result<Self> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = token.filter(|token| !token.is_empty()) {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .context("ADMIN_TOKEN must be printable ASCII, without line breaks")?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        self.http = http_client(headers)?;
        Ok(self)
    }

    /// The same client, but bookings carry no key, and one that gets no
    /// answer is not sent again (it could book twice): the client is left
    /// not knowing.
    pub fn without_keys(mut self) -> Self {
        self.keys = false;
        self.tries = 1;
        self
    }

    /// The same client, but a booking that gets no answer is not sent again:
    /// whatever the client sees is what the cluster (nginx included) did.
    pub fn without_retries(mut self) -> Self {
        self.tries = 1;
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A GET, sent again when it got no answer at all (up to the client's
    /// tries, as for a booking): a GET changes nothing, and a kept-alive
    /// connection can close under a request that was on its way (nginx
    /// reloading, say), which every HTTP client has to allow for.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let mut tries = 0;
        let response = loop {
            tries += 1;
            match self.http.get(format!("{}{path}", self.base_url)).send().await {
                Ok(response) => break response,
                Err(_) if tries < self.tries => tokio::time::sleep(Duration::from_millis(50 * tries)).await,
                Err(error) => return Err(error).with_context(|| self.unreachable()),
            }
        };
        json_or_error(response, path).await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        let response = self.http.delete(format!("{}{path}", self.base_url)).send().await.with_context(|| self.unreachable())?;
        json_or_error(response, path).await
    }

    pub async fn post_json(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let response =
            self.http.post(format!("{}{path}", self.base_url)).json(&body).send().await.with_context(|| self.unreachable())?;
        json_or_error(response, path).await
    }

    /// The sum of every series of counter `name` in `/metrics` (0 when the
    /// replica exports none).
    pub async fn counter(&self, name: &str) -> anyhow::Result<f64> {
        let response = self.http.get(format!("{}/metrics", self.base_url)).send().await.with_context(|| self.unreachable())?;
        let text = response.error_for_status()?.text().await?;
        Ok(text
            .lines()
            .filter(|line| line.strip_prefix(name).is_some_and(|rest| rest.starts_with(['{', ' '])))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }

    fn unreachable(&self) -> String {
        format!("cannot reach {} (is the cluster up? scripts/cluster.sh up)", self.base_url)
    }

    pub async fn set_strategy(&self, strategy: &str) -> anyhow::Result<Value> {
        self.post_json("/admin/strategy", json!({ "strategy": strategy })).await
    }

    pub async fn reset(&self, event_id: i64) -> anyhow::Result<Value> {
        self.post_json(&format!("/admin/reset?event_id={event_id}"), json!({})).await
    }

    /// How many bookings hold the seat (1 when it is booked once, 0 when free).
    pub async fn holders(&self, event_id: i64, seat: &str) -> anyhow::Result<u64> {
        let found = self.get(&format!("/admin/double-bookings?event_id={event_id}")).await?;
        let doubled = found["double_bookings"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|entry| entry["seat_number"] == seat)
            .and_then(|entry| entry["booking_count"].as_u64());
        if let Some(count) = doubled {
            return Ok(count);
        }
        let seat = self.get(&format!("/events/{event_id}/seats/{seat}")).await?;
        Ok(u64::from(seat["is_booked"] == true))
    }

    /// Who the database says holds the seat (`booked_by`), if it is booked.
    pub async fn booked_by(&self, event_id: i64, seat: &str) -> anyhow::Result<Option<String>> {
        let found = self.get(&format!("/events/{event_id}/seats/{seat}")).await?;
        Ok(found["booked_by"].as_str().filter(|_| found["is_booked"] == true).map(str::to_owned))
    }

    /// The `X-Instance-Id` of whichever replica answers `GET /health`.
    pub async fn whoami(&self) -> anyhow::Result<String> {
        let response = self.http.get(format!("{}/health", self.base_url)).send().await.with_context(|| self.unreachable())?;
        let instance = response.headers().get("x-instance-id").and_then(|value| value.to_str().ok());
        instance.map(str::to_owned).context("the answer has no X-Instance-Id")
    }

    /// One booking with a fresh `Idempotency-Key`; any HTTP answer is an
    /// `Answer`, only a transport failure is an error.
    pub async fn book(&self, event_id: i64, seat: &str, customer: &str) -> anyhow::Result<Answer> {
        self.book_with_key(event_id, seat, customer, &uuid::Uuid::new_v4().to_string()).await
    }

    /// `POST /holds`: one hold request; any HTTP answer is an `Answer`.
    pub async fn hold(&self, event_id: i64, seat: &str, customer: &str, ttl_ms: u64) -> anyhow::Result<Answer> {
        let body = json!({ "event_id": event_id, "seat_number": seat, "customer_id": customer, "ttl_ms": ttl_ms });
        let response = self.http.post(format!("{}/holds", self.base_url)).json(&body).send().await.with_context(|| self.unreachable())?;
        Ok(Answer::read(response).await)
    }

    /// `POST /holds/{id}/confirm` with the key `key`; like a booking, a
    /// confirm that got no answer is sent again with the same key.
    pub async fn confirm_hold(&self, hold_id: i64, key: &str) -> anyhow::Result<Answer> {
        let mut tries = 0;
        loop {
            tries += 1;
            let sent = self.http.post(format!("{}/holds/{hold_id}/confirm", self.base_url)).header("idempotency-key", key).send().await;
            match sent {
                Ok(response) => return Ok(Answer::read(response).await),
                Err(_) if tries < self.tries => tokio::time::sleep(Duration::from_millis(50 * tries)).await,
                Err(error) => return Err(error).with_context(|| self.unreachable()),
            }
        }
    }

    /// `DELETE /holds/{id}`.
    pub async fn release_hold(&self, hold_id: i64) -> anyhow::Result<Answer> {
        let response = self.http.delete(format!("{}/holds/{hold_id}", self.base_url)).send().await.with_context(|| self.unreachable())?;
        Ok(Answer::read(response).await)
    }

    /// One booking with the key `key`. A transport failure (no answer: the
    /// replica died, nginx reloaded under a kept-alive connection) is retried
    /// with the same key, so it can never book twice: up to three tries
    /// (see [`LabClient::without_retries`]).
    pub async fn book_with_key(&self, event_id: i64, seat: &str, customer: &str, key: &str) -> anyhow::Result<Answer> {
        let body = json!({ "event_id": event_id, "seat_number": seat, "customer_id": customer });
        let mut tries = 0;
        let response = loop {
            tries += 1;
            let mut request = self.http.post(format!("{}/book", self.base_url)).json(&body);
            if self.keys {
                request = request.header("idempotency-key", key);
            }
            let sent = request.send().await;
            match sent {
                Ok(response) => break response,
                Err(_) if tries < self.tries => tokio::time::sleep(Duration::from_millis(50 * tries)).await,
                Err(error) => return Err(error).with_context(|| self.unreachable()),
            }
        };
        Ok(Answer::read(response).await)
    }
}

async fn json_or_error(response: reqwest::Response, path: &str) -> anyhow::Result<Value> {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{path} answered {status}: {}", body["error"].as_str().unwrap_or("no error message"));
    }
    Ok(body)
}
