//! The benchmark's table: timings of an operation, their median and p95,
//! and the ratio to the floor measured in the same run. Every bench of the
//! workspace prints its rows through here.

use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub operation: String,
    pub median_ms: f64,
    pub p95_ms: f64,
    pub floor_ms: Option<f64>,
    pub ratio: Option<f64>,
    /// What the issue asks for, in words.
    pub target: String,
}

/// Timings of one operation.
pub struct Samples(pub Vec<Duration>);

impl Samples {
    fn ms(&self, q: f64) -> f64 {
        let mut v: Vec<f64> = self.0.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        v[i]
    }
    pub fn median(&self) -> f64 {
        self.ms(0.5)
    }
    pub fn p95(&self) -> f64 {
        self.ms(0.95)
    }
}

/// A row of the table: `s` against `floor` (a median in ms).
pub fn row(operation: &str, s: &Samples, floor: Option<f64>, target: &str) -> Row {
    let median = s.median();
    Row {
        operation: operation.into(),
        median_ms: median,
        p95_ms: s.p95(),
        floor_ms: floor,
        ratio: floor.map(|f| median / f),
        target: target.into(),
    }
}

/// Prints rows as the table `vmhost bench` shows.
pub fn print_table(rows: &[Row]) {
    println!(
        "{:<34} {:>10} {:>10} {:>10} {:>8}  target",
        "operation", "median", "p95", "floor", "ratio"
    );
    for r in rows {
        // Rows of megabytes or requests per second name their unit.
        let unit = if r.operation.ends_with("(MB)")
            || r.operation.ends_with("(MB/s)")
            || r.operation.ends_with("(s)")
            || r.operation.contains("requests/s")
        {
            ""
        } else {
            " ms"
        };
        let floor = r.floor_ms.map_or("-".into(), |f| format!("{f:.2}{unit}"));
        let ratio = r.ratio.map_or("-".into(), |x| format!("{x:.2}x"));
        println!(
            "{:<34} {:>10} {:>10} {:>10} {:>8}  {}",
            r.operation,
            format!("{:.2}{unit}", r.median_ms),
            format!("{:.2}{unit}", r.p95_ms),
            floor,
            ratio,
            r.target
        );
    }
}
