//! Acceptance tests of `update cluster --target terraform`: the real
//! `skiff` binary writes Terraform for a cluster whose lookups it makes
//! against a local AWS endpoint, and the real `terraform` CLI validates it
//! with the hashicorp/aws provider from a local mirror (offline).
//!
//! What each test pins:
//! - the HA private cluster (3 zones, 3 control-plane nodes): the files,
//!   `terraform validate`, the PKI in the state store, the cluster recorded
//!   as managed by Terraform, a direct `--yes` refused without one mutating
//!   AWS call, regenerating without a spec change rewriting nothing;
//! - a gossip cluster: `terraform validate`, then switching back to direct
//!   applies with `--target direct --force-target --yes`, after which
//!   writing Terraform again is refused (the resources exist already);
//! - the gossip cluster, and the HA private cluster with Calico and an SSH
//!   key: `terraform apply` against the local endpoint (a test-only
//!   `provider_override.tf.json` points the provider there), a second
//!   `terraform plan -detailed-exitcode` with no changes, and the
//!   inventory Terraform built (types and counts, names, tags, rules, IAM
//!   policies, launch-template data and user-data) equal to what
//!   `update cluster --yes` builds from the same store on a fresh endpoint.
//!
//! Without `terraform` (or without the provider mirror) the tests say so
//! loudly on standard error and return.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use sha2::{Digest, Sha256};

use skiff_tests::terraform::{warn_loudly, write_provider_override, TerraformTools};
use skiff_tests::{LocalAws, SandboxHome, Skiff, SkiffOutput, HA_PRIVATE_CLUSTER};

/// The terraform binary and the provider mirror, or `None` (said loudly).
fn terraform_tools(test: &str) -> Option<TerraformTools> {
    match TerraformTools::find() {
        Ok(tools) => Some(tools),
        Err(why) => {
            warn_loudly(&format!("{why}: skipped {test}"));
            None
        }
    }
}

/// Runs terraform in `folder`, offline, and returns its combined output;
/// panics with that output when it fails.
fn terraform(tools: &TerraformTools, folder: &Path, args: &[&str]) -> String {
    let (code, output) = terraform_timed(tools, folder, args);
    assert_eq!(
        code,
        0,
        "terraform {} in {} failed:\n{output}",
        args.join(" "),
        folder.display()
    );
    output
}

/// `terraform init` from the mirror (no backend, no network), then `validate`.
fn validate(tools: &TerraformTools, folder: &Path) {
    init(tools, folder);
    let output = terraform(tools, folder, &["validate", "-no-color"]);
    assert!(
        output.contains("The configuration is valid"),
        "terraform validate:\n{output}"
    );
}

/// `terraform init` from the mirror; panics with its output when it fails.
fn init(tools: &TerraformTools, folder: &Path) {
    let run = tools
        .init(folder, TERRAFORM_TIMEOUT)
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", tools.binary.display()));
    assert_eq!(run.code, 0, "terraform init failed:\n{}", run.output);
}

struct Fixture {
    aws: LocalAws,
    home: SandboxHome,
    bucket: String,
    store: String,
    cluster: String,
    /// Hosted zones created with [`Fixture::create_zone`].
    zones: std::cell::RefCell<Vec<String>>,
}

impl Fixture {
    fn new(cluster: &str) -> Fixture {
        let aws = LocalAws::start();
        let bucket = aws.create_unique_bucket("state");
        Fixture {
            store: format!("s3://{bucket}"),
            bucket,
            home: SandboxHome::new(),
            cluster: cluster.to_owned(),
            zones: Default::default(),
            aws,
        }
    }

    async fn create_zone(&self, name: &str) {
        let config = self.aws.sdk_config().await;
        aws_sdk_route53::Client::new(&config)
            .create_hosted_zone()
            .name(name)
            .caller_reference(format!("zone-{name}"))
            .send()
            .await
            .expect("create hosted zone");
        self.zones.borrow_mut().push(name.to_owned());
    }

    fn skiff<I, S>(&self, args: I) -> SkiffOutput
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Skiff::new(&self.aws, &self.home)
            .args(args)
            .args(["--state", &self.store])
            .run()
    }

    /// `update cluster CLUSTER --target terraform --out FOLDER EXTRA...`.
    fn write_terraform(&self, folder: &Path, extra: &[&str]) -> SkiffOutput {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "update".as_ref(),
            "cluster".as_ref(),
            self.cluster.as_ref(),
            "--target".as_ref(),
            "terraform".as_ref(),
            "--out".as_ref(),
            folder.as_os_str(),
        ];
        args.extend(extra.iter().map(|arg| std::ffi::OsStr::new(*arg)));
        self.skiff(args)
    }

    fn recorded_state(&self) -> serde_json::Value {
        let bytes = self
            .aws
            .get_object(&self.bucket, &format!("{}/state.json", self.cluster))
            .expect("a recorded state");
        serde_json::from_slice(&bytes).expect("JSON")
    }
}

fn files_under(folder: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(folder).expect("read the folder") {
        let entry = entry.expect("an entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() {
            if name != ".terraform" {
                for inner in files_under(&entry.path()) {
                    found.push(format!("{name}/{inner}"));
                }
            }
        } else if !name.starts_with(".terraform") {
            found.push(name);
        }
    }
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ha_private_cluster_terraform_validates_and_blocks_direct_applies() {
    let Some(tools) =
        terraform_tools("ha_private_cluster_terraform_validates_and_blocks_direct_applies")
    else {
        return;
    };
    let fixture = Fixture::new("c1.example.com");
    fixture.create_zone("example.com").await;
    let mut create = vec!["create", "cluster", "c1.example.com"];
    create.extend(HA_PRIVATE_CLUSTER);
    fixture.skiff(create).assert_success();

    let folder = fixture.home.join("c1-terraform");
    fixture.aws.reset_stats();
    let output = fixture.write_terraform(&folder, &[]);
    output.assert_success();
    output.assert_stderr_contains("terraform init && terraform apply");
    let stats = fixture.aws.stats();
    let cloud_changes: Vec<&String> = stats
        .mutating_calls
        .keys()
        .filter(|call| !call.starts_with("s3:"))
        .collect();
    assert!(
        cloud_changes.is_empty(),
        "writing Terraform changed the cloud: {cloud_changes:?}"
    );

    let mut expected = vec!["skiff.tf.json".to_string()];
    for role in ["control-plane", "nodes"] {
        for zone in ["us-east-1a", "us-east-1b", "us-east-1c"] {
            expected.push(format!("data/{role}-{zone}.user-data"));
        }
    }
    expected.sort();
    assert_eq!(files_under(&folder), expected);
    validate(&tools, &folder);

    // What nodes read from the store exists, and the cluster is Terraform's.
    let keys = fixture.aws.list_keys(&fixture.bucket, "c1.example.com/");
    assert!(
        keys.iter().any(|key| key == "c1.example.com/pki/ca.crt"),
        "{keys:?}"
    );
    assert!(
        keys.iter()
            .any(|key| key == "c1.example.com/secrets/bootstrap-token"),
        "{keys:?}"
    );
    assert_eq!(fixture.recorded_state()["managedBy"], "terraform");

    // A direct apply refuses, changes nothing, and says how to switch back.
    fixture.aws.reset_stats();
    let refused = fixture.skiff(["update", "cluster", "c1.example.com", "--yes"]);
    refused.assert_exit(1);
    refused.assert_stderr_contains("managed by Terraform");
    refused.assert_stderr_contains("--target direct --force-target --yes");
    let stats = fixture.aws.stats();
    let cloud_changes: Vec<&String> = stats
        .mutating_calls
        .keys()
        .filter(|call| !call.starts_with("s3:"))
        .collect();
    assert!(cloud_changes.is_empty(), "{cloud_changes:?}");
    // A preview still works, and warns.
    let preview = fixture.skiff(["update", "cluster", "c1.example.com"]);
    preview.assert_success();
    preview.assert_stderr_contains("managed by Terraform");

    // Deleting through skiff refuses too, naming terraform destroy.
    fixture.aws.reset_stats();
    let refused = fixture.skiff(["delete", "cluster", "c1.example.com", "--yes"]);
    refused.assert_exit(1);
    refused.assert_stderr_contains("managed by Terraform");
    refused.assert_stderr_contains("terraform destroy");
    refused.assert_stderr_contains("Nothing was deleted");
    let stats = fixture.aws.stats();
    assert!(
        stats
            .mutating_calls
            .keys()
            .all(|call| call.starts_with("s3:")),
        "{:?}",
        stats.mutating_calls
    );
    assert_eq!(fixture.recorded_state()["managedBy"], "terraform");

    // Regenerating without a spec change rewrites nothing.
    let before = std::fs::read(folder.join("skiff.tf.json")).expect("read");
    let again = fixture.write_terraform(&folder, &[]);
    again.assert_success();
    again.assert_stderr_contains("nothing changed");
    assert_eq!(
        std::fs::read(folder.join("skiff.tf.json")).expect("read"),
        before
    );

    // --out is required, and --yes makes no sense.
    let no_out = fixture.skiff([
        "update",
        "cluster",
        "c1.example.com",
        "--target",
        "terraform",
    ]);
    no_out.assert_exit(1);
    no_out.assert_stderr_contains("--out DIR");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_cluster_terraform_validates_and_can_switch_back_to_direct() {
    let Some(tools) =
        terraform_tools("gossip_cluster_terraform_validates_and_can_switch_back_to_direct")
    else {
        return;
    };
    let fixture = Fixture::new("c.k8s.local");
    fixture
        .skiff(["create", "cluster", "c.k8s.local", "--zones", "us-east-1a"])
        .assert_success();
    let folder = fixture.home.join("gossip-terraform");
    fixture.write_terraform(&folder, &[]).assert_success();
    validate(&tools, &folder);
    let configuration: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("skiff.tf.json")).expect("read"))
            .expect("JSON");
    assert!(configuration["resource"]["aws_route53_record"].is_null());
    let user_data = configuration["resource"]["aws_launch_template"]["nodes_us_east_1a"]
        ["user_data"]
        .as_str()
        .expect("user_data")
        .to_owned();
    // A new gossip cluster's nodes use the internal load balancer.
    assert!(
        user_data.contains("aws_lb.api_internal.dns_name"),
        "the load balancer name is substituted by Terraform: {user_data}"
    );

    // Switching back: --force-target applies directly and hands the
    // cluster back to skiff.
    let switched = fixture.skiff([
        "update",
        "cluster",
        "c.k8s.local",
        "--target",
        "direct",
        "--force-target",
        "--yes",
    ]);
    switched.assert_success();
    assert_eq!(fixture.recorded_state()["managedBy"], "skiff");

    // Now Terraform would create what exists: refused, nothing written.
    let other = fixture.home.join("second-terraform");
    let refused = fixture.write_terraform(&other, &[]);
    refused.assert_exit(1);
    refused.assert_stderr_contains("--force-target");
    assert!(!other.exists(), "a refused run wrote files");
    assert_eq!(fixture.recorded_state()["managedBy"], "skiff");
}

/// How long one `terraform apply` or `plan` against the local endpoint may
/// take before the test kills it and fails (moto answers at once; the
/// provider's own waiters, e.g. for the load balancer, take about a minute).
const TERRAFORM_TIMEOUT: Duration = Duration::from_secs(600);

/// Runs terraform in `folder`, offline, but kills it after
/// [`TERRAFORM_TIMEOUT`] (a provider waiting for something the endpoint
/// never reports must fail the test, not hang it); returns the exit code
/// and the combined output.
fn terraform_timed(tools: &TerraformTools, folder: &Path, args: &[&str]) -> (i32, String) {
    let run = tools
        .run(folder, args, TERRAFORM_TIMEOUT)
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", tools.binary.display()));
    assert!(
        !run.timed_out,
        "terraform {} in {} did not finish in {TERRAFORM_TIMEOUT:?}:\n{}",
        args.join(" "),
        folder.display(),
        run.output
    );
    (run.code, run.output)
}

/// `k=v,k=v` of the tags that skiff or Terraform set (not AWS's own
/// `aws:` tags), sorted.
fn tag_list<'a>(tags: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>) -> String {
    let mut pairs: Vec<String> = tags
        .into_iter()
        .map(|(key, value)| (key.unwrap_or_default(), value.unwrap_or_default()))
        .filter(|(key, _)| !key.starts_with("aws:"))
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    pairs.sort();
    pairs.join(",")
}

fn ec2_tags(tags: &[aws_sdk_ec2::types::Tag]) -> String {
    tag_list(tags.iter().map(|tag| (tag.key(), tag.value())))
}

/// The whole document: `user_data` (EC2's, with a loader) with the script
/// the loader names, read from the state store the user-data points at on
/// `aws`. Two stores differ in their URL, which the scripts carry, so the
/// hashes differ and only the whole documents compare.
fn with_stored_script(aws: &LocalAws, user_data: String) -> String {
    let Some(key) = skiff_templates::stored_script_key(&user_data) else {
        return user_data;
    };
    let url = user_data
        .lines()
        .find_map(|line| line.trim().strip_prefix("SKIFF_STATE_STORE_URL="))
        .expect("the state store's URL in the user-data");
    let path = url
        .strip_prefix(&format!("{}/", aws.endpoint()))
        .unwrap_or_else(|| panic!("{url} is not on {}", aws.endpoint()));
    let (bucket, folder) = path.split_once('/').expect("bucket/folder");
    let script = aws
        .get_object(bucket, &format!("{folder}/{key}"))
        .unwrap_or_else(|| panic!("{key} is not in the state store at {url}"));
    skiff_templates::with_stored_script(&user_data, &String::from_utf8_lossy(&script))
        .unwrap_or_else(|error| panic!("{key}: {error}"))
}

/// A launch template's user-data with every `gz+b64` file unpacked (its
/// lines indented under the `content:` line), and the endpoint's own URL,
/// which nodes of a test cluster are told to reach the state store at,
/// replaced by `<endpoint>`: two endpoints differ in nothing else.
fn readable_user_data(user_data: &str, endpoint: &str) -> String {
    let mut text = String::new();
    for line in user_data.lines() {
        let packed = line
            .trim_start()
            .strip_prefix("content: ")
            .filter(|content| content.starts_with("H4sI"))
            .and_then(|content| {
                base64::engine::general_purpose::STANDARD
                    .decode(content)
                    .ok()
            });
        let unpacked = packed.and_then(|bytes| {
            let mut unpacked = String::new();
            std::io::Read::read_to_string(
                &mut flate2::read::GzDecoder::new(bytes.as_slice()),
                &mut unpacked,
            )
            .ok()
            .map(|_| unpacked)
        });
        match unpacked {
            Some(content) => {
                text.push_str("  content (gz+b64, unpacked):\n");
                for inner in content.lines() {
                    text.push_str(&format!("    | {inner}\n"));
                }
            }
            None => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    text.replace(endpoint, "<endpoint>")
}

/// IAM returns policy documents URL-encoded.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes
            .get(index + 1..index + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[index], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                index += 3;
            }
            (b'+', _) => {
                decoded.push(b' ');
                index += 1;
            }
            (byte, _) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// A JSON document with its object keys sorted at every level, so that two
/// documents that differ only in key order compare equal.
fn canonical_json(text: &str) -> String {
    fn sorted(value: serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => {
                let entries: BTreeMap<String, serde_json::Value> = map
                    .into_iter()
                    .map(|(key, value)| (key, sorted(value)))
                    .collect();
                serde_json::Value::Object(entries.into_iter().collect())
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.into_iter().map(sorted).collect())
            }
            other => other,
        }
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value) => sorted(value).to_string(),
        Err(_) => text.to_owned(),
    }
}

/// What exists for `cluster` at `aws`, as comparable lines by resource
/// type: names, tags and the settings that make a resource what it is,
/// never IDs (those differ between two endpoints).
async fn inventory(aws: &LocalAws, cluster: &str) -> BTreeMap<&'static str, Vec<String>> {
    let config = aws.sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let mut found: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let owned = || {
        aws_sdk_ec2::types::Filter::builder()
            .name("tag:KubernetesCluster")
            .values(cluster)
            .build()
    };

    let vpcs = ec2
        .describe_vpcs()
        .filters(owned())
        .send()
        .await
        .expect("vpcs");
    for vpc in vpcs.vpcs() {
        found.entry("vpc").or_default().push(format!(
            "{} {}",
            vpc.cidr_block().unwrap_or_default(),
            ec2_tags(vpc.tags())
        ));
    }
    let subnets = ec2
        .describe_subnets()
        .filters(owned())
        .send()
        .await
        .expect("subnets");
    let mut subnet_names = BTreeMap::new();
    for subnet in subnets.subnets() {
        let tags = ec2_tags(subnet.tags());
        subnet_names.insert(
            subnet.subnet_id().unwrap_or_default().to_owned(),
            subnet.cidr_block().unwrap_or_default().to_owned(),
        );
        found.entry("subnet").or_default().push(format!(
            "{} {} public-ip={:?} {tags}",
            subnet.availability_zone().unwrap_or_default(),
            subnet.cidr_block().unwrap_or_default(),
            subnet.map_public_ip_on_launch()
        ));
    }
    let gateways = ec2
        .describe_internet_gateways()
        .filters(owned())
        .send()
        .await
        .expect("internet gateways");
    for gateway in gateways.internet_gateways() {
        found.entry("internet-gateway").or_default().push(format!(
            "attached={} {}",
            gateway.attachments().len(),
            ec2_tags(gateway.tags())
        ));
    }
    let nats = ec2
        .describe_nat_gateways()
        .filter(owned())
        .send()
        .await
        .expect("NAT gateways");
    for nat in nats.nat_gateways() {
        let subnet = nat
            .subnet_id()
            .and_then(|id| subnet_names.get(id))
            .cloned()
            .unwrap_or_default();
        found
            .entry("nat-gateway")
            .or_default()
            .push(format!("in {subnet} {}", ec2_tags(nat.tags())));
    }
    let addresses = ec2
        .describe_addresses()
        .filters(owned())
        .send()
        .await
        .expect("addresses");
    for address in addresses.addresses() {
        found
            .entry("elastic-ip")
            .or_default()
            .push(ec2_tags(address.tags()));
    }
    let tables = ec2
        .describe_route_tables()
        .filters(owned())
        .send()
        .await
        .expect("route tables");
    for table in tables.route_tables() {
        let mut routes: Vec<String> = table
            .routes()
            .iter()
            .map(|route| {
                let target = if route.nat_gateway_id().is_some() {
                    "nat"
                } else if route.gateway_id().is_some_and(|id| id.starts_with("igw-")) {
                    "igw"
                } else {
                    "local"
                };
                format!(
                    "{}->{target}",
                    route.destination_cidr_block().unwrap_or_default()
                )
            })
            .collect();
        routes.sort();
        let mut associated: Vec<String> = table
            .associations()
            .iter()
            .filter_map(|association| association.subnet_id())
            .filter_map(|id| subnet_names.get(id).cloned())
            .collect();
        associated.sort();
        found.entry("route-table").or_default().push(format!(
            "routes={} subnets={} {}",
            routes.join(","),
            associated.join(","),
            ec2_tags(table.tags())
        ));
    }

    let groups = ec2
        .describe_security_groups()
        .filters(owned())
        .send()
        .await
        .expect("security groups");
    let group_names: BTreeMap<String, String> = groups
        .security_groups()
        .iter()
        .map(|group| {
            (
                group.group_id().unwrap_or_default().to_owned(),
                group.group_name().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for group in groups.security_groups() {
        found.entry("security-group").or_default().push(format!(
            "{} {:?} {}",
            group.group_name().unwrap_or_default(),
            group.description().unwrap_or_default(),
            ec2_tags(group.tags())
        ));
    }
    if !group_names.is_empty() {
        let rules = ec2
            .describe_security_group_rules()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("group-id")
                    .set_values(Some(group_names.keys().cloned().collect()))
                    .build(),
            )
            .send()
            .await
            .expect("security group rules");
        for rule in rules.security_group_rules() {
            let source = match rule
                .referenced_group_info()
                .and_then(|info| info.group_id())
            {
                Some(id) => group_names.get(id).cloned().unwrap_or_else(|| "?".into()),
                None => rule.cidr_ipv4().unwrap_or_default().to_owned(),
            };
            found
                .entry("security-group-rule")
                .or_default()
                .push(format!(
                    "{} {} {} {}..{} {source}",
                    group_names
                        .get(rule.group_id().unwrap_or_default())
                        .map(String::as_str)
                        .unwrap_or("?"),
                    if rule.is_egress() == Some(true) {
                        "egress"
                    } else {
                        "ingress"
                    },
                    rule.ip_protocol().unwrap_or_default(),
                    rule.from_port().unwrap_or_default(),
                    rule.to_port().unwrap_or_default(),
                ));
        }
    }
    let pairs = ec2.describe_key_pairs().send().await.expect("key pairs");
    for pair in pairs.key_pairs() {
        found.entry("key-pair").or_default().push(format!(
            "{} {}",
            pair.key_name().unwrap_or_default(),
            ec2_tags(pair.tags())
        ));
    }
    let templates = ec2
        .describe_launch_templates()
        .filters(owned())
        .send()
        .await
        .expect("launch templates");
    for template in templates.launch_templates() {
        let versions = ec2
            .describe_launch_template_versions()
            .launch_template_id(template.launch_template_id().unwrap_or_default())
            .versions("$Latest")
            .send()
            .await
            .expect("launch template versions");
        let data = versions
            .launch_template_versions()
            .first()
            .and_then(|version| version.launch_template_data())
            .expect("the latest version's data");
        // skiff and Terraform compress differently; the text must be the same.
        let user_data = skiff_templates::decode_user_data(data.user_data().unwrap_or_default())
            .expect("user-data is base64 of a gzip");
        let user_data = readable_user_data(&with_stored_script(aws, user_data), &aws.endpoint());
        let mut specifications: Vec<String> = data
            .tag_specifications()
            .iter()
            .map(|specification| {
                format!(
                    "{}:[{}]",
                    specification
                        .resource_type()
                        .map(|kind| kind.as_str().to_owned())
                        .unwrap_or_default(),
                    tag_list(
                        specification
                            .tags()
                            .iter()
                            .map(|tag| (tag.key(), tag.value()))
                    )
                )
            })
            .collect();
        specifications.sort();
        found.entry("launch-template").or_default().push(format!(
            "{} {} {} key={:?} tags={} launch-tags={} user-data-sha256={:x}",
            template.launch_template_name().unwrap_or_default(),
            data.image_id().unwrap_or_default(),
            data.instance_type()
                .map(|kind| kind.as_str())
                .unwrap_or_default(),
            data.key_name(),
            ec2_tags(template.tags()),
            specifications.join(" "),
            Sha256::digest(user_data.as_bytes()),
        ));
        found
            .entry("launch-template-user-data")
            .or_default()
            .push(format!(
                "{}:\n{user_data}",
                template.launch_template_name().unwrap_or_default(),
            ));
    }

    let autoscaling = aws_sdk_autoscaling::Client::new(&config);
    let groups = autoscaling
        .describe_auto_scaling_groups()
        .send()
        .await
        .expect("auto scaling groups");
    for group in groups.auto_scaling_groups() {
        let tags = tag_list(group.tags().iter().map(|tag| (tag.key(), tag.value())));
        found.entry("autoscaling-group").or_default().push(format!(
            "{} {}..{} template={} instances={} {tags}",
            group.auto_scaling_group_name().unwrap_or_default(),
            group.min_size().unwrap_or_default(),
            group.max_size().unwrap_or_default(),
            group
                .launch_template()
                .and_then(|template| template.launch_template_name())
                .unwrap_or_default(),
            group.instances().len(),
        ));
    }

    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let balancers = elb
        .describe_load_balancers()
        .send()
        .await
        .expect("load balancers");
    for balancer in balancers.load_balancers() {
        let arn = balancer.load_balancer_arn().unwrap_or_default();
        let tags = elb
            .describe_tags()
            .resource_arns(arn)
            .send()
            .await
            .expect("load balancer tags");
        let tags = tag_list(
            tags.tag_descriptions()
                .iter()
                .flat_map(|description| description.tags())
                .map(|tag| (tag.key(), tag.value())),
        );
        found.entry("load-balancer").or_default().push(format!(
            "{} {:?} {:?} subnets={} {tags}",
            balancer.load_balancer_name().unwrap_or_default(),
            balancer.r#type(),
            balancer.scheme(),
            balancer.availability_zones().len(),
        ));
        let listeners = elb
            .describe_listeners()
            .load_balancer_arn(arn)
            .send()
            .await
            .expect("listeners");
        for listener in listeners.listeners() {
            found.entry("listener").or_default().push(format!(
                "{} {:?} {:?}",
                balancer.load_balancer_name().unwrap_or_default(),
                listener.port(),
                listener.protocol(),
            ));
        }
    }
    let target_groups = elb
        .describe_target_groups()
        .send()
        .await
        .expect("target groups");
    for group in target_groups.target_groups() {
        found.entry("target-group").or_default().push(format!(
            "{} {:?} {:?} health={:?} {:?}",
            group.target_group_name().unwrap_or_default(),
            group.port(),
            group.protocol(),
            group.health_check_protocol(),
            group.health_check_path(),
        ));
    }

    let iam = aws_sdk_iam::Client::new(&config);
    let prefix = format!("/skiff/{cluster}/");
    let roles = iam
        .list_roles()
        .path_prefix(&prefix)
        .send()
        .await
        .expect("roles");
    for role in roles.roles() {
        let name = role.role_name();
        let described = iam.get_role().role_name(name).send().await.expect("role");
        let tags = tag_list(
            described
                .role()
                .map(|role| role.tags())
                .unwrap_or_default()
                .iter()
                .map(|tag| (Some(tag.key()), Some(tag.value()))),
        );
        let policies = iam
            .list_role_policies()
            .role_name(name)
            .send()
            .await
            .expect("role policies");
        let mut documents = Vec::new();
        for policy in policies.policy_names() {
            let document = iam
                .get_role_policy()
                .role_name(name)
                .policy_name(policy)
                .send()
                .await
                .expect("role policy");
            documents.push(format!(
                "{policy}={}",
                canonical_json(&percent_decode(document.policy_document()))
            ));
        }
        found.entry("iam-role").or_default().push(format!(
            "{name} {} {tags} policies: {}",
            role.path(),
            documents.join(" ")
        ));
    }
    let profiles = iam
        .list_instance_profiles()
        .path_prefix(&prefix)
        .send()
        .await
        .expect("instance profiles");
    for profile in profiles.instance_profiles() {
        let mut roles: Vec<&str> = profile
            .roles()
            .iter()
            .map(|role| role.role_name())
            .collect();
        roles.sort();
        found
            .entry("iam-instance-profile")
            .or_default()
            .push(format!(
                "{} {} roles={}",
                profile.instance_profile_name(),
                profile.path(),
                roles.join(",")
            ));
    }

    let route53 = aws_sdk_route53::Client::new(&config);
    let zones = route53
        .list_hosted_zones()
        .send()
        .await
        .expect("hosted zones");
    for zone in zones.hosted_zones() {
        let records = route53
            .list_resource_record_sets()
            .hosted_zone_id(zone.id())
            .send()
            .await
            .expect("records");
        for record in records.resource_record_sets() {
            if matches!(record.r#type().as_str(), "NS" | "SOA") {
                continue;
            }
            found.entry("route53-record").or_default().push(format!(
                "{} {} alias={:?}",
                record.name(),
                record.r#type().as_str(),
                record.alias_target().map(|alias| alias.dns_name()),
            ));
        }
    }

    for lines in found.values_mut() {
        lines.sort();
    }
    found
}

/// The lines of `left` that `right` lacks (`-`) and the other way round
/// (`+`): short enough to read even when an entry is a whole user-data.
fn line_differences(left: &[String], right: &[String]) -> String {
    let lines = |entries: &[String]| -> Vec<String> {
        entries
            .iter()
            .flat_map(|entry| {
                let name = entry.lines().next().unwrap_or_default().to_owned();
                entry
                    .lines()
                    .enumerate()
                    .map(move |(number, line)| {
                        if number == 0 {
                            line.to_owned()
                        } else {
                            format!("{name} line {number}: {line}")
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let (left, right) = (lines(left), lines(right));
    let mut text = String::new();
    for line in left.iter().filter(|line| !right.contains(line)) {
        text.push_str(&format!("  - terraform apply: {line}\n"));
    }
    for line in right.iter().filter(|line| !left.contains(line)) {
        text.push_str(&format!("  + skiff --yes:     {line}\n"));
    }
    text
}

/// Copies every object of `bucket` from one endpoint to the other (the
/// cluster's spec, PKI and recorded state), so that a direct apply on a
/// fresh endpoint builds from exactly what Terraform was written from.
fn copy_bucket(from: &LocalAws, to: &LocalAws, bucket: &str) {
    to.create_bucket(bucket);
    for key in from.list_keys(bucket, "") {
        let body = from.get_object(bucket, &key).expect("a listed object");
        to.put_object(bucket, &key, &body);
    }
}

/// `terraform init` (offline) and `apply` of the Terraform skiff wrote for
/// the fixture's cluster, against the fixture's endpoint; then a second
/// `plan` must show no changes, and what Terraform built must be what a
/// direct apply builds for the same spec and store on a fresh endpoint.
async fn terraform_apply_matches_direct_apply(
    tools: &TerraformTools,
    fixture: &Fixture,
    folder: &Path,
) -> BTreeMap<&'static str, Vec<String>> {
    write_provider_override(folder, &fixture.aws.endpoint())
        .expect("write provider_override.tf.json");
    init(tools, folder);
    let (code, output) = terraform_timed(
        tools,
        folder,
        &["apply", "-auto-approve", "-input=false", "-no-color"],
    );
    assert_eq!(code, 0, "terraform apply failed:\n{output}");
    let (code, output) = terraform_timed(
        tools,
        folder,
        &["plan", "-detailed-exitcode", "-input=false", "-no-color"],
    );
    assert_eq!(
        code, 0,
        "a second terraform plan is not empty (exit code 2 = changes):\n{output}"
    );

    let direct = LocalAws::start();
    copy_bucket(&fixture.aws, &direct, &fixture.bucket);
    let zones = fixture.zones.borrow().clone();
    for zone in &zones {
        aws_sdk_route53::Client::new(&direct.sdk_config().await)
            .create_hosted_zone()
            .name(zone)
            .caller_reference(format!("zone-{zone}"))
            .send()
            .await
            .expect("create hosted zone");
    }
    Skiff::new(&direct, &fixture.home)
        .args([
            "update",
            "cluster",
            &fixture.cluster,
            "--target",
            "direct",
            "--force-target",
            "--yes",
            "--state",
            &fixture.store,
        ])
        .run()
        .assert_success();

    let by_terraform = inventory(&fixture.aws, &fixture.cluster).await;
    let by_skiff = inventory(&direct, &fixture.cluster).await;
    assert!(
        by_terraform.contains_key("launch-template")
            && by_terraform.contains_key("autoscaling-group"),
        "Terraform built no launch templates or groups: {by_terraform:#?}"
    );
    let kinds: std::collections::BTreeSet<&&str> =
        by_terraform.keys().chain(by_skiff.keys()).collect();
    let mut differences = String::new();
    for kind in kinds {
        let empty = Vec::new();
        let left = by_terraform.get(kind).unwrap_or(&empty);
        let right = by_skiff.get(kind).unwrap_or(&empty);
        if left != right {
            differences.push_str(&format!("\n{kind}:\n{}", line_differences(left, right)));
        }
    }
    assert!(
        differences.is_empty(),
        "what terraform apply built differs from what `skiff update cluster --yes` built:{differences}"
    );
    by_terraform
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_cluster_terraform_apply_matches_direct_apply() {
    let Some(tools) = terraform_tools("gossip_cluster_terraform_apply_matches_direct_apply") else {
        return;
    };
    let fixture = Fixture::new("c.k8s.local");
    fixture
        .skiff(["create", "cluster", "c.k8s.local", "--zones", "us-east-1a"])
        .assert_success();
    let folder = fixture.home.join("gossip-terraform");
    fixture.write_terraform(&folder, &[]).assert_success();
    let built = terraform_apply_matches_direct_apply(&tools, &fixture, &folder).await;
    assert!(!built.contains_key("route53-record"), "{built:#?}");
    assert!(!built.contains_key("key-pair"), "{built:#?}");
}

/// A real (throw-away) ed25519 public key: the endpoint parses imported
/// keys, so a made-up one fails ImportKeyPair.
const SSH_PUBLIC_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKPcK+1wevRe8/l3IS5TI9Yb8Sdp74DJBEmZoxZIq9Ru test@skiff\n";

/// The HA private cluster with Calico (its IP-in-IP rules have no ports)
/// and an SSH key (a key pair resource): NAT gateways, Route53 records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ha_private_cluster_terraform_apply_matches_direct_apply() {
    let Some(tools) = terraform_tools("ha_private_cluster_terraform_apply_matches_direct_apply")
    else {
        return;
    };
    let fixture = Fixture::new("c1.example.com");
    fixture.create_zone("example.com").await;
    let key = fixture.home.join("id_ed25519.pub");
    std::fs::write(&key, SSH_PUBLIC_KEY).expect("write the SSH key");
    let mut create = vec!["create", "cluster", "c1.example.com"];
    create.extend(HA_PRIVATE_CLUSTER);
    create.extend([
        "--networking",
        "calico",
        "--ssh-public-key",
        key.to_str().expect("a UTF-8 path"),
    ]);
    fixture.skiff(create).assert_success();
    let folder = fixture.home.join("c1-terraform");
    fixture.write_terraform(&folder, &[]).assert_success();
    let configuration = std::fs::read_to_string(folder.join("skiff.tf.json")).expect("read");
    assert!(configuration.contains("\"aws_key_pair\""), "no key pair");
    assert!(
        configuration.contains("\"ip_protocol\": \"4\""),
        "no IP-in-IP rule"
    );
    let built = terraform_apply_matches_direct_apply(&tools, &fixture, &folder).await;
    let count = |kind: &str| built.get(kind).map_or(0, Vec::len);
    assert_eq!(count("nat-gateway"), 3, "{built:#?}");
    assert_eq!(count("key-pair"), 1, "{built:#?}");
    assert_eq!(count("autoscaling-group"), 6, "{built:#?}");
    assert!(count("route53-record") >= 1, "{built:#?}");
    assert_eq!(
        built["security-group-rule"]
            .iter()
            .filter(|rule| rule.contains(" ingress 4 -1..-1 "))
            .count(),
        4,
        "{built:#?}"
    );
}
