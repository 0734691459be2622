//! What the benchmark binaries (`bench_plan`, `bench_rollout`) share: which
//! `skiff` they run, and how they print their tables.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;

use crate::Stats;

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

/// Parses the value of a list option such as `--groups 1,10,50`: counts of
/// at least 1, separated by commas; the error names `option`.
pub fn parse_counts<T>(option: &str, list: &str) -> Result<Vec<T>, String>
where
    T: FromStr + PartialOrd + From<u8>,
{
    list.split(',')
        .map(|count| {
            count
                .trim()
                .parse::<T>()
                .ok()
                .filter(|count| *count >= T::from(1))
                .ok_or_else(|| format!("{option}: {count:?} is not a count >= 1"))
        })
        .collect()
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
