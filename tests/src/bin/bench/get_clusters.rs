//! `skiff get clusters` on a local (`file://`) store: the start-up cost of
//! the binary plus reading the store, with no AWS at all (the runs point
//! the SDK at a closed port, so a call would fail).

use std::time::Duration;

use skiff_tests::{SandboxHome, Skiff};

use crate::clusters::CLUSTER;

/// Timed runs after one warm-up run.
const RUNS: usize = 10;

/// The wall times of [`RUNS`] runs, sorted.
#[derive(Clone, Debug)]
pub struct GetClusters {
    /// Sorted, fastest first.
    pub walls: Vec<Duration>,
}

impl GetClusters {
    /// The median run.
    pub fn median(&self) -> Duration {
        self.walls
            .get(self.walls.len() / 2)
            .copied()
            .unwrap_or_default()
    }
}

/// Creates one cluster in a local store, then times `get clusters`.
pub fn measure() -> Result<GetClusters, String> {
    eprintln!("== get clusters on a local store");
    let home = SandboxHome::new();
    let store = format!("file://{}", home.join("store").display());
    let skiff = |arguments: &[&str]| {
        Skiff::offline(&home)
            .args(arguments)
            .args(["--state", &store])
    };
    let created = skiff(&["create", "cluster", CLUSTER, "--zones", "us-east-1a"]).run();
    if !created.success() {
        return Err(created.to_string());
    }
    let mut walls = Vec::with_capacity(RUNS);
    for run in 0..=RUNS {
        let output = skiff(&["get", "clusters"]).run();
        if !output.success() || !output.stdout.contains(CLUSTER) {
            return Err(output.to_string());
        }
        // The first run warms the page cache.
        if run > 0 {
            walls.push(output.duration);
        }
    }
    walls.sort();
    Ok(GetClusters { walls })
}
