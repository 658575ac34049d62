//! The lab's subcommands of `booking-service`, and what each runs.
//!
//! The `booking-service` command (the workspace's root package) flattens
//! [`LabCommand`] beside the server's own subcommands, so the two wings share
//! one command line and nothing else.

use anyhow::Context;
use booking_server::domain::StrategyName;
use clap::Subcommand;

use crate::config::{AuditConfig, CompareConfig, ExercisesConfig, FaultsConfig, FlashSaleConfig, FlipConfig};
use crate::{audit, compare, exercises, faults, flash_sale, flip, progress};

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// The README's exercise for every strategy against a running cluster:
    /// concurrent bookings of one seat, counted per strategy and replica.
    Exercises(ExercisesConfig),
    /// Every strategy under the same contended load through the load
    /// balancer: a measured table of bookings, double bookings, latency,
    /// throughput, retries and contentions.
    Compare(CompareConfig),
    /// A flash sale through the load balancer, for every strategy: many more
    /// customers than seats hold, pay and confirm; some walk away, some pay
    /// too late. Exits 1 when a seat is sold twice or a strategy that
    /// holds grants two holds on one seat.
    FlashSale(FlashSaleConfig),
    /// Switching is a race too: contended bookings through the load balancer
    /// while the strategy flips among the safe ones; then what the database
    /// holds against what the clients were told.
    Flip(FlipConfig),
    /// An independent audit of what Postgres holds (and, given a client
    /// history, of what clients were told): exits 1 when an invariant of a
    /// safe strategy is broken.
    Audit(AuditConfig),
    /// The fault lab: break the running native cluster on purpose (through
    /// scripts/cluster.sh) and see what every strategy does about it.
    Faults(FaultsConfig),
}

impl LabCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            Self::Exercises(config) => run_exercises(config).await,
            Self::Compare(config) => run_compare(config).await,
            Self::FlashSale(config) => run_flash_sale(config).await,
            Self::Flip(config) => run_flip(config).await,
            Self::Audit(config) => run_audit(config).await,
            Self::Faults(config) => run_faults(config).await,
        }
    }
}

async fn run_faults(config: FaultsConfig) -> anyhow::Result<()> {
    let lab = faults::Lab {
        lb: config.target.client()?,
        replicas: config.replica_urls.iter().map(|url| config.target.client_of(url)).collect::<anyhow::Result<_>>()?,
        control: faults::control::Control::from_env(),
        database_url: config.database_url,
        soak: std::time::Duration::from_secs(config.soak_secs),
        soak_seed: config.seed,
        history_file: config.history,
        crash_commits: config.synchronous_commit,
    };
    let scenarios = if config.scenarios.is_empty() { faults::Scenario::ALL.to_vec() } else { config.scenarios };
    let mut reports = Vec::new();
    let progress = progress::Ticker::steps(scenarios.len());
    for scenario in scenarios {
        progress.println(format!("==> {scenario:?}"));
        progress.step(format!("{scenario:?}"));
        let report = faults::run(&lab, scenario).await?;
        if !config.json {
            progress.suspend(|| println!("{}", faults::markdown(&report)));
        }
        reports.push(report);
    }
    progress.finish();
    if config.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    anyhow::ensure!(reports.iter().all(faults::Report::as_taught), "a scenario did not go as the lesson says: see UNEXPECTED above");
    Ok(())
}

async fn run_audit(config: AuditConfig) -> anyhow::Result<()> {
    let pool = sqlx::PgPool::connect(&config.database_url).await.context("cannot reach the database to audit (is the cluster up?)")?;
    let mut findings = audit::check(&pool, config.event).await?;
    if let Some(path) = &config.history {
        let history = audit::read_history(path)?;
        findings.extend(audit::check_history(&pool, &history).await?);
        eprintln!("checked {} history lines from {}", history.len(), path.display());
    }
    if config.json {
        println!("{}", serde_json::to_string_pretty(&findings)?);
    } else {
        print!("{}", audit::report(&findings));
    }
    if findings.iter().any(|finding| !finding.expected) {
        std::process::exit(1);
    }
    Ok(())
}

async fn run_flip(config: FlipConfig) -> anyhow::Result<()> {
    let client = config.target.client()?;
    let settings = flip::Settings {
        strategies: if config.strategies.is_empty() { StrategyName::SAFE.to_vec() } else { config.strategies },
        duration: config.load.duration_or(15.0),
        concurrency: config.load.concurrency.into(),
        contenders: config.load.contenders.into(),
        interval: std::time::Duration::from_millis(config.interval_ms),
    };
    eprintln!(
        "booking contended seats with {} clients for {} s, switching among {} every {} ms",
        settings.concurrency,
        settings.duration.as_secs_f64(),
        settings.strategies.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
        config.interval_ms
    );
    let progress = progress::Ticker::over(settings.duration);
    let report = flip::run(&client, &settings, &progress).await?;
    progress.finish();
    if config.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", flip::table(&report));
    }
    anyhow::ensure!(report.consistent(), "the database does not hold what the clients were told");
    Ok(())
}

async fn run_exercises(config: ExercisesConfig) -> anyhow::Result<()> {
    let client = config.target.client()?;
    let strategies = if config.strategies.is_empty() { StrategyName::ALL.to_vec() } else { config.strategies };
    let results = exercises::run(&client, &strategies, config.event_id, &config.seat, config.concurrency.into()).await?;
    if config.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        print!("{}", exercises::table(&results));
    }
    Ok(())
}

async fn run_flash_sale(config: FlashSaleConfig) -> anyhow::Result<()> {
    anyhow::ensure!(config.pay_min_ms <= config.pay_max_ms, "--pay-min-ms must not be above --pay-max-ms");
    let client = config.target.client()?;
    let strategies = if config.strategies.is_empty() { StrategyName::ALL.to_vec() } else { config.strategies };
    let settings = flash_sale::Settings {
        customers: config.customers.into(),
        rows: config.rows.into(),
        seats_per_row: config.seats_per_row.into(),
        ttl: std::time::Duration::from_millis(config.ttl_ms),
        abandon: config.abandon,
        pay_min: std::time::Duration::from_millis(config.pay_min_ms),
        pay_max: std::time::Duration::from_millis(config.pay_max_ms),
        limit: std::time::Duration::from_secs_f64(config.limit_secs),
    };
    eprintln!(
        "flash sale: {} customers, {} seats, holds of {} ms, {:.0} % walk away, payment {}..{} ms",
        settings.customers,
        settings.seats(),
        config.ttl_ms,
        settings.abandon * 100.0,
        config.pay_min_ms,
        config.pay_max_ms
    );
    let rows = flash_sale::run(&client, &strategies, &settings).await?;
    if config.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", flash_sale::markdown(&rows));
    }
    let broken: Vec<&str> =
        strategies.iter().zip(&rows).filter(|(strategy, row)| !row.as_taught(**strategy)).map(|(_, row)| row.strategy.as_str()).collect();
    anyhow::ensure!(broken.is_empty(), "the sale did not go as the lesson says under: {}", broken.join(", "));
    Ok(())
}

async fn run_compare(config: CompareConfig) -> anyhow::Result<()> {
    let client = config.target.client()?;
    let strategies = if config.strategies.is_empty() { StrategyName::ALL.to_vec() } else { config.strategies };
    let settings = compare::Settings {
        duration: config.load.duration_or(5.0),
        concurrency: config.load.concurrency.into(),
        contenders: config.load.contenders.into(),
    };
    let rows = compare::run(&client, &strategies, &settings).await?;
    if config.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", compare::markdown(&rows));
    }
    compare::write_files(&rows, &config.output_dir)?;
    eprintln!("wrote {0}/comparison.json, {0}/comparison.csv and {0}/comparison.svg", config.output_dir.display());
    Ok(())
}
