//! What the benchmark (`src/bin/bench`) needs from the harness: which
//! `skiff` it runs, a fresh endpoint with a state store and a hosted zone,
//! option parsing, and how it prints its tables.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde_json::Value;

use crate::{LocalAws, LocalAwsOptions, SandboxHome, Skiff, SkiffOutput, Stats};

/// The hosted zone every benchmark cluster's DNS name lives in.
pub const HOSTED_ZONE: &str = "example.com";

/// A run may take long: a first apply of 100 groups at 50 ms a call takes
/// minutes, not seconds.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(3600);

/// A fresh local endpoint (with the injected latency) holding an empty
/// state-store bucket and the hosted zone [`HOSTED_ZONE`], and a sandboxed
/// home to run `skiff` in.
pub struct BenchCloud {
    /// The endpoint.
    pub aws: LocalAws,
    /// The home of every `skiff` run.
    pub home: SandboxHome,
    /// The state-store bucket.
    pub bucket: String,
    /// `s3://BUCKET`.
    pub store: String,
}

impl BenchCloud {
    /// Starts the endpoint with `options` and creates the bucket and the
    /// hosted zone (as the harness: neither is delayed nor counted).
    pub async fn start(options: LocalAwsOptions) -> Result<BenchCloud, String> {
        // Warmed up: moto's start-up is no part of what skiff costs.
        let options = LocalAwsOptions {
            warm_up: true,
            ..options
        };
        let aws = LocalAws::try_start_with(options).map_err(|error| error.to_string())?;
        let bucket = aws.create_unique_bucket("bench");
        aws_sdk_route53::Client::new(&aws.sdk_config().await)
            .create_hosted_zone()
            .name(HOSTED_ZONE)
            .caller_reference("bench")
            .send()
            .await
            .map_err(|error| format!("creating the hosted zone: {error}"))?;
        Ok(BenchCloud {
            store: format!("s3://{bucket}"),
            bucket,
            home: SandboxHome::new(),
            aws,
        })
    }

    /// `skiff ARGS --state STORE`, with [`RUN_TIMEOUT`].
    pub fn skiff(&self, arguments: &[&str]) -> Skiff {
        Skiff::new(&self.aws, &self.home)
            .args(arguments)
            .args(["--state", &self.store])
            .timeout(RUN_TIMEOUT)
    }

    /// Runs `skiff`; its whole output as the error unless it exits 0.
    pub fn succeed(&self, skiff: Skiff) -> Result<SkiffOutput, String> {
        let output = skiff.run();
        if output.success() {
            Ok(output)
        } else {
            Err(output.to_string())
        }
    }

    /// The names of the cluster's instance groups (`skiff get ig -o json`).
    pub fn group_names(&self, cluster: &str) -> Result<Vec<String>, String> {
        let listed = self.succeed(self.skiff(&["get", "ig", "--name", cluster, "-o", "json"]))?;
        let list: Value = serde_json::from_str(&listed.stdout)
            .map_err(|error| format!("`get ig -o json` is not JSON ({error}):\n{listed}"))?;
        Ok(list["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item["metadata"]["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Changes one instance group's spec: `get ig GROUP -o json`, `edit`,
    /// `replace -f -` (JSON is YAML).
    pub fn edit_group(
        &self,
        cluster: &str,
        group: &str,
        edit: &dyn Fn(&mut Value),
    ) -> Result<(), String> {
        let listed =
            self.succeed(self.skiff(&["get", "ig", "--name", cluster, group, "-o", "json"]))?;
        let list: Value = serde_json::from_str(&listed.stdout)
            .map_err(|error| format!("`get ig -o json` is not JSON ({error}):\n{listed}"))?;
        let mut document = list["items"]
            .get(0)
            .cloned()
            .ok_or_else(|| format!("`get ig {group} -o json` lists no group:\n{listed}"))?;
        edit(&mut document);
        self.succeed(
            self.skiff(&["replace", "-f", "-", "--name", cluster])
                .stdin(document.to_string()),
        )?;
        Ok(())
    }
}

/// Command-line options as `--name value` pairs, for the benchmark's
/// hand-rolled parser (only the CLI crate depends on clap).
pub struct Options {
    arguments: std::vec::IntoIter<String>,
}

impl Options {
    /// The process's arguments after the program name.
    pub fn from_env() -> Options {
        Options {
            arguments: std::env::args().skip(1).collect::<Vec<_>>().into_iter(),
        }
    }

    /// The next option name, if any.
    pub fn next_name(&mut self) -> Option<String> {
        self.arguments.next()
    }

    /// The value of option `name`, which must follow it.
    pub fn value(&mut self, name: &str) -> Result<String, String> {
        self.arguments
            .next()
            .ok_or_else(|| format!("{name} needs a value"))
    }

    /// The value of option `name` as a number.
    pub fn number<T: FromStr>(&mut self, name: &str) -> Result<T, String> {
        let text = self.value(name)?;
        text.parse()
            .map_err(|_| format!("{name}: {text:?} is not a number"))
    }

    /// The value of option `name` as a count of at least 1.
    pub fn count<T>(&mut self, name: &str) -> Result<T, String>
    where
        T: FromStr + PartialOrd + From<u8>,
    {
        parse_count(name, &self.value(name)?)
    }

    /// The value of option `name` as a list of counts of at least 1,
    /// separated by commas (`--groups 1,10,50`).
    pub fn counts<T>(&mut self, name: &str) -> Result<Vec<T>, String>
    where
        T: FromStr + PartialOrd + From<u8>,
    {
        self.value(name)?
            .split(',')
            .map(|count| parse_count(name, count))
            .collect()
    }
}

/// Runs the `skiff` of the same build profile as the running binary
/// (`target/<profile>/skiff`), unless `SKIFF_BIN` says otherwise.
///
/// Sets `SKIFF_BIN`: call it at the start of `main`, before any other
/// thread exists.
pub fn use_skiff_of_this_profile() {
    if std::env::var_os("SKIFF_BIN").is_some() {
        return;
    }
    let beside: Option<PathBuf> = std::env::current_exe()
        .ok()
        .and_then(|binary| binary.parent().map(|dir| dir.join("skiff")));
    if let Some(path) = beside.filter(|path| path.is_file()) {
        // Single-threaded at this point: no other thread reads the environment.
        std::env::set_var("SKIFF_BIN", path);
    }
}

/// Parses one count of at least 1; the error names `option`.
fn parse_count<T>(option: &str, text: &str) -> Result<T, String>
where
    T: FromStr + PartialOrd + From<u8>,
{
    text.trim()
        .parse::<T>()
        .ok()
        .filter(|count| *count >= T::from(1))
        .ok_or_else(|| format!("{option}: {text:?} is not a count >= 1"))
}

/// Prints `title` between blank lines, then a table of every call counted
/// by action: a column per measured run, headed by its name (a count of 0
/// where a run did not make that call).
pub fn print_calls_by_action(title: &str, columns: &[(String, &Stats)]) {
    let mut actions: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (column, (_, stats)) in columns.iter().enumerate() {
        for (call, count) in &stats.calls {
            actions
                .entry(call.as_str())
                .or_insert_with(|| vec![0; columns.len()])[column] = *count;
        }
    }
    println!();
    println!("{title}");
    println!();
    let mut header = vec!["action".to_string()];
    header.extend(columns.iter().map(|(name, _)| name.clone()));
    let mut rows = vec![header];
    for (action, counts) in actions {
        let mut row = vec![action.to_string()];
        row.extend(counts.iter().map(ToString::to_string));
        rows.push(row);
    }
    print_rows(&rows);
}

/// Prints aligned columns: the first, and any cell that is not a number,
/// left-aligned; numbers right-aligned.
pub fn print_rows(rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            rows.iter()
                .filter_map(|row| row.get(column))
                .map(String::len)
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(column, cell)| {
                let left = column == 0 || cell.parse::<f64>().is_err();
                if left {
                    format!("{cell:<width$}", width = widths[column])
                } else {
                    format!("{cell:>width$}", width = widths[column])
                }
            })
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
}
