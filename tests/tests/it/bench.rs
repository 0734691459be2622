//! The benchmark binary (`src/bin/bench`) at its smallest: one instance
//! group, no injected latency. Pins the shape of its output (the run
//! table with its bound and ratio columns, non-zero call counts, the
//! targets list), so that a change that breaks the benchmark shows up in
//! the normal test suite rather than when someone needs the figures.
//! Nothing about time is asserted.

use std::process::Command;

use skiff_tests::skiff_binary;

#[test]
fn the_benchmark_prints_calls_bounds_and_targets_for_one_group() {
    let output = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args([
            "--sections",
            "groups,get-clusters",
            "--groups",
            "1",
            "--latency-ms",
            "0",
        ])
        .env("SKIFF_BIN", skiff_binary())
        .output()
        .expect("run the bench binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "bench failed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );

    let header = stdout
        .lines()
        .find(|line| line.starts_with("cluster "))
        .unwrap_or_else(|| panic!("no run table:\n{stdout}"));
    let columns: Vec<&str> = header.split("  ").map(str::trim).collect();
    for wanted in [
        "calls",
        "peak MiB",
        "path calls",
        "bound s",
        "wall/bound",
        "floor s",
        "wall/floor",
    ] {
        assert!(columns.contains(&wanted), "no {wanted:?} column: {header}");
    }
    for run in [
        "first apply",
        "no-op plan",
        "change plan",
        "change apply",
        "delete cluster",
    ] {
        let line = stdout
            .lines()
            .find(|line| line.starts_with("1 group") && line.contains(run))
            .unwrap_or_else(|| panic!("no {run:?} row:\n{stdout}"));
        // The columns after the run's name: exit, wall, calls, ...
        let figures: Vec<&str> = line
            .split_once(run)
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let calls: u64 = figures
            .get(2)
            .and_then(|calls| calls.parse().ok())
            .unwrap_or_else(|| panic!("no call count in {line:?}"));
        assert!(calls > 0, "{run} made no calls: {line}");
    }
    // A no-op plan lists each cluster-wide kind once: a refresh that looks
    // again for what it recorded but cannot list (the addons, which are
    // store objects) once made every plan list everything four times.
    let actions: Vec<(&str, u64)> = stdout
        .split("no-op plan: calls by action")
        .nth(1)
        .unwrap_or_else(|| panic!("no calls by action of the no-op plan:\n{stdout}"))
        .lines()
        .skip_while(|line| !line.starts_with("action "))
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            Some((words.next()?, words.next()?.parse().ok()?))
        })
        .collect();
    for listing in [
        "autoscaling:DescribeAutoScalingGroups",
        "ec2:DescribeVpcs",
        "ec2:DescribeSubnets",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeLaunchTemplates",
    ] {
        assert_eq!(
            actions
                .iter()
                .find(|(action, _)| *action == listing)
                .map(|(_, calls)| *calls),
            Some(1),
            "{listing} once in a no-op plan: {actions:?}"
        );
    }
    assert!(
        stdout.contains("critical path of the first apply, 1 group"),
        "{stdout}"
    );
    assert!(stdout.contains("targets (issues 8 and 19)"), "{stdout}");
    assert!(stdout.contains("get clusters on a local store"), "{stdout}");
}

#[test]
fn the_realistic_section_prints_each_run_against_its_waits_inclusive_bound() {
    let output = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args([
            "--sections",
            "realistic",
            "--time-scale",
            "0.01",
            "--latency-ms",
            "0",
            "--without-terraform",
        ])
        .env("SKIFF_BIN", skiff_binary())
        .output()
        .expect("run the bench binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "bench failed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );
    assert!(
        stdout.contains(
            "### Realistic AWS (0.01x real time; waits in the bound: NAT gateway ready 0.9 s"
        ),
        "{stdout}"
    );
    for run in ["skiff first apply", "skiff delete"] {
        let line = stdout
            .lines()
            .find(|line| line.starts_with(run))
            .unwrap_or_else(|| panic!("no {run:?} row:\n{stdout}"));
        let figures: Vec<&str> = line[run.len()..].split_whitespace().collect();
        // exit, wall, calls, throttled, bound, wall/bound, chain...
        assert_eq!(figures.first(), Some(&"0"), "{line}");
        let bound: f64 = figures
            .get(4)
            .and_then(|bound| bound.parse().ok())
            .unwrap_or_else(|| panic!("no bound in {line:?}"));
        assert!(
            bound > 0.0,
            "{run}: a bound without the model's waits: {line}"
        );
        assert!(figures.len() > 6 && line.contains("->"), "no chain: {line}");
    }
    assert!(
        stdout.contains("The no-op plan after the apply exited 0 (zero changes)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Terraform was not measured under the model"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Realistic first apply at most 1.15x its waits-inclusive bound"),
        "{stdout}"
    );
}

#[test]
fn the_benchmark_explains_a_bad_option_without_panicking() {
    for arguments in [
        &["--groups", "0"][..],
        &["--sections", "everything"],
        &["--latency-ms"],
        &["--frobnicate"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_bench"))
            .args(arguments)
            .output()
            .expect("run the bench binary");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{arguments:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{arguments:?}: {stderr}");
        assert!(stderr.contains("usage: bench"), "{arguments:?}: {stderr}");
    }
    let help = Command::new(env!("CARGO_BIN_EXE_bench"))
        .arg("--help")
        .output()
        .expect("run the bench binary");
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--sections LIST"));
}
