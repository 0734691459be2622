//! `skiff get clusters` over an S3 store shared by many clusters (10, 100
//! and 500 in one bucket), at the injected latency per call: the listing
//! lists the clusters and the lock hints side by side, then reads each
//! cluster's spec (and the lock of each hinted one: none here), and those
//! reads go out in parallel (`StateStore::cluster_summaries`), so the wall
//! time is a few round trips and about one read per cluster.
//!
//! The buckets are filled directly through the harness (uncounted, not
//! delayed): one cluster is created with skiff, and its `spec.yaml` is
//! copied under each name, so setting up 500 clusters takes seconds.

use std::time::Duration;

use skiff_tests::bench::BenchCloud;
use skiff_tests::LocalAwsOptions;

use crate::Settings;

/// How many clusters each bucket holds.
pub const COUNTS: [usize; 3] = [10, 100, 500];

/// Timed runs per bucket after one warm-up run; the median is reported.
const RUNS: usize = 5;

/// How many clusters skiff reads at once (`skiff_state`'s listing).
const LISTING_PARALLELISM: usize = 32;

/// The cluster created with skiff, whose spec the others copy.
const TEMPLATE: &str = "template.example.com";

/// The target of issue 19: 100 clusters listed in under half a second.
const TARGET_CLUSTERS: usize = 100;
const TARGET_WALL: Duration = Duration::from_millis(500);

/// One bucket's runs.
#[derive(Clone, Debug)]
pub struct Listing {
    /// Clusters in the bucket.
    pub clusters: usize,
    /// Wall times, sorted, fastest first.
    pub walls: Vec<Duration>,
    /// S3 calls of one run, by action.
    pub calls: Vec<(String, u64)>,
    /// skiff's CPU time (user and system) in the median run.
    pub skiff_cpu: Duration,
    /// The endpoint's CPU time in the median run: moto serves requests
    /// one at a time under Python's lock, so with many calls in flight
    /// this, not the latency, is what the wall time is made of.
    pub endpoint_cpu: Duration,
}

impl Listing {
    /// The median run.
    pub fn median(&self) -> Duration {
        self.walls
            .get(self.walls.len() / 2)
            .copied()
            .unwrap_or_default()
    }

    /// The round trips the listing costs when the endpoint answers at once
    /// after its latency: opening the store (`HeadBucket`), the listings
    /// (clusters and lock hints side by side), then one per
    /// [`LISTING_PARALLELISM`] clusters (spec, and lock when hinted, side by
    /// side).
    pub fn round_trips(&self) -> usize {
        2 + self.clusters.div_ceil(LISTING_PARALLELISM)
    }

    /// Every call of one run.
    pub fn total_calls(&self) -> u64 {
        self.calls.iter().map(|(_, count)| count).sum()
    }
}

/// The section's result.
#[derive(Clone, Debug)]
pub struct Listings {
    /// Milliseconds injected before every call.
    pub latency_ms: u64,
    /// One per bucket size, in [`COUNTS`] order.
    pub listings: Vec<Listing>,
}

/// Fills a bucket per count and times `get clusters` over each.
pub async fn measure(settings: &Settings) -> Result<Listings, String> {
    eprintln!(
        "== get clusters over S3, {} ms per call",
        settings.latency_ms
    );
    let cloud = BenchCloud::start(LocalAwsOptions {
        latency_ms: settings.latency_ms,
        ..LocalAwsOptions::default()
    })
    .await?;
    cloud.succeed(cloud.skiff(&["create", "cluster", TEMPLATE, "--zones", "us-east-1a"]))?;
    let template = cloud
        .aws
        .get_object(&cloud.bucket, &format!("{TEMPLATE}/spec.yaml"))
        .ok_or("the template cluster has no spec.yaml")?;
    let template = String::from_utf8(template).map_err(|error| error.to_string())?;

    let mut listings = Vec::new();
    for clusters in COUNTS {
        let bucket = cloud
            .aws
            .create_unique_bucket(&format!("listing-{clusters}"));
        for index in 0..clusters {
            let name = cluster_name(index);
            cloud.aws.put_object(
                &bucket,
                &format!("{name}/spec.yaml"),
                template.replace(TEMPLATE, &name).as_bytes(),
            );
        }
        let store = format!("s3://{bucket}");
        // (wall, skiff CPU, endpoint CPU) of each timed run.
        let mut runs = Vec::with_capacity(RUNS);
        let mut calls = Vec::new();
        for run in 0..=RUNS {
            cloud.aws.reset_stats();
            let output = cloud.succeed(
                skiff_tests::Skiff::new(&cloud.aws, &cloud.home)
                    .args(["get", "clusters", "--state", &store])
                    .timeout(skiff_tests::bench::RUN_TIMEOUT),
            )?;
            let listed = output
                .stdout
                .lines()
                .filter(|line| line.starts_with('c') && line.contains(".example.com"))
                .count();
            if listed != clusters {
                return Err(format!(
                    "get clusters listed {listed} of {clusters} clusters:\n{output}"
                ));
            }
            // The first run is a warm-up (the page cache, the connection).
            if run > 0 {
                let stats = cloud.aws.stats();
                runs.push((
                    output.duration,
                    output.cpu,
                    Duration::from_millis(stats.cpu_ms),
                ));
                calls = stats
                    .calls
                    .into_iter()
                    .filter(|(call, _)| call.starts_with("s3:") || call.starts_with("sts:"))
                    .collect();
            }
        }
        runs.sort();
        let (_, skiff_cpu, endpoint_cpu) = runs.get(runs.len() / 2).copied().unwrap_or_default();
        let listing = Listing {
            clusters,
            walls: runs.iter().map(|(wall, _, _)| *wall).collect(),
            calls,
            skiff_cpu,
            endpoint_cpu,
        };
        eprintln!(
            "   {clusters} clusters: median {:.0} ms, {} calls, endpoint CPU {:.0} ms",
            milliseconds(listing.median()),
            listing.total_calls(),
            milliseconds(listing.endpoint_cpu)
        );
        listings.push(listing);
    }
    Ok(Listings {
        latency_ms: settings.latency_ms,
        listings,
    })
}

/// The name of the `index`th copy: `c000.example.com`, ...
fn cluster_name(index: usize) -> String {
    format!("c{index:03}.example.com")
}

impl Listings {
    /// The section's table, and its target.
    pub fn print(&self) {
        println!();
        println!(
            "skiff get clusters over S3, {} ms per call, median of {RUNS} runs:",
            self.latency_ms
        );
        println!(
            "  {:>8}  {:>9}  {:>9}  {:>9}  {:>9}  {:>12}  {:>11}  {:>6}  calls",
            "clusters",
            "min ms",
            "median ms",
            "max ms",
            "skiff CPU",
            "endpoint CPU",
            "latency ms",
            "total"
        );
        println!(
            "  (latency ms = round trips x latency: what the calls cost one after another, \
             {LISTING_PARALLELISM} clusters at a time; the endpoint's CPU comes on top, as moto \
             serves one request at a time)"
        );
        for listing in &self.listings {
            let calls: Vec<String> = listing
                .calls
                .iter()
                .map(|(call, count)| format!("{call} {count}"))
                .collect();
            println!(
                "  {:>8}  {:>9.0}  {:>9.0}  {:>9.0}  {:>9.0}  {:>12.0}  {:>11}  {:>6}  {}",
                listing.clusters,
                milliseconds(listing.walls.first().copied().unwrap_or_default()),
                milliseconds(listing.median()),
                milliseconds(listing.walls.last().copied().unwrap_or_default()),
                milliseconds(listing.skiff_cpu),
                milliseconds(listing.endpoint_cpu),
                listing.round_trips() as u64 * self.latency_ms,
                listing.total_calls(),
                calls.join(", ")
            );
        }
        if let Some(listing) = self
            .listings
            .iter()
            .find(|listing| listing.clusters == TARGET_CLUSTERS)
        {
            let met = listing.median() < TARGET_WALL;
            println!(
                "  [{}] get clusters over S3 with {TARGET_CLUSTERS} clusters at {} ms per call under {} ms: median {:.0} ms",
                if met { "met" } else { "NOT MET" },
                self.latency_ms,
                TARGET_WALL.as_millis(),
                milliseconds(listing.median())
            );
        }
    }
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
