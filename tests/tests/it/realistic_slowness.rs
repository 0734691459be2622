//! skiff against a slow AWS (issue 19): the local endpoint's model of slow
//! readiness (NAT gateways `pending`, load balancers `provisioning`,
//! instances booting) and slow deletes (NAT gateways `deleting` and holding
//! their address, subnet and internet gateway; a deleted load balancer's
//! network interfaces lingering in its subnets and security groups;
//! terminated instances `shutting-down` and holding their interfaces), each
//! behaviour alone and all together, at a twentieth of AWS's durations.
//!
//! What each lifecycle test pins, on the HA private reference cluster:
//! apply converges (the next preview is empty); the endpoint holds exactly
//! what an apply on an endpoint without the behaviours holds (the
//! inventory's shape), without duplicates or orphans; a forced rolling
//! update of a node group and a control-plane group (`--cloudonly`)
//! converges again; delete leaves nothing of the cluster, no network
//! interface and no instance that is not terminated. Wall times are printed
//! for the report.
//!
//! And: a holder that outlasts a delete's budget (`SKIFF_DEPENDENCY_TIMEOUT`)
//! makes the delete fail with an error naming it (the lingering interface's
//! description); the next delete, with the default budget, waits it out.
//!
//! Everything is checked through harness-tagged SDK clients and the store's
//! bytes, never through skiff.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use skiff_tests::{LocalAwsOptions, Realism};
use tokio::sync::OnceCell;

use crate::common::cloud::{Bench, CLUSTER};

/// AWS's durations run at this share of real time.
const SCALE: f64 = 0.05;
/// Instances boot for 60 s of AWS time (3 s here).
const BOOT_MS: u64 = 60_000;
/// The groups the rolling update replaces (one node, one control-plane).
const ROLLED: &str = "nodes-us-east-1a,control-plane-us-east-1a";

fn options(realism: Realism) -> LocalAwsOptions {
    LocalAwsOptions {
        latency_ms: 2,
        boot_ms: BOOT_MS,
        realism,
        ..LocalAwsOptions::default()
    }
}

/// The inventory shape of an apply on an endpoint with none of the slow
/// behaviours (instances still boot), made once for every test.
async fn baseline() -> &'static BTreeMap<String, Vec<String>> {
    static BASELINE: OnceCell<BTreeMap<String, Vec<String>>> = OnceCell::const_new();
    BASELINE
        .get_or_init(|| async {
            let mut bench = Bench::start_with(options(Realism::scaled(SCALE))).await;
            bench.fresh_cluster().await;
            bench.apply_command().run().assert_success();
            let inventory = bench.inventory().await;
            assert!(
                inventory.duplicates().is_empty() && inventory.count() >= 35,
                "the baseline apply is not what the tests compare with: {inventory:#?}"
            );
            inventory.shape()
        })
        .await
}

/// The categories of `actual` that differ from `expected`, side by side.
fn difference(
    expected: &BTreeMap<String, Vec<String>>,
    actual: &BTreeMap<String, Vec<String>>,
) -> String {
    let mut lines = Vec::new();
    for category in expected.keys().chain(actual.keys()) {
        let (want, got) = (expected.get(category), actual.get(category));
        if want != got && !lines.iter().any(|line: &String| line.starts_with(category)) {
            lines.push(format!(
                "{category}:\n    expected {want:?}\n    got      {got:?}"
            ));
        }
    }
    lines.join("\n  ")
}

/// Network interfaces and instances not yet terminated, on the whole
/// endpoint (it holds only the cluster). Without the slow NAT deletes and
/// terminations moto itself keeps a deleted NAT gateway's and a terminated
/// instance's interfaces forever (AWS does not): then only the load
/// balancer's interfaces, which only the model makes, count.
async fn leftovers(bench: &Bench, realism: &Realism) -> Vec<String> {
    let everything = realism.nat_delete_ms > 0 && realism.terminate_ms > 0;
    let ec2 = &bench.clients.ec2;
    let mut left: Vec<String> = ec2
        .describe_network_interfaces()
        .send()
        .await
        .expect("describe network interfaces")
        .network_interfaces()
        .iter()
        .filter(|interface| {
            everything
                || interface
                    .description()
                    .unwrap_or_default()
                    .starts_with("ELB ")
        })
        .map(|interface| {
            format!(
                "{} {:?}",
                interface.network_interface_id().unwrap_or_default(),
                interface.description()
            )
        })
        .collect();
    let reservations = ec2
        .describe_instances()
        .send()
        .await
        .expect("describe instances");
    for instance in reservations
        .reservations()
        .iter()
        .flat_map(|reservation| reservation.instances())
    {
        let state = instance
            .state()
            .and_then(|state| state.name())
            .map(|name| name.as_str())
            .unwrap_or_default();
        if everything && state != "terminated" {
            left.push(format!(
                "{} {state}",
                instance.instance_id().unwrap_or_default()
            ));
        }
    }
    left
}

/// Apply, zero-diff re-plan, the inventory of an endpoint without the
/// behaviours, a forced rolling update, delete, nothing left.
async fn lifecycle(what: &str, realism: Realism) {
    let expected = baseline().await;
    let mut bench = Bench::start_with(options(realism.clone())).await;
    bench.fresh_cluster().await;

    let applied = bench.apply_command().run();
    applied.assert_success();
    bench.assert_converged(&format!("{what}: after apply"));
    let inventory = bench.inventory().await;
    assert!(
        inventory.duplicates().is_empty(),
        "{what}: duplicates after apply: {:?}",
        inventory.duplicates()
    );
    bench.assert_no_orphans(&inventory, &format!("{what}: after apply"));
    let shape = inventory.shape();
    assert!(
        &shape == expected,
        "{what}: the endpoint differs from an apply without the behaviour\n  {}",
        difference(expected, &shape)
    );

    let rolled = bench
        .skiff([
            "rolling-update",
            "cluster",
            CLUSTER,
            "--yes",
            "--cloudonly",
            "--force",
            "--instance-group",
            ROLLED,
            "--validation-interval",
            "100ms",
            "--validation-timeout",
            "60s",
        ])
        .run();
    rolled.assert_success();
    bench.assert_converged(&format!("{what}: after the rolling update"));
    let inventory = bench.inventory().await;
    assert!(
        inventory.duplicates().is_empty(),
        "{what}: duplicates after the rolling update: {:?}",
        inventory.duplicates()
    );
    bench.assert_no_orphans(&inventory, &format!("{what}: after the rolling update"));

    let deleted = bench.delete_command().run();
    deleted.assert_success();
    let left = bench.inventory().await;
    assert_eq!(
        left.count(),
        0,
        "{what}: the delete left resources of the cluster: {left:#?}\n{deleted}"
    );
    let leftovers = leftovers(&bench, &realism).await;
    assert!(
        leftovers.is_empty(),
        "{what}: after the delete the endpoint still holds {leftovers:?}\n{deleted}"
    );
    eprintln!(
        "{what}: apply {:.1}s, rolling update {:.1}s, delete {:.1}s (time scale {SCALE})",
        applied.duration.as_secs_f64(),
        rolled.duration.as_secs_f64(),
        deleted.duration.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_nat_gateways_converge() {
    lifecycle(
        "NAT gateways pending 90 s",
        Realism {
            nat_ready_ms: 90_000,
            ..Realism::scaled(SCALE)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_load_balancers_converge() {
    lifecycle(
        "load balancer provisioning 150 s",
        Realism {
            lb_ready_ms: 150_000,
            ..Realism::scaled(SCALE)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_nat_gateway_deletes_converge() {
    lifecycle(
        "NAT gateways deleting 60 s",
        Realism {
            nat_delete_ms: 60_000,
            ..Realism::scaled(SCALE)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lingering_load_balancer_interfaces_converge() {
    lifecycle(
        "load balancer interfaces lingering 120 s",
        Realism {
            lb_eni_linger_ms: 120_000,
            ..Realism::scaled(SCALE)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_terminations_converge() {
    lifecycle(
        "instances shutting down 30 s",
        Realism {
            terminate_ms: 30_000,
            ..Realism::scaled(SCALE)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_slow_behaviour_together_converges() {
    lifecycle(
        "all five slow behaviours",
        Realism {
            nat_ready_ms: 90_000,
            lb_ready_ms: 150_000,
            nat_delete_ms: 60_000,
            lb_eni_linger_ms: 120_000,
            terminate_ms: 30_000,
            ..Realism::scaled(SCALE)
        },
    )
    .await;
}

/// A load balancer's interfaces outlast the delete's budget: the delete
/// fails naming them; once they are gone the next delete finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_outlasting_the_budget_is_named_in_the_error() {
    // 400 s of AWS time: 20 s here, against a budget of 3 s.
    let realism = Realism {
        lb_eni_linger_ms: 400_000,
        ..Realism::scaled(SCALE)
    };
    let mut bench = Bench::start_with(options(realism.clone())).await;
    bench.fresh_cluster().await;
    bench.apply_command().run().assert_success();

    let started = Instant::now();
    let refused = bench
        .delete_command()
        .env("SKIFF_DEPENDENCY_TIMEOUT", "3s")
        .run();
    refused.assert_no_panic();
    assert_eq!(refused.code, Some(1), "the delete fails\n{refused}");
    assert!(
        refused.stderr.contains("DependencyViolation")
            && refused.stderr.contains("still held after"),
        "the error says the resource is still held\n{refused}"
    );
    assert!(
        refused.stderr.contains("ELB net/"),
        "the error names the load balancer's lingering interface\n{refused}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the budget bounded the wait: {:?}",
        started.elapsed()
    );

    for line in refused
        .stderr
        .lines()
        .filter(|line| line.contains("still held"))
    {
        eprintln!("the refused delete said: {line}");
    }

    let deleted = bench.delete_command().run();
    deleted.assert_success();
    assert_eq!(bench.inventory().await.count(), 0, "{deleted}");
    assert!(leftovers(&bench, &realism).await.is_empty(), "{deleted}");
}
