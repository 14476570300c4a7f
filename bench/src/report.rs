//! Results: JSON for machines, a markdown table for people, and an SVG latency plot.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::Ordering;

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::cpu::{self, CpuTimes};
use crate::tally::{SecondLatency, Tally};

/// Latency percentiles in milliseconds.
#[derive(Debug, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Slowest.
    pub max: f64,
}

impl Percentiles {
    /// The percentiles of a histogram in microseconds.
    pub fn of(histogram: &Histogram<u64>) -> Percentiles {
        let at = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1000.0;
        Percentiles {
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            p999: at(0.999),
            max: histogram.max() as f64 / 1000.0,
        }
    }
}

/// (percentile, latency ms) points from p0 to p99.99, spaced for a log-scale tail.
pub fn curve(histogram: &Histogram<u64>) -> Vec<(f64, f64)> {
    if histogram.is_empty() {
        return Vec::new();
    }
    let mut points = Vec::new();
    for step in 0..=80 {
        // 0, 0.5, 0.75, ... approaching 1: each step halves what is left.
        let quantile = 1.0 - 0.5f64.powf(step as f64 / 6.0);
        let quantile = quantile.min(0.9999);
        points.push((
            quantile * 100.0,
            histogram.value_at_quantile(quantile) as f64 / 1000.0,
        ));
    }
    points.dedup_by(|later, earlier| later.0 == earlier.0);
    points
}

/// One run's results.
#[derive(Debug, Serialize)]
pub struct Results {
    /// Which scenario.
    pub scenario: String,
    /// Users taking part.
    pub users: u64,
    /// Messages per second each sender sent.
    pub rate_per_user: f64,
    /// Seconds of sending.
    pub seconds: u64,
    /// Send frames written.
    pub sent: u64,
    /// `sent` acknowledgements received.
    pub acknowledged: u64,
    /// Error frames and broken connections.
    pub errors: u64,
    /// Distinct messages received from the other party.
    pub delivered: u64,
    /// Messages received more than once.
    pub duplicates: u64,
    /// `delivered` over the sending time.
    pub deliveries_per_second: f64,
    /// End-to-end latency.
    pub latency_ms: Percentiles,
    /// The latency by percentile, for the plot.
    pub latency_curve_ms: Vec<(f64, f64)>,
    /// Each second's deliveries and latency (by when they arrived), to tell a start-up or a
    /// stall from a steady tail.
    pub latency_by_second_ms: Vec<SecondLatency>,
    /// Server CPU seconds during the run (when server pids were given).
    pub server_cpu_seconds: Option<f64>,
    /// Server CPU per delivered message, in microseconds.
    pub server_cpu_us_per_delivery: Option<f64>,
    /// The part of it spent in user space (the rest is the kernel's: system calls and, on
    /// loopback, the TCP work of the receiving end too).
    pub server_user_cpu_us_per_delivery: Option<f64>,
    /// Resident memory of the server processes at the end, summed.
    pub server_rss_bytes: Option<u64>,
}

impl Results {
    /// The results of a run from its tally and the server CPU it used.
    pub async fn from_tally(
        scenario: &str,
        users: u64,
        rate: f64,
        seconds: u64,
        tally: &Tally,
        server_pids: &[u32],
        cpu_used: CpuTimes,
    ) -> Results {
        let latency = tally.latency_us.lock().await;
        let delivered = tally.delivered.load(Ordering::Relaxed);
        let measured = !server_pids.is_empty();
        Results {
            scenario: scenario.into(),
            users,
            rate_per_user: rate,
            seconds,
            sent: tally.sent.load(Ordering::Relaxed),
            acknowledged: tally.acknowledged.load(Ordering::Relaxed),
            errors: tally.errors.load(Ordering::Relaxed),
            delivered,
            duplicates: tally.duplicates.load(Ordering::Relaxed),
            deliveries_per_second: delivered as f64 / seconds.max(1) as f64,
            latency_ms: Percentiles::of(&latency),
            latency_curve_ms: curve(&latency),
            latency_by_second_ms: tally.by_second.lock().await.clone(),
            server_cpu_seconds: measured.then_some(cpu_used.total()),
            server_cpu_us_per_delivery: (measured && delivered > 0)
                .then(|| cpu_used.total() * 1e6 / delivered as f64),
            server_user_cpu_us_per_delivery: (measured && delivered > 0)
                .then(|| cpu_used.user * 1e6 / delivered as f64),
            server_rss_bytes: measured.then(|| {
                server_pids
                    .iter()
                    .filter_map(|pid| cpu::resident_bytes(*pid))
                    .sum()
            }),
        }
    }
}
/// Writes results.json, summary.md and latency.svg into `folder`.
pub fn write(folder: &Path, results: &Results) -> anyhow::Result<()> {
    std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    std::fs::write(
        folder.join("results.json"),
        serde_json::to_string_pretty(results)?,
    )?;
    std::fs::write(folder.join("summary.md"), markdown(results))?;
    let title = format!(
        "natter-bench {}: end-to-end latency by percentile ({} users, {} msg/s each)",
        results.scenario, results.users, results.rate_per_user
    );
    std::fs::write(
        folder.join("latency.svg"),
        latency_svg(&title, &results.latency_curve_ms),
    )?;
    Ok(())
}

/// The results as a markdown table.
pub fn markdown(results: &Results) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "| scenario | users | msg/s per sender | seconds | sent | acknowledged | delivered | \
         duplicates | errors | deliveries/s | p50 ms | p99 ms | max ms | server CPU µs/delivery \
         | of it user space |"
    );
    let _ = writeln!(text, "|{}", "---|".repeat(15));
    let micros =
        |value: Option<f64>| value.map_or("–".to_string(), |micros| format!("{micros:.1}"));
    let cpu = micros(results.server_cpu_us_per_delivery);
    let user_cpu = micros(results.server_user_cpu_us_per_delivery);
    let _ = writeln!(
        text,
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} |",
        results.scenario,
        results.users,
        results.rate_per_user,
        results.seconds,
        results.sent,
        results.acknowledged,
        results.delivered,
        results.duplicates,
        results.errors,
        results.deliveries_per_second,
        results.latency_ms.p50,
        results.latency_ms.p99,
        results.latency_ms.max,
        cpu,
        user_cpu
    );
    text
}

/// Five labels up a vertical axis at `axis_x`, from 0 to `max`, with `decimals` places;
/// `y` places a value on the page.
pub fn value_ticks(
    svg: &mut String,
    axis_x: f64,
    max: f64,
    decimals: usize,
    y: impl Fn(f64) -> f64,
) {
    for step in 0..=4 {
        let value = max * step as f64 / 4.0;
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{value:.decimals$}</text>"#,
            axis_x - 6.0,
            y(value) + 4.0
        );
    }
}

/// Latency by percentile, the tail stretched out (x: log of 1/(1-p)), as a standalone SVG.
pub fn latency_svg(title: &str, points: &[(f64, f64)]) -> String {
    const WIDTH: f64 = 640.0;
    const HEIGHT: f64 = 360.0;
    const MARGIN: f64 = 50.0;
    let tail = |percentile: f64| -(1.0 - percentile / 100.0).max(1e-4).log10();
    let max_x = tail(99.99);
    let max_y = points
        .iter()
        .map(|(_, latency)| *latency)
        .fold(1.0, f64::max);
    let x = |percentile: f64| MARGIN + tail(percentile) / max_x * (WIDTH - 2.0 * MARGIN);
    let y = |latency: f64| HEIGHT - MARGIN - latency / max_y * (HEIGHT - 2.0 * MARGIN);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{MARGIN}" y="24" font-size="14">{title}</text>"#
    );
    // Axes with percentile ticks.
    let _ = writeln!(
        svg,
        r#"<path d="M{MARGIN} {top} V{bottom} H{right}" stroke="black" fill="none"/>"#,
        top = MARGIN,
        bottom = HEIGHT - MARGIN,
        right = WIDTH - MARGIN
    );
    for tick in [0.0, 50.0, 90.0, 99.0, 99.9, 99.99] {
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">p{tick}</text>"#,
            x(tick),
            HEIGHT - MARGIN + 18.0
        );
    }
    value_ticks(&mut svg, MARGIN, max_y, 1, y);
    let _ = writeln!(
        svg,
        r#"<text x="14" y="{:.1}" transform="rotate(-90 14 {:.1})" text-anchor="middle">ms</text>"#,
        HEIGHT / 2.0,
        HEIGHT / 2.0
    );
    let path: Vec<String> = points
        .iter()
        .map(|(percentile, latency)| format!("{:.1},{:.1}", x(*percentile), y(*latency)))
        .collect();
    let _ = writeln!(
        svg,
        r#"<polyline points="{}" stroke="steelblue" stroke-width="2" fill="none"/>"#,
        path.join(" ")
    );
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Results {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
        for micros in 1..=10_000u64 {
            histogram.record(micros * 10).expect("record");
        }
        Results {
            scenario: "direct".into(),
            users: 10,
            rate_per_user: 5.0,
            seconds: 10,
            sent: 500,
            acknowledged: 500,
            errors: 0,
            delivered: 500,
            duplicates: 0,
            deliveries_per_second: 50.0,
            latency_ms: Percentiles::of(&histogram),
            latency_curve_ms: curve(&histogram),
            latency_by_second_ms: Vec::new(),
            server_cpu_seconds: None,
            server_cpu_us_per_delivery: None,
            server_user_cpu_us_per_delivery: None,
            server_rss_bytes: None,
        }
    }

    #[test]
    fn percentiles_and_curve_follow_the_histogram() {
        let results = sample();
        assert!(
            (results.latency_ms.p50 - 50.0).abs() < 0.5,
            "{:?}",
            results.latency_ms
        );
        assert!((results.latency_ms.max - 100.0).abs() < 0.5);
        let curve = &results.latency_curve_ms;
        assert!(
            curve
                .windows(2)
                .all(|pair| pair[0].0 < pair[1].0 && pair[0].1 <= pair[1].1)
        );
        assert!(
            curve
                .last()
                .is_some_and(|(percentile, _)| *percentile > 99.9)
        );
    }

    #[test]
    fn the_summary_and_plot_carry_the_figures() {
        let results = sample();
        let table = markdown(&results);
        assert!(table.contains("| direct | 10 | 5 | 10 | 500 |"), "{table}");
        let svg = latency_svg("title", &results.latency_curve_ms);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("<polyline points=\""));
        assert_eq!(svg.matches("p99.9<").count(), 1);
    }
}
