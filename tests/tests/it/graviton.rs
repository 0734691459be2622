//! Graviton (issue 18, Build 7): an instance group's image is resolved for
//! the architecture of its machine type, as EC2's `DescribeInstanceTypes`
//! reports it, against the local endpoint (moto answers the call from its
//! instance-type catalogue; the images come from `tests/harness/amis.json`,
//! which holds amd64 and arm64 images of both default patterns: moto's
//! `RegisterImage` drops `Architecture`, so test images must come from the
//! catalogue).
//!
//! What each test pins:
//! - `create ig --machine-type m7g.large` gets the arm64 image of the
//!   default pattern, `m7i.large` the amd64 one; the preview, the JSON
//!   and the Markdown plan name each group's architecture; the launch templates built carry
//!   those images; a re-plan after the apply changes nothing;
//! - a `mixedInstancesPolicy` mixing architectures, and an explicit AMI of
//!   the other architecture, are refused by field path and AWS operation
//!   when the spec is written (`replace -f`, `create ig`): the stored spec
//!   is unchanged and no AWS call changed anything; a policy of one
//!   architecture is stored and plans. (The plan refuses the same, for
//!   specs stored otherwise: `plans/src/desired/compute.rs` tests.)
//! - a pattern of the user's matching both architectures gets, per group,
//!   the newest image of the group's architecture.

use crate::common;

use common::cloud::cloud_mutations;
use common::cluster::ClusterFixture;
use serde_json::Value;

/// The newest Ubuntu 24.04 images of `tests/harness/amis.json`, per
/// architecture: what the default pattern resolves to.
const NOBLE_AMD64: &str = "ami-0a9f8e7d6c5b40610";
const NOBLE_ARM64: &str = "ami-0b9f8e7d6c5b40610";

/// The plan's `instanceGroups` entry of `group`.
fn planned_group<'a>(plan: &'a Value, group: &str) -> &'a Value {
    plan["instanceGroups"]
        .as_array()
        .unwrap_or_else(|| panic!("no instanceGroups in the plan:\n{plan:#}"))
        .iter()
        .find(|entry| entry["group"] == group)
        .unwrap_or_else(|| panic!("no instanceGroups entry for {group}:\n{plan:#}"))
}

/// The image of the latest version of a group's launch template.
async fn launched_image(fixture: &ClusterFixture, group: &str) -> String {
    let (id, latest) = fixture.launch_template(group).await;
    let found = fixture
        .clients
        .ec2
        .describe_launch_template_versions()
        .launch_template_id(&id)
        .versions(latest.to_string())
        .send()
        .await
        .expect("describe launch template versions");
    found
        .launch_template_versions()
        .first()
        .and_then(|version| version.launch_template_data())
        .and_then(|data| data.image_id())
        .unwrap_or_else(|| panic!("no image in {group}'s launch template"))
        .to_owned()
}

/// A single-zone cluster with a Graviton group and an Intel group added by
/// `create ig`, not applied.
async fn cluster_with_two_architectures(name: &str) -> ClusterFixture {
    let fixture = ClusterFixture::new(name).await;
    fixture.create_zone("example.com").await;
    fixture.create_cluster(&["--zones", "us-east-1a"]);
    for (group, machine_type) in [("graviton", "m7g.large"), ("intel", "m7i.large")] {
        fixture
            .skiff([
                "create",
                "ig",
                "--name",
                name,
                group,
                "--machine-type",
                machine_type,
                "--min",
                "1",
                "--max",
                "1",
            ])
            .assert_success();
    }
    fixture
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graviton_group_gets_the_arm64_image_and_an_intel_group_the_amd64_one() {
    let fixture = cluster_with_two_architectures("arch1.example.com").await;

    // Both groups keep the default pattern in their spec: the machine type
    // says which of its images they get.
    let spec = fixture.skiff([
        "get",
        "ig",
        "--name",
        &fixture.cluster,
        "graviton",
        "-o",
        "yaml",
    ]);
    spec.assert_success();
    assert!(
        spec.stdout.contains("ubuntu-noble-24.04-amd64-server-*"),
        "{spec}"
    );

    let plan = fixture.plan_json();
    for (group, machine_type, architecture, image) in [
        ("graviton", "m7g.large", "arm64", NOBLE_ARM64),
        ("intel", "m7i.large", "amd64", NOBLE_AMD64),
        ("nodes-us-east-1a", "t3.medium", "amd64", NOBLE_AMD64),
    ] {
        let entry = planned_group(&plan, group);
        assert_eq!(entry["machineType"], machine_type, "{entry:#}");
        assert_eq!(entry["architecture"], architecture, "{entry:#}");
        assert_eq!(entry["imageId"], image, "{entry:#}");
    }
    assert!(
        planned_group(&plan, "graviton")["imageName"]
            .as_str()
            .is_some_and(|name| name.contains("-arm64-server-")),
        "{plan:#}"
    );

    // The preview people read says the same.
    let preview = fixture.skiff(["update", "cluster", &fixture.cluster]);
    preview.assert_success();
    let line = preview
        .stdout
        .lines()
        .find(|line| line.trim_start().starts_with("graviton "))
        .unwrap_or_else(|| panic!("no line for the graviton group:\n{preview}"));
    assert!(
        line.contains("m7g.large") && line.contains("arm64") && line.contains(NOBLE_ARM64),
        "{line}"
    );

    // So does the Markdown plan for reviews.
    let markdown = fixture.skiff(["update", "cluster", &fixture.cluster, "-o", "markdown"]);
    markdown.assert_success();
    assert!(
        markdown.stdout.contains(&format!(
            "| `graviton` | `m7g.large` | arm64 | `{NOBLE_ARM64}`"
        )),
        "{markdown}"
    );

    fixture.apply();
    assert_eq!(launched_image(&fixture, "graviton").await, NOBLE_ARM64);
    assert_eq!(launched_image(&fixture, "intel").await, NOBLE_AMD64);
    fixture.assert_no_changes();
}

/// `replace -f` of `group` with `edit` applied, expected to be refused
/// with every needle in the message, leaving the stored spec as it was and
/// changing nothing in AWS.
fn assert_write_refused(
    fixture: &ClusterFixture,
    group: &str,
    edit: impl FnOnce(&mut serde_norway::Value),
    needles: &[&str],
) {
    let spec_before = fixture.get_object("spec.yaml").expect("a stored spec");
    let current = fixture.skiff(["get", "ig", "--name", &fixture.cluster, group, "-o", "yaml"]);
    current.assert_success();
    let mut document: serde_norway::Value =
        serde_norway::from_str(&current.stdout).expect("one document");
    edit(&mut document);
    let path = fixture.home.write(
        format!("{group}-refused.yaml"),
        serde_norway::to_string(&document).expect("serialize"),
    );
    fixture.aws.reset_stats();
    let output = fixture.skiff([
        "replace".as_ref(),
        "-f".as_ref(),
        path.as_os_str(),
        "--name".as_ref(),
        fixture.cluster.as_ref(),
    ]);
    output.assert_exit(1);
    output.assert_stderr_contains("nothing was stored");
    for needle in needles {
        output.assert_stderr_contains(needle);
    }
    assert_eq!(
        fixture.get_object("spec.yaml").expect("a stored spec"),
        spec_before,
        "the refused write changed the stored spec\n{output}"
    );
    let stats = fixture.aws.stats();
    assert_eq!(
        cloud_mutations(&stats),
        0,
        "changed AWS\n{output}\n{stats:?}"
    );
    assert_eq!(
        stats.count("ec2:DescribeInstanceTypes"),
        1,
        "one call for every type of the group\n{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_mixing_architectures_is_refused_and_nothing_is_stored() {
    let fixture = cluster_with_two_architectures("arch2.example.com").await;

    assert_write_refused(
        &fixture,
        "graviton",
        |document| {
            document["spec"]["mixedInstancesPolicy"] = serde_norway::from_str(
                "instanceTypes: [m6g.large, m7i.large]\nonDemandBaseCapacity: 0",
            )
            .expect("a policy");
        },
        &[
            "instancegroup/graviton",
            "spec.mixedInstancesPolicy.instanceTypes[1]",
            "m7i.large is amd64",
            "m7g.large is arm64",
            "ec2:DescribeInstanceTypes",
        ],
    );

    // An explicit AMI of the other architecture is refused naming both.
    assert_write_refused(
        &fixture,
        "graviton",
        |document| {
            document["spec"]["image"] = NOBLE_AMD64.into();
        },
        &[
            "instancegroup/graviton: spec.image",
            &format!("{NOBLE_AMD64} is built for amd64"),
            "spec.machineType m7g.large is arm64",
            "ec2:DescribeImages",
        ],
    );

    // `create ig` checks the same before storing the new group.
    let output = fixture.skiff([
        "create",
        "ig",
        "--name",
        &fixture.cluster,
        "graviton-amd64-image",
        "--machine-type",
        "m6g.large",
        "--image",
        NOBLE_AMD64,
    ]);
    output.assert_exit(1);
    output.assert_stderr_contains("spec.machineType m6g.large is arm64");
    let groups = fixture.skiff(["get", "ig", "--name", &fixture.cluster, "-o", "json"]);
    groups.assert_success();
    assert!(
        !groups.stdout.contains("graviton-amd64-image"),
        "the refused group was stored\n{groups}"
    );

    // One architecture in the policy is stored, and plans: nothing was
    // applied, so nothing was recorded before.
    assert!(fixture.get_object("state.json").is_none());
    fixture.edit_group("graviton", |document| {
        document["spec"]["mixedInstancesPolicy"] =
            serde_norway::from_str("instanceTypes: [m6g.large]").expect("a policy");
    });
    // A pattern of the user's that matches both architectures resolves by
    // the `architecture` filter: the newest image overall is the arm64 one
    // (`amis.json`), yet the Intel group gets the newest amd64 image.
    for (group, machine_type) in [("any-intel", "m7i.large"), ("any-graviton", "m6g.large")] {
        fixture
            .skiff([
                "create",
                "ig",
                "--name",
                &fixture.cluster,
                group,
                "--machine-type",
                machine_type,
                "--image",
                "099720109477/ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-*-server-*",
            ])
            .assert_success();
    }
    let plan = fixture.plan_json();
    for (group, image) in [
        ("graviton", NOBLE_ARM64),
        ("any-intel", NOBLE_AMD64),
        ("any-graviton", NOBLE_ARM64),
    ] {
        assert_eq!(planned_group(&plan, group)["imageId"], image, "{group}");
    }
}
