//! The comparison as a picture: one SVG with two bar charts side by side,
//! throughput and p99 latency per strategy, the strategies that let a double
//! booking through in red. `compare` writes it next to its JSON and CSV.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::compare::Row;

const SIZE: (u32, u32) = (1100, 420);
const SAFE: RGBColor = RGBColor(52, 101, 164);
const DOUBLE_BOOKED: RGBColor = RGBColor(204, 0, 0);

/// Draws `rows` into an SVG file at `path`.
pub fn write_svg(rows: &[Row], path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let (title, body) = root.split_vertically(36);
    title.draw(&Text::new(
        "Each strategy under the same contended load (red: double-booked)",
        (16, 10),
        ("sans-serif", 18).into_font().color(&BLACK),
    ))?;
    let (left, right) = body.split_horizontally(SIZE.0 / 2);
    bars(&left, rows, "throughput, requests/s", |row| row.requests_per_sec, 0)?;
    bars(&right, rows, "p99 latency, ms", |row| row.p99_ms, 1)?;
    root.present()?;
    Ok(())
}

/// One horizontal bar per strategy, its value written at the bar's end.
fn bars<DB>(area: &DrawingArea<DB, Shift>, rows: &[Row], caption: &str, value: impl Fn(&Row) -> f64, decimals: usize) -> anyhow::Result<()>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    // plotters counts from the bottom up; the table reads from the top down.
    let slot = |index: usize| rows.len() - 1 - index;
    let name_at = |slot_index: usize| rows.get(rows.len().checked_sub(1 + slot_index)?).map(|row| row.strategy.to_string());
    let top = rows.iter().map(&value).fold(0.0, f64::max).max(1.0) * 1.2;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(28)
        .y_label_area_size(90)
        // An integer range is closed in plotters: 0..n - 1 makes n slots.
        .build_cartesian_2d(0.0..top, (0..rows.len().saturating_sub(1)).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_labels(rows.len())
        .y_label_formatter(&|segment| match segment {
            SegmentValue::CenterOf(slot_index) => name_at(*slot_index).unwrap_or_default(),
            _ => String::new(),
        })
        .draw()?;
    chart.draw_series(rows.iter().enumerate().map(|(index, row)| {
        let color = if row.double_bookings > 0 { DOUBLE_BOOKED } else { SAFE };
        let mut bar = Rectangle::new([(0.0, SegmentValue::Exact(slot(index))), (value(row), SegmentValue::Exact(slot(index) + 1))], color.filled());
        bar.set_margin(4, 4, 0, 0);
        bar
    }))?;
    chart.draw_series(rows.iter().enumerate().map(|(index, row)| {
        Text::new(format!(" {:.*}", decimals, value(row)), (value(row), SegmentValue::CenterOf(slot(index))), ("sans-serif", 13))
    }))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use booking_server::domain::StrategyName;

    use super::*;

    fn row(strategy: StrategyName, double_bookings: u64, requests_per_sec: f64, p99_ms: f64) -> Row {
        Row {
            strategy,
            attempts: 100,
            confirmed: 50,
            failed: 50,
            double_bookings,
            p50_ms: p99_ms / 2.0,
            p99_ms,
            requests_per_sec,
            optimistic_retries: 0,
            lock_contentions: 0,
            errors: 0,
            replicas: BTreeMap::new(),
        }
    }

    #[test]
    fn every_strategy_gets_a_bar_in_both_charts_and_double_booking_is_red() {
        let rows = [row(StrategyName::None, 7, 541.0, 75.8), row(StrategyName::Pessimistic, 0, 561.0, 67.7)];
        let path = std::env::temp_dir().join(format!("chart-{}.svg", std::process::id()));
        write_svg(&rows, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        // plotters writes each text on a line of its own.
        let texts: Vec<&str> = svg.lines().map(str::trim).collect();
        for expected in ["none", "pessimistic", "throughput, requests/s", "p99 latency, ms", "541", "75.8"] {
            assert!(texts.contains(&expected), "{expected:?} is not drawn");
        }
        // The strategies read from the top down, in the table's order: the y
        // of a label is on the `<text` line before it.
        let label_y = |label: &str| -> f64 {
            let line = texts.iter().position(|text| *text == label).unwrap();
            let tag = texts[line - 1];
            let y = tag.split(" y=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap();
            y.parse().unwrap()
        };
        assert!(label_y("none") < label_y("pessimistic"), "the first row is drawn on top");
        let bars = |color: &str| svg.lines().filter(|line| line.starts_with("<rect") && line.contains(color)).count();
        assert_eq!((bars("#CC0000"), bars("#3465A4")), (2, 2), "one bar per strategy and chart, red where it double-booked");
    }
}
