//! The node termination handler's queue processor on a control-plane node
//! (`node-termination`, templates/node-termination.sh.j2): given events in
//! the cluster's SQS queue (the sandbox's moto, where the node's SQS calls
//! go), it drains the instance's Node with kubectl's drain, which evicts
//! through the Eviction API and so respects PodDisruptionBudgets (the
//! kubectl stand-in models the refusal), completes a termination lifecycle
//! action (moto has none; the sandbox's launcher answers and records it as
//! Auto Scaling does), and deletes the message; what it cannot handle it
//! deletes and logs; a failed drain leaves the message for a retry. The
//! events are EventBridge's, as NTH's sources quote them
//! (pkg/monitor/sqsevent/asg-lifecycle-event.go, spot-itn-event.go,
//! ec2-state-change-event.go).

use skiff_api::{Cni, InstanceGroupRole, OsFamily};
use skiff_templates::{node_termination, paths, NodeBootstrap};
use skiff_test_support::sandbox::{FakeCloud, Image, NodeSandbox};

use super::{assert_booted, assert_no_secrets};
use crate::support::{start_cloud, Sandbox};

/// Two Nodes the stand-in kubectl lists: NAME PROVIDER-ID.
const NODES: &str = "ip-10-0-1-5.ec2.internal aws:///us-east-1a/i-0a1000000000000b1\n\
                     ip-10-0-2-6.ec2.internal aws:///us-east-1b/i-0a1000000000000b2\n";

fn control_plane(cloud: &FakeCloud) -> (NodeBootstrap, NodeSandbox) {
    let config = cloud.bootstrap(
        InstanceGroupRole::ControlPlane,
        OsFamily::Debian,
        Cni::Cilium,
    );
    let node = cloud.node("i-0c1000000000000a1", &config, Image::Ubuntu);
    assert_booted(&node, &node.boot());
    (config, node)
}

fn text_between<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = xml.find(&open).map(|at| at + open.len()).unwrap_or(0);
    let end = xml[start..]
        .find(&format!("</{tag}>"))
        .map_or(start, |at| start + at);
    &xml[start..end]
}

fn create_queue(cloud: &FakeCloud, config: &NodeBootstrap) -> String {
    let name = node_termination::queue_name(&config.cluster_name);
    let created = cloud
        .moto
        .sqs(&[("Action", "CreateQueue"), ("QueueName", &name)]);
    text_between(&created, "QueueUrl").to_string()
}

fn send(cloud: &FakeCloud, queue: &str, body: &str) {
    cloud.moto.sqs(&[
        ("Action", "SendMessage"),
        ("QueueUrl", queue),
        ("MessageBody", body),
    ]);
}

/// Messages still in the queue, visible or being handled.
fn queued(cloud: &FakeCloud, queue: &str) -> u32 {
    let attributes = cloud.moto.sqs(&[
        ("Action", "GetQueueAttributes"),
        ("QueueUrl", queue),
        ("AttributeName.1", "All"),
    ]);
    let count = |name: &str| -> u32 {
        let at = attributes
            .find(&format!("<Name>{name}</Name>"))
            .unwrap_or_else(|| panic!("no {name} in {attributes}"));
        text_between(&attributes[at..], "Value")
            .parse()
            .expect("a number")
    };
    count("ApproximateNumberOfMessages") + count("ApproximateNumberOfMessagesNotVisible")
}

fn lifecycle_event(group: &str, instance: &str, token: &str) -> String {
    format!(
        r#"{{"version":"0","id":"782d5b4c-0f6f-1fd6-9d62-ecf6aed0a470","detail-type":"EC2 Instance-terminate Lifecycle Action","source":"aws.autoscaling","account":"123456789012","time":"2026-12-07T03:19:58Z","region":"us-east-1","resources":["arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:26e7234b-03a4-47fb-b0a9-2b241662774e:autoScalingGroupName/{group}"],"detail":{{"LifecycleActionToken":"{token}","AutoScalingGroupName":"{group}","LifecycleHookName":"skiff-node-termination","EC2InstanceId":"{instance}","LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING"}}}}"#
    )
}

fn spot_event(instance: &str) -> String {
    spot_event_from("123456789012", instance)
}

fn spot_event_from(account: &str, instance: &str) -> String {
    format!(
        r#"{{"version":"0","id":"1e5527d7-bb36-4607-3370-4164db56a40e","detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2","account":"{account}","time":"2026-12-07T03:20:00Z","region":"us-east-1","resources":["arn:aws:ec2:us-east-1b:instance/{instance}"],"detail":{{"instance-id":"{instance}","instance-action":"terminate"}}}}"#
    )
}

/// NTH `pkg/monitor/sqsevent/rebalance-recommendation-event.go`'s example.
fn rebalance_event(instance: &str) -> String {
    format!(
        r#"{{"version":"0","id":"5d5555d5-dd55-5555-5555-5555dd55d55d","detail-type":"EC2 Instance Rebalance Recommendation","source":"aws.ec2","account":"123456789012","time":"2026-12-07T03:14:14Z","region":"us-east-1","resources":["arn:aws:ec2:us-east-1b:instance/{instance}"],"detail":{{"instance-id":"{instance}"}}}}"#
    )
}

fn run_once(cloud: &FakeCloud, node: &NodeSandbox) {
    let run = node.run(&["node-termination", "--once"]);
    assert!(run.success, "{}", run.everything());
    assert_no_secrets(cloud, node, &run);
}

fn kubectl(node: &NodeSandbox, verb: &str) -> Vec<String> {
    node.commands_starting("kubectl ")
        .into_iter()
        .filter(|line| line.split_whitespace().any(|word| word == verb))
        .collect()
}

#[test]
fn a_queued_termination_lifecycle_action_drains_its_node_then_completes_the_action() {
    let cloud = start_cloud();
    let (config, node) = control_plane(&cloud);
    assert!(node
        .read(paths::NODE_TERMINATION_SERVICE)
        .contains(&format!(
            "ExecStart={} node-termination",
            paths::BOOTSTRAP_SCRIPT
        )));
    assert!(
        node.commands()
            .iter()
            .any(|line| line.starts_with("systemctl enable --now")
                && line.contains("skiff-node-termination.service")),
        "{:?}",
        node.commands()
    );

    // The handler off (or its queue not made yet): said, nothing fails.
    run_once(&cloud, &node);
    assert!(node
        .read(paths::BOOTSTRAP_LOG)
        .contains("no node termination queue c1-example-com-nth to read"));

    let queue = create_queue(&cloud, &config);
    cloud.write_cluster_file("nodes", NODES);
    let group = "nodes-us-east-1b.c1.example.com";
    send(
        &cloud,
        &queue,
        &lifecycle_event(
            group,
            "i-0a1000000000000b2",
            "0befcbdb-6ecd-498a-9ff7-ae9b54447cd6",
        ),
    );
    run_once(&cloud, &node);

    let cordons = kubectl(&node, "cordon");
    assert_eq!(cordons.len(), 1, "{cordons:?}");
    assert!(
        cordons[0].ends_with("cordon ip-10-0-2-6.ec2.internal"),
        "{cordons:?}"
    );
    let drains = kubectl(&node, "drain");
    assert_eq!(drains.len(), 1, "{drains:?}");
    for flag in [
        "drain ip-10-0-2-6.ec2.internal",
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=240s",
        "--kubeconfig",
    ] {
        assert!(drains[0].contains(flag), "{flag} missing: {}", drains[0]);
    }
    // The Eviction API, never plain deletes that skip the budgets.
    assert!(!drains[0].contains("--disable-eviction"), "{}", drains[0]);
    assert_eq!(
        cloud.cluster_record("drained"),
        ["ip-10-0-2-6.ec2.internal"]
    );
    assert_eq!(
        cloud.moto.completed_lifecycle_actions(),
        [format!(
            "{group} skiff-node-termination 0befcbdb-6ecd-498a-9ff7-ae9b54447cd6 i-0a1000000000000b2 CONTINUE"
        )]
    );
    assert_eq!(queued(&cloud, &queue), 0, "the handled message is deleted");
    // Drained first, completed after.
    let log = node.read(paths::BOOTSTRAP_LOG);
    let drained = log
        .find("draining the Node ip-10-0-2-6.ec2.internal")
        .expect("logged");
    let completed = log
        .find("completed the lifecycle action of instance i-0a1000000000000b2")
        .expect("logged");
    assert!(drained < completed, "{log}");

    // An instance that is no Node of this cluster: the action is completed
    // (nothing to drain, no reason to hold the termination), the message
    // dropped, nothing drained.
    send(
        &cloud,
        &queue,
        &lifecycle_event(
            group,
            "i-0f9000000000000c9",
            "5d3c1e8a-0000-4000-8000-000000000001",
        ),
    );
    run_once(&cloud, &node);
    assert_eq!(kubectl(&node, "drain").len(), 1);
    assert_eq!(cloud.moto.completed_lifecycle_actions().len(), 2);
    assert_eq!(queued(&cloud, &queue), 0);
}

#[test]
fn a_spot_interruption_drains_without_completing_any_action_and_a_blocked_drain_is_retried() {
    let cloud = start_cloud();
    let (config, node) = control_plane(&cloud);
    let queue = create_queue(&cloud, &config);
    cloud.write_cluster_file("nodes", NODES);

    send(&cloud, &queue, &spot_event("i-0a1000000000000b1"));
    run_once(&cloud, &node);
    assert_eq!(
        cloud.cluster_record("drained"),
        ["ip-10-0-1-5.ec2.internal"]
    );
    assert!(cloud.moto.completed_lifecycle_actions().is_empty());
    assert_eq!(queued(&cloud, &queue), 0);

    // Another account's, or another cluster's, instance; an event of a
    // kind the handler does not handle; a running instance's state change:
    // each deleted and logged, nothing drained.
    send(&cloud, &queue, &spot_event("i-0f9000000000000c9"));
    run_once(&cloud, &node);
    send(
        &cloud,
        &queue,
        r#"{"version":"0","id":"9","detail-type":"AWS Health Event","source":"aws.health","detail":{"service":"EC2"}}"#,
    );
    run_once(&cloud, &node);
    send(
        &cloud,
        &queue,
        r#"{"version":"0","id":"10","detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","account":"123456789012","detail":{"instance-id":"i-0a1000000000000b1","state":"pending"}}"#,
    );
    run_once(&cloud, &node);
    assert_eq!(queued(&cloud, &queue), 0);
    assert_eq!(kubectl(&node, "drain").len(), 1);
    let log = node.read(paths::BOOTSTRAP_LOG);
    for logged in [
        "for instance i-0f9000000000000c9, which is no Node of c1.example.com: dropped",
        "dropping an event the node termination handler does not handle: aws.health, AWS Health Event",
        "dropping the state change of instance i-0a1000000000000b1 to pending",
    ] {
        assert!(log.contains(logged), "{logged} not in:\n{log}");
    }

    // A PodDisruptionBudget refuses an eviction until the drain's timeout:
    // the drain fails, the message stays for a retry, nothing is completed.
    cloud.write_cluster_file("pdb-blocks/ip-10-0-2-6.ec2.internal", "web-0");
    send(
        &cloud,
        &queue,
        r#"{"version":"0","id":"11","detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","account":"123456789012","detail":{"instance-id":"i-0a1000000000000b2","state":"shutting-down"}}"#,
    );
    run_once(&cloud, &node);
    assert_eq!(kubectl(&node, "drain").len(), 2);
    assert_eq!(
        cloud.cluster_record("drained"),
        ["ip-10-0-1-5.ec2.internal"]
    );
    assert_eq!(
        queued(&cloud, &queue),
        1,
        "a failed drain leaves its event queued"
    );
    assert!(cloud.moto.completed_lifecycle_actions().is_empty());
    assert!(node
        .read(paths::BOOTSTRAP_LOG)
        .contains("the event stays queued and is handled again in 10s"));
}

/// Review finding 2 (the processor's half): an event from another account
/// than the instance's own (IMDS `instance-identity/document` accountId,
/// 123456789012 in the sandbox) is deleted and logged, and nothing is
/// cordoned or drained, even when it names one of the cluster's instances
/// and its detail claims the right account. Review finding 4: a rebalance
/// recommendation cordons nothing (so nothing is left cordoned when no
/// termination follows) and is deleted.
#[test]
fn another_accounts_event_and_a_rebalance_recommendation_leave_every_node_schedulable() {
    let cloud = start_cloud();
    let (config, node) = control_plane(&cloud);
    let queue = create_queue(&cloud, &config);
    cloud.write_cluster_file("nodes", NODES);

    send(
        &cloud,
        &queue,
        &spot_event_from("210987654321", "i-0a1000000000000b1"),
    );
    send(
        &cloud,
        &queue,
        r#"{"version":"0","id":"12","detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","account":"210987654321","region":"us-east-1","detail":{"instance-id":"i-0a1000000000000b2","state":"stopping","account":"123456789012"}}"#,
    );
    run_once(&cloud, &node);
    assert_eq!(queued(&cloud, &queue), 0, "both deleted");
    assert_eq!(kubectl(&node, "cordon"), Vec::<String>::new());
    assert_eq!(kubectl(&node, "drain"), Vec::<String>::new());
    assert!(cloud.cluster_record("drained").is_empty());
    let log = node.read(paths::BOOTSTRAP_LOG);
    for logged in [
        "dropping a EC2 Spot Instance Interruption Warning event from account 210987654321, not this cluster's account 123456789012: nothing drained",
        "dropping a EC2 Instance State-change Notification event from account 210987654321, not this cluster's account 123456789012: nothing drained",
    ] {
        assert!(log.contains(logged), "{logged} not in:\n{log}");
    }

    // The same instance's spot warning from this account is drained: the
    // check is the account, not the instance.
    send(&cloud, &queue, &spot_event("i-0a1000000000000b1"));
    run_once(&cloud, &node);
    assert_eq!(
        cloud.cluster_record("drained"),
        ["ip-10-0-1-5.ec2.internal"]
    );

    // A rebalance recommendation for the other Node: logged and deleted,
    // neither cordoned nor drained.
    send(&cloud, &queue, &rebalance_event("i-0a1000000000000b2"));
    run_once(&cloud, &node);
    assert_eq!(queued(&cloud, &queue), 0);
    let cordons = kubectl(&node, "cordon");
    assert_eq!(cordons.len(), 1, "{cordons:?}");
    assert!(
        cordons[0].ends_with("cordon ip-10-0-1-5.ec2.internal"),
        "{cordons:?}"
    );
    assert_eq!(kubectl(&node, "drain").len(), 1);
    assert!(node.read(paths::BOOTSTRAP_LOG).contains(
        "rebalance recommendation for instance i-0a1000000000000b2: not cordoned or drained"
    ));
}

/// The drains' start and end, in order (the kubectl stand-in's record).
fn drain_events(cloud: &FakeCloud) -> Vec<String> {
    cloud.cluster_record("drain-events")
}

fn position(events: &[String], event: &str) -> usize {
    events
        .iter()
        .position(|line| line == event)
        .unwrap_or_else(|| panic!("no {event:?} in {events:?}"))
}

/// Review finding 4: messages are received ten at a time and handled at
/// once, each by its own worker, so a spot interruption warning never waits
/// behind another Node's slow drain; a failure leaves only its own message
/// queued.
#[test]
fn a_spot_interruption_is_drained_while_another_nodes_slow_drain_goes_on() {
    let cloud = start_cloud();
    let (config, node) = control_plane(&cloud);
    let queue = create_queue(&cloud, &config);
    cloud.write_cluster_file(
        "nodes",
        &format!("{NODES}ip-10-0-3-7.ec2.internal aws:///us-east-1c/i-0a1000000000000b3\n"),
    );
    let slow = "ip-10-0-2-6.ec2.internal";
    let spot = "ip-10-0-1-5.ec2.internal";
    cloud.write_cluster_file(&format!("slow-drains/{slow}"), "12");
    cloud.write_cluster_file("pdb-blocks/ip-10-0-3-7.ec2.internal", "web-0");

    // A scale-in's slow drain queued first, the spot warning after it, and
    // a third Node's drain that a PodDisruptionBudget blocks.
    let group = "nodes-us-east-1b.c1.example.com";
    send(
        &cloud,
        &queue,
        &lifecycle_event(
            group,
            "i-0a1000000000000b2",
            "0befcbdb-6ecd-498a-9ff7-ae9b54447cd6",
        ),
    );
    send(&cloud, &queue, &spot_event("i-0a1000000000000b1"));
    send(
        &cloud,
        &queue,
        r#"{"version":"0","id":"13","detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","account":"123456789012","detail":{"instance-id":"i-0a1000000000000b3","state":"stopping"}}"#,
    );
    run_once(&cloud, &node);
    let events = drain_events(&cloud);
    assert!(
        position(&events, &format!("start {spot}")) < position(&events, &format!("end {slow}")),
        "the spot Node's drain waited for the slow one: {events:?}"
    );
    let mut drained = cloud.cluster_record("drained");
    drained.sort();
    assert_eq!(drained, [spot, slow]);
    assert_eq!(cloud.moto.completed_lifecycle_actions().len(), 1);
    // Only the blocked drain's message is left, for a retry.
    assert_eq!(queued(&cloud, &queue), 1);
    let log = node.read(paths::BOOTSTRAP_LOG);
    assert!(
        log.contains("the drain of ip-10-0-3-7.ec2.internal did not finish"),
        "{log}"
    );
    assert!(
        log.contains("the event stays queued and is handled again in 10s"),
        "{log}"
    );

    // Not the order alone: two spot warnings, the slow one first, are
    // drained side by side too. (The blocked message may come back among
    // them; it fails again, alone.)
    let before = drain_events(&cloud).len();
    send(&cloud, &queue, &spot_event("i-0a1000000000000b2"));
    send(&cloud, &queue, &spot_event("i-0a1000000000000b1"));
    run_once(&cloud, &node);
    let events = drain_events(&cloud)[before..].to_vec();
    assert!(
        position(&events, &format!("start {spot}")) < position(&events, &format!("end {slow}")),
        "the second spot warning waited for the first one's drain: {events:?}"
    );
}

/// Waits (at most 90 s) until `done` holds.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within 90 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The processor as its unit runs it (no `--once`): while one Node's slow
/// drain is in work, the loop goes on receiving, and a spot warning sent
/// after the drain began is drained before that drain ends (review finding
/// 4: a two-minute warning never waits behind a four-minute drain).
#[test]
fn the_running_processor_drains_a_later_spot_warning_while_an_earlier_drain_goes_on() {
    let cloud = start_cloud();
    let (config, node) = control_plane(&cloud);
    let queue = create_queue(&cloud, &config);
    cloud.write_cluster_file("nodes", NODES);
    let slow = "ip-10-0-2-6.ec2.internal";
    let spot = "ip-10-0-1-5.ec2.internal";
    // Longer than a receive's long poll (20 s): the sandbox's moto serves
    // one request at a time, so a message sent while the processor's poll
    // waits is taken only by its next poll, up to 20 s later (real SQS
    // hands it to the waiting poll at once).
    cloud.write_cluster_file(&format!("slow-drains/{slow}"), "45");

    let running = node.spawn_with(&["node-termination"]);
    send(
        &cloud,
        &queue,
        &lifecycle_event(
            "nodes-us-east-1b.c1.example.com",
            "i-0a1000000000000b2",
            "0befcbdb-6ecd-498a-9ff7-ae9b54447cd6",
        ),
    );
    eventually("the slow drain starts", || {
        drain_events(&cloud).contains(&format!("start {slow}"))
    });
    send(&cloud, &queue, &spot_event("i-0a1000000000000b1"));
    eventually("both drains end", || {
        let events = drain_events(&cloud);
        events.contains(&format!("end {slow}")) && events.contains(&format!("end {spot}"))
    });
    eventually("both messages deleted", || queued(&cloud, &queue) == 0);
    let boot = running.stop();
    assert!(
        boot.success,
        "the processor stopped by itself: {}",
        boot.everything()
    );
    assert_no_secrets(&cloud, &node, &boot);

    let events = drain_events(&cloud);
    assert!(
        position(&events, &format!("start {slow}")) < position(&events, &format!("start {spot}"))
            && position(&events, &format!("end {spot}"))
                < position(&events, &format!("end {slow}")),
        "the spot warning waited for the earlier drain: {events:?}"
    );
    assert_eq!(cloud.moto.completed_lifecycle_actions().len(), 1);
}
