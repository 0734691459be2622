//! An HA private cluster on its own local AWS endpoint, and what is on that
//! endpoint: the shared bench of the tests that check convergence against
//! a misbehaving cloud (crash safety, realistic AWS behaviour). Everything
//! is checked by describing the endpoint directly through the AWS SDK and
//! by reading the store's bytes, never through skiff.

use std::collections::{BTreeMap, BTreeSet};
use std::thread;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::Filter;
use serde_json::Value;
use skiff_tests::{LocalAws, LocalAwsOptions, SandboxHome, Skiff, SkiffOutput, Stats};

pub const CLUSTER: &str = "c1.example.com";
pub const ZONE: &str = "example.com";
pub const ZONES: &str = "us-east-1a,us-east-1b,us-east-1c";
/// Short enough that a rerun takes over a killed run's lock quickly.
pub const LOCK_LEASE: &str = "2s";
/// Services that hold the cluster's resources (S3 is the state store, STS
/// only says who is calling): kill points count their mutating calls.
pub const CLOUD_SERVICES: [&str; 5] = [
    "ec2",
    "elasticloadbalancing",
    "autoscaling",
    "iam",
    "route53",
];
/// Reruns allowed after an interruption before the test gives up (a rerun
/// that finds the dead run's lock still leased waits and tries again).
pub const MAX_RERUNS: usize = 12;
/// Latency the endpoint adds to each call.
pub const LATENCY_MS: u64 = 5;
/// How long one skiff run may take.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// SDK clients tagged as harness traffic, so checking never counts.
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub iam: aws_sdk_iam::Client,
    pub route53: aws_sdk_route53::Client,
}

/// One endpoint and one sandboxed home; [`Bench::fresh_cluster`] gives a
/// clean slate (endpoint reset, new bucket, zone and spec) for each run.
pub struct Bench {
    pub aws: LocalAws,
    pub home: SandboxHome,
    pub clients: Clients,
    pub bucket: String,
    pub zone_id: String,
}

impl Bench {
    pub async fn new() -> Bench {
        Bench::start(LATENCY_MS, 0.0).await
    }

    /// A bench whose endpoint answers `rate` of the mutating calls with a
    /// throttling error (0.0: none).
    pub async fn with_throttling(rate: f64) -> Bench {
        Bench::start(LATENCY_MS, rate).await
    }

    /// A bench whose endpoint waits `latency_ms` before each call and
    /// throttles `throttle_rate` of the mutating ones.
    pub async fn start(latency_ms: u64, throttle_rate: f64) -> Bench {
        // A little latency per call, so that a kill lands close to the
        // intended call rather than a burst later.
        Bench::start_with(LocalAwsOptions {
            latency_ms,
            throttle_rate,
            ..LocalAwsOptions::default()
        })
        .await
    }

    /// A bench on an endpoint started with `options`.
    pub async fn start_with(options: LocalAwsOptions) -> Bench {
        let aws = LocalAws::start_with(options);
        let config = aws.sdk_config().await;
        let clients = Clients {
            ec2: aws_sdk_ec2::Client::new(&config),
            autoscaling: aws_sdk_autoscaling::Client::new(&config),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&config),
            iam: aws_sdk_iam::Client::new(&config),
            route53: aws_sdk_route53::Client::new(&config),
        };
        Bench {
            aws,
            home: SandboxHome::new(),
            clients,
            bucket: String::new(),
            zone_id: String::new(),
        }
    }

    pub fn store(&self) -> String {
        format!("s3://{}", self.bucket)
    }

    /// Forgets every resource of the endpoint, then creates a state bucket,
    /// the hosted zone and the HA private cluster's spec.
    pub async fn fresh_cluster(&mut self) {
        self.aws.reset_state();
        self.bucket = self.aws.create_unique_bucket("state");
        let created = self
            .clients
            .route53
            .create_hosted_zone()
            .name(ZONE)
            .caller_reference(format!("zone-{}", self.bucket))
            .send()
            .await
            .expect("create hosted zone");
        self.zone_id = created
            .hosted_zone()
            .expect("a zone")
            .id()
            .trim_start_matches("/hostedzone/")
            .to_owned();
        self.skiff([
            "create",
            "cluster",
            CLUSTER,
            "--zones",
            ZONES,
            "--control-plane-count",
            "3",
            "--topology",
            "private",
        ])
        .run()
        .assert_success();
        self.aws.reset_stats();
    }

    /// `skiff ARGS --state STORE` with a short lock lease.
    pub fn skiff<I, S>(&self, args: I) -> Skiff
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Skiff::new(&self.aws, &self.home)
            .args(args)
            .args(["--state", &self.store()])
            .env("SKIFF_LOCK_LEASE", LOCK_LEASE)
            .timeout(RUN_TIMEOUT)
    }

    /// Edits an instance group of the cluster: `get ig -o yaml`, `edit`,
    /// `replace -f`, each of which must succeed.
    pub fn edit_group(&self, group: &str, edit: impl FnOnce(&mut serde_norway::Value)) {
        let output = self
            .skiff(["get", "ig", "--name", CLUSTER, group, "-o", "yaml"])
            .run();
        output.assert_success();
        let mut document: serde_norway::Value = serde_norway::from_str(&output.stdout)
            .unwrap_or_else(|error| panic!("not one YAML document ({error}):\n{output}"));
        edit(&mut document);
        let text = serde_norway::to_string(&document).expect("serialize the edited group");
        let path = self.home.write(format!("{group}.yaml"), text);
        self.skiff([
            "replace".as_ref(),
            "-f".as_ref(),
            path.as_os_str(),
            "--name".as_ref(),
            CLUSTER.as_ref(),
        ])
        .run()
        .assert_success();
    }

    /// `rolling-update cluster --yes --cloudonly` with short validation
    /// intervals (no Kubernetes API: the instances are only replaced).
    pub fn rolling_update_command(&self) -> Skiff {
        self.skiff([
            "rolling-update",
            "cluster",
            CLUSTER,
            "--yes",
            "--cloudonly",
            "--validation-interval",
            "100ms",
            "--validation-timeout",
            "120s",
        ])
    }

    pub fn apply_command(&self) -> Skiff {
        self.skiff(["update", "cluster", CLUSTER, "--yes"])
    }

    pub fn delete_command(&self) -> Skiff {
        self.skiff(["delete", "cluster", CLUSTER, "--yes"])
    }

    /// Adds an instance group: a copy of `like`'s document named `name`
    /// (`get ig -o yaml`, `create -f`).
    pub fn add_group(&self, like: &str, name: &str) {
        let output = self
            .skiff(["get", "ig", "--name", CLUSTER, like, "-o", "yaml"])
            .run();
        output.assert_success();
        let mut document: serde_norway::Value = serde_norway::from_str(&output.stdout)
            .unwrap_or_else(|error| panic!("not one YAML document ({error}):\n{output}"));
        document["metadata"]["name"] = name.into();
        let text = serde_norway::to_string(&document).expect("serialize the new group");
        let path = self.home.write(format!("{name}.yaml"), text);
        self.skiff([
            "create".as_ref(),
            "-f".as_ref(),
            path.as_os_str(),
            "--name".as_ref(),
            CLUSTER.as_ref(),
        ])
        .run()
        .assert_success();
    }

    /// Mutating calls to the cloud services so far.
    pub fn cloud_mutations(&self) -> u64 {
        cloud_mutations(&self.aws.stats())
    }

    /// Starts an apply and interrupts it once at least `after` mutating
    /// cloud calls reached the endpoint: SIGKILL, or SIGINT when
    /// `interrupt`. Returns how it ended and the call count at the signal.
    pub fn interrupted_apply(&self, after: u64, interrupt: bool) -> (SkiffOutput, u64) {
        self.interrupted(self.apply_command(), after, interrupt)
    }

    /// Runs `command` and interrupts it once at least `after` mutating
    /// cloud calls reached the endpoint (see [`Bench::interrupted_apply`]).
    pub fn interrupted(&self, command: Skiff, after: u64, interrupt: bool) -> (SkiffOutput, u64) {
        let mut running = command.spawn();
        let started = Instant::now();
        let mut seen = 0;
        loop {
            if !running.is_running() {
                let output = running.wait();
                panic!(
                    "the run ended before {after} mutating calls (saw {seen}): pick an earlier point\n{output}"
                );
            }
            seen = self.cloud_mutations();
            if seen >= after {
                break;
            }
            assert!(
                started.elapsed() < RUN_TIMEOUT,
                "the run never reached {after} mutating calls (saw {seen})"
            );
            thread::sleep(Duration::from_millis(3));
        }
        if interrupt {
            running.interrupt();
        } else {
            running.kill();
        }
        (running.wait(), seen)
    }

    /// Reruns `update cluster --yes` until it succeeds. A run refused
    /// because the interrupted run's lock is still leased is retried; any
    /// other failure fails the test (a rerun must converge).
    pub fn rerun_until_success(&self, what: &str) -> usize {
        for attempt in 1..=MAX_RERUNS {
            let output = self.apply_command().run();
            output.assert_no_panic();
            if output.success() {
                return attempt;
            }
            assert!(
                output.stderr.contains("is locked by"),
                "{what}: rerun {attempt} failed for another reason than the dead run's lock\n{output}"
            );
            thread::sleep(Duration::from_millis(700));
        }
        panic!("{what}: no rerun succeeded in {MAX_RERUNS} attempts");
    }

    /// `update cluster --detailed-exitcode` exits 0: nothing left to do.
    pub fn assert_converged(&self, what: &str) {
        let output = self
            .skiff(["update", "cluster", CLUSTER, "--detailed-exitcode"])
            .run();
        if output.code != Some(0) {
            panic!(
                "{what}: the cluster did not converge (the preview still plans changes)\n{output}"
            );
        }
    }

    /// The recorded state (`<cluster>/state.json`).
    pub fn recorded_state(&self) -> Value {
        let bytes = self
            .aws
            .get_object(&self.bucket, &format!("{CLUSTER}/state.json"))
            .expect("state.json exists");
        serde_json::from_slice(&bytes).expect("state.json is JSON")
    }

    /// The keys of a map of the recorded state (`resources`, `intents`);
    /// none when there is no state yet.
    pub fn recorded_keys(&self, map: &str) -> BTreeSet<String> {
        if self
            .aws
            .get_object(&self.bucket, &format!("{CLUSTER}/state.json"))
            .is_none()
        {
            return BTreeSet::new();
        }
        self.recorded_state()[map]
            .as_object()
            .map(|entries| entries.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Every ID the recorded state knows: each resource's ID and outputs.
    pub fn recorded_ids(&self) -> BTreeSet<String> {
        let state = self.recorded_state();
        let resources = state["resources"]
            .as_object()
            .unwrap_or_else(|| panic!("state.json has no resources: {state:#}"));
        let mut ids = BTreeSet::new();
        for resource in resources.values() {
            if let Some(id) = resource["id"].as_str() {
                ids.insert(id.to_owned());
            }
            if let Some(outputs) = resource["outputs"].as_object() {
                ids.extend(
                    outputs
                        .values()
                        .filter_map(|value| value.as_str().map(str::to_owned)),
                );
            }
        }
        ids
    }

    /// The lock object, if any.
    pub fn lock_object(&self) -> Option<Vec<u8>> {
        self.aws
            .get_object(&self.bucket, &format!("{CLUSTER}/lock.json"))
    }

    /// Everything on the endpoint that belongs to the cluster.
    pub async fn inventory(&self) -> Inventory {
        let mut inventory = Inventory::default();
        let ec2 = &self.clients.ec2;
        let owned = owned_filter();

        let vpcs = ec2
            .describe_vpcs()
            .filters(owned.clone())
            .send()
            .await
            .expect("describe vpcs");
        for vpc in vpcs.vpcs() {
            inventory.add("vpc", ec2_key(vpc.tags()), vpc.vpc_id());
        }
        let subnets = ec2
            .describe_subnets()
            .filters(owned.clone())
            .send()
            .await
            .expect("describe subnets");
        for subnet in subnets.subnets() {
            let label = format!(
                "{} {}",
                ec2_key(subnet.tags()),
                subnet.cidr_block().unwrap_or_default()
            );
            inventory.add("subnet", label, subnet.subnet_id());
        }
        let gateways = ec2
            .describe_internet_gateways()
            .filters(owned.clone())
            .send()
            .await
            .expect("describe internet gateways");
        for gateway in gateways.internet_gateways() {
            let label = format!(
                "{} attachments={}",
                ec2_key(gateway.tags()),
                gateway.attachments().len()
            );
            inventory.add("internet-gateway", label, gateway.internet_gateway_id());
        }
        let addresses = ec2
            .describe_addresses()
            .filters(owned.clone())
            .send()
            .await
            .expect("describe addresses");
        for address in addresses.addresses() {
            let label = format!(
                "{} associated={}",
                ec2_key(address.tags()),
                address.association_id().is_some()
            );
            inventory.add("elastic-ip", label, address.allocation_id());
        }
        let nats = ec2
            .describe_nat_gateways()
            .filter(owned.clone())
            .send()
            .await
            .expect("describe nat gateways");
        for nat in nats.nat_gateways() {
            let state = nat.state().map(|state| state.as_str()).unwrap_or_default();
            if state == "deleted" {
                continue;
            }
            let label = format!("{} {state}", ec2_key(nat.tags()));
            inventory.add("nat-gateway", label, nat.nat_gateway_id());
        }
        let tables = ec2
            .describe_route_tables()
            .filters(owned.clone())
            .send()
            .await
            .expect("describe route tables");
        for table in tables.route_tables() {
            let associations = table
                .associations()
                .iter()
                .filter(|association| !association.main().unwrap_or(false))
                .count();
            let label = format!(
                "{} routes={} associations={associations}",
                ec2_key(table.tags()),
                table.routes().len()
            );
            inventory.add("route-table", label, table.route_table_id());
        }
        let groups = ec2
            .describe_security_groups()
            .filters(owned.clone())
            .send()
            .await
            .expect("describe security groups");
        for group in groups.security_groups() {
            let rules = |permissions: &[aws_sdk_ec2::types::IpPermission]| {
                permissions
                    .iter()
                    .map(|permission| {
                        permission.ip_ranges().len()
                            + permission.ipv6_ranges().len()
                            + permission.user_id_group_pairs().len()
                            + permission.prefix_list_ids().len()
                    })
                    .sum::<usize>()
            };
            let label = format!(
                "{} ingress={} egress={}",
                ec2_key(group.tags()),
                rules(group.ip_permissions()),
                rules(group.ip_permissions_egress())
            );
            inventory.add("security-group", label, group.group_id());
        }
        let templates = ec2
            .describe_launch_templates()
            .send()
            .await
            .expect("describe launch templates");
        for template in templates.launch_templates() {
            if !owned_ec2(template.tags()) {
                continue;
            }
            let label = format!(
                "{} {}",
                template.launch_template_name().unwrap_or_default(),
                ec2_key(template.tags())
            );
            inventory.add("launch-template", label, template.launch_template_id());
        }
        let pairs = ec2
            .describe_key_pairs()
            .filters(owned.clone())
            .send()
            .await
            .expect("describe key pairs");
        for pair in pairs.key_pairs() {
            inventory.add("key-pair", ec2_key(pair.tags()), pair.key_pair_id());
        }

        // Auto scaling groups, by their tags.
        let tag = ownership_tag();
        let scaling = self
            .clients
            .autoscaling
            .describe_auto_scaling_groups()
            .send()
            .await
            .expect("describe auto scaling groups");
        for group in scaling.auto_scaling_groups() {
            let owned = group.tags().iter().any(|candidate| {
                candidate.key() == Some(tag.as_str()) && candidate.value() == Some("owned")
            });
            if owned {
                let name = group.auto_scaling_group_name().unwrap_or_default();
                inventory.add("autoscaling-group", name, Some(name));
            }
        }

        // Load balancers, target groups and listeners, by their tags.
        let elb = &self.clients.elb;
        let balancers = elb
            .describe_load_balancers()
            .send()
            .await
            .expect("describe load balancers");
        let balancer_arns: Vec<String> = balancers
            .load_balancers()
            .iter()
            .filter_map(|balancer| balancer.load_balancer_arn().map(str::to_owned))
            .collect();
        let targets = elb
            .describe_target_groups()
            .send()
            .await
            .expect("describe target groups");
        let target_arns: Vec<String> = targets
            .target_groups()
            .iter()
            .filter_map(|target| target.target_group_arn().map(str::to_owned))
            .collect();
        let owned_arns = self.owned_elb_arns(&balancer_arns, &target_arns).await;
        for balancer in balancers.load_balancers() {
            let arn = balancer.load_balancer_arn().unwrap_or_default();
            if !owned_arns.contains(arn) {
                continue;
            }
            let name = balancer.load_balancer_name().unwrap_or_default();
            inventory.add("load-balancer", name, Some(arn));
            let listeners = elb
                .describe_listeners()
                .load_balancer_arn(arn)
                .send()
                .await
                .expect("describe listeners");
            for listener in listeners.listeners() {
                let label = format!("{name}:{}", listener.port().unwrap_or_default());
                inventory.add("listener", label, listener.listener_arn());
            }
        }
        for target in targets.target_groups() {
            let arn = target.target_group_arn().unwrap_or_default();
            if owned_arns.contains(arn) {
                let name = target.target_group_name().unwrap_or_default();
                inventory.add("target-group", name, Some(arn));
            }
        }

        // IAM under the cluster's path (and anything else named after it).
        let iam = &self.clients.iam;
        let roles = iam.list_roles().send().await.expect("list roles");
        for role in roles.roles() {
            if role.path().contains(CLUSTER) || role.role_name().contains(CLUSTER) {
                let label = format!(
                    "{} policies={}",
                    role.role_name(),
                    iam.list_role_policies()
                        .role_name(role.role_name())
                        .send()
                        .await
                        .expect("list role policies")
                        .policy_names()
                        .len()
                );
                inventory.add("iam-role", label, Some(role.role_name()));
            }
        }
        let profiles = iam
            .list_instance_profiles()
            .send()
            .await
            .expect("list instance profiles");
        for profile in profiles.instance_profiles() {
            let name = profile.instance_profile_name();
            if profile.path().contains(CLUSTER) || name.contains(CLUSTER) {
                let label = format!("{name} roles={}", profile.roles().len());
                inventory.add("instance-profile", label, Some(name));
            }
        }

        // Everything on the endpoint, tagged or not: the endpoint holds
        // nothing but this cluster (and the region's defaults), so equal
        // totals also rule out an untagged duplicate the tag filters above
        // cannot see.
        let totals = [
            (
                "vpcs",
                ec2.describe_vpcs().send().await.expect("vpcs").vpcs().len(),
            ),
            (
                "subnets",
                ec2.describe_subnets()
                    .send()
                    .await
                    .expect("subnets")
                    .subnets()
                    .len(),
            ),
            (
                "internet gateways",
                ec2.describe_internet_gateways()
                    .send()
                    .await
                    .expect("internet gateways")
                    .internet_gateways()
                    .len(),
            ),
            (
                "addresses",
                ec2.describe_addresses()
                    .send()
                    .await
                    .expect("addresses")
                    .addresses()
                    .len(),
            ),
            (
                "NAT gateways",
                ec2.describe_nat_gateways()
                    .send()
                    .await
                    .expect("NAT gateways")
                    .nat_gateways()
                    .iter()
                    .filter(|nat| nat.state().map(|state| state.as_str()) != Some("deleted"))
                    .count(),
            ),
            (
                "route tables",
                ec2.describe_route_tables()
                    .send()
                    .await
                    .expect("route tables")
                    .route_tables()
                    .len(),
            ),
            (
                "security groups",
                ec2.describe_security_groups()
                    .send()
                    .await
                    .expect("security groups")
                    .security_groups()
                    .len(),
            ),
            ("launch templates", templates.launch_templates().len()),
            ("key pairs", {
                ec2.describe_key_pairs()
                    .send()
                    .await
                    .expect("key pairs")
                    .key_pairs()
                    .len()
            }),
            ("auto scaling groups", scaling.auto_scaling_groups().len()),
            ("load balancers", balancers.load_balancers().len()),
            ("target groups", targets.target_groups().len()),
            ("IAM roles", roles.roles().len()),
            ("instance profiles", profiles.instance_profiles().len()),
        ];
        for (what, count) in totals {
            inventory.add_total(what, count);
        }

        // Route53 records named after the cluster.
        let records = self
            .clients
            .route53
            .list_resource_record_sets()
            .hosted_zone_id(&self.zone_id)
            .send()
            .await
            .expect("list record sets");
        inventory.add_total("records in the zone", records.resource_record_sets().len());
        for record in records.resource_record_sets() {
            if record.name().trim_end_matches('.').ends_with(CLUSTER) {
                let label = format!("{} {}", record.name(), record.r#type().as_str());
                inventory.add("dns-record", label.clone(), Some(&label));
            }
        }
        // The private zone `api.<cluster>` (issue 18) and its alias record:
        // a zone has no tags, so a duplicate shows only here.
        let zones = self
            .clients
            .route53
            .list_hosted_zones_by_name()
            .dns_name(format!("api.{CLUSTER}"))
            .send()
            .await
            .expect("list hosted zones by name");
        for zone in zones.hosted_zones() {
            let name = zone.name().trim_end_matches('.');
            if name != format!("api.{CLUSTER}") {
                continue;
            }
            let id = zone.id().trim_start_matches("/hostedzone/");
            inventory.add("hosted-zone", format!("{name} private"), Some(id));
            let records = self
                .clients
                .route53
                .list_resource_record_sets()
                .hosted_zone_id(id)
                .send()
                .await
                .expect("list record sets");
            for record in records.resource_record_sets() {
                if record.r#type().as_str() == "A" {
                    let label = format!("{} A in {name}", record.name());
                    inventory.add("dns-record", label.clone(), Some(&label));
                }
            }
        }
        inventory
    }

    /// The ARNs among `balancers` and `targets` tagged as owned by the cluster.
    pub async fn owned_elb_arns(
        &self,
        balancers: &[String],
        targets: &[String],
    ) -> BTreeSet<String> {
        let tag = ownership_tag();
        let mut owned = BTreeSet::new();
        // DescribeTags takes at most 20 ARNs.
        for chunk in balancers
            .chunks(20)
            .chain(targets.chunks(20))
            .filter(|chunk| !chunk.is_empty())
        {
            let described = self
                .clients
                .elb
                .describe_tags()
                .set_resource_arns(Some(chunk.to_vec()))
                .send()
                .await
                .expect("describe elb tags");
            for description in described.tag_descriptions() {
                let is_owned = description.tags().iter().any(|candidate| {
                    candidate.key() == Some(tag.as_str()) && candidate.value() == Some("owned")
                });
                if is_owned {
                    owned.extend(description.resource_arn().map(str::to_owned));
                }
            }
        }
        owned
    }

    /// The resources of `inventory` the recorded state does not know (DNS
    /// records by name, as they have no ID); all of them when there is no
    /// recorded state yet.
    pub fn unrecorded(&self, inventory: &Inventory) -> Vec<String> {
        let exists = self
            .aws
            .get_object(&self.bucket, &format!("{CLUSTER}/state.json"))
            .is_some();
        let (known, state) = if exists {
            (self.recorded_ids(), self.recorded_state())
        } else {
            (BTreeSet::new(), Value::Null)
        };
        let mut unrecorded = Vec::new();
        for (category, items) in &inventory.items {
            for (label, id) in items {
                let recorded = if category == "dns-record" {
                    state["resources"].as_object().is_some_and(|resources| {
                        resources.keys().any(|key| key.starts_with("dns-record/"))
                    })
                } else {
                    known.contains(id)
                };
                if !recorded {
                    unrecorded.push(format!("{category} {label} ({id})"));
                }
            }
        }
        unrecorded
    }

    /// Zero orphans: every resource of the cluster on the endpoint is known
    /// to the recorded state.
    pub fn assert_no_orphans(&self, inventory: &Inventory, what: &str) {
        let orphans = self.unrecorded(inventory);
        assert!(
            orphans.is_empty(),
            "{what}: resources of the cluster unknown to the recorded state (orphans):\n  {}\nstate.json: {:#}",
            orphans.join("\n  "),
            self.recorded_state()
        );
    }
}

/// The cluster's resources on the endpoint: per category, (label, ID)
/// pairs. Labels hold the resource key or name plus structural facts
/// (route and rule counts, attachments) but no IDs, so the inventories of
/// two endpoints compare equal when they hold the same resources.
#[derive(Debug, Default)]
pub struct Inventory {
    pub items: BTreeMap<String, Vec<(String, String)>>,
    pub totals: BTreeMap<String, usize>,
}

impl Inventory {
    pub fn add(&mut self, category: &str, label: impl Into<String>, id: Option<&str>) {
        self.items
            .entry(category.to_owned())
            .or_default()
            .push((label.into(), id.unwrap_or_default().to_owned()));
    }

    /// How many resources of a type the whole endpoint holds (no ID: never
    /// an orphan candidate).
    pub fn add_total(&mut self, what: &str, count: usize) {
        self.totals.insert(what.to_owned(), count);
    }

    /// The labels per category, sorted: what two endpoints must share.
    pub fn shape(&self) -> BTreeMap<String, Vec<String>> {
        let mut shape: BTreeMap<String, Vec<String>> = self
            .items
            .iter()
            .map(|(category, items)| {
                let mut labels: Vec<String> =
                    items.iter().map(|(label, _)| label.clone()).collect();
                labels.sort();
                (category.clone(), labels)
            })
            .collect();
        shape.insert(
            "endpoint totals".to_owned(),
            self.totals
                .iter()
                .map(|(what, count)| format!("{what}={count}"))
                .collect(),
        );
        shape
    }

    /// Categories whose labels repeat: duplicates.
    pub fn duplicates(&self) -> Vec<String> {
        let mut found = Vec::new();
        for (category, labels) in self.shape() {
            for pair in labels.windows(2) {
                if pair[0] == pair[1] {
                    found.push(format!("{category}: {}", pair[0]));
                }
            }
        }
        found
    }

    pub fn count(&self) -> usize {
        self.items.values().map(Vec::len).sum()
    }
}

pub fn ownership_tag() -> String {
    format!("kubernetes.io/cluster/{CLUSTER}")
}

pub fn owned_filter() -> Filter {
    Filter::builder()
        .name(format!("tag:{}", ownership_tag()))
        .values("owned")
        .build()
}

pub fn owned_ec2(tags: &[aws_sdk_ec2::types::Tag]) -> bool {
    let tag = ownership_tag();
    tags.iter().any(|candidate| {
        candidate.key() == Some(tag.as_str()) && candidate.value() == Some("owned")
    })
}

/// The skiff resource key an EC2 resource is tagged with.
pub fn ec2_key(tags: &[aws_sdk_ec2::types::Tag]) -> String {
    tags.iter()
        .find(|tag| tag.key() == Some("skiff.dev/resource"))
        .and_then(|tag| tag.value())
        .unwrap_or("(no resource key)")
        .to_owned()
}

pub fn cloud_mutations(stats: &Stats) -> u64 {
    stats
        .mutating_calls
        .iter()
        .filter(|(call, _)| {
            CLOUD_SERVICES
                .iter()
                .any(|service| call.starts_with(&format!("{service}:")))
        })
        .map(|(_, count)| count)
        .sum()
}

/// What an uninterrupted apply of the spec builds: its inventory and how
/// many mutating cloud calls it takes.
pub async fn baseline(bench: &mut Bench) -> (BTreeMap<String, Vec<String>>, u64) {
    bench.fresh_cluster().await;
    bench.apply_command().run().assert_success();
    let calls = bench.cloud_mutations();
    bench.assert_converged("the uninterrupted apply");
    let inventory = bench.inventory().await;
    assert!(
        inventory.duplicates().is_empty(),
        "an uninterrupted apply made duplicates: {:?}",
        inventory.duplicates()
    );
    bench.assert_no_orphans(&inventory, "the uninterrupted apply");
    assert!(
        inventory.count() >= 35,
        "the inventory misses resources: {inventory:#?}"
    );
    (inventory.shape(), calls)
}

/// What differs between two inventory shapes, per category.
pub fn shape_difference(
    expected: &BTreeMap<String, Vec<String>>,
    found: &BTreeMap<String, Vec<String>>,
) -> String {
    let categories: BTreeSet<&String> = expected.keys().chain(found.keys()).collect();
    let mut lines = Vec::new();
    for category in categories {
        let want = expected.get(category).cloned().unwrap_or_default();
        let got = found.get(category).cloned().unwrap_or_default();
        if want != got {
            lines.push(format!("{category}: expected {want:?}, found {got:?}"));
        }
    }
    lines.join("\n  ")
}
