//! The order of a plan's deletes: which delete waits for which.
//!
//! A delete in a plan carries no per-resource dependencies (what it
//! depended on when it was created is gone from the spec), so the order
//! comes from the kinds: a resource can only go once nothing that AWS
//! counts as using it is left. [`holders`] lists, per kind, the kinds whose
//! resources hold it; a delete waits for every delete of those kinds in the
//! same plan, and nothing else. Everything that holds nothing starts at
//! once: the DNS record, the auto scaling groups (whose instances take
//! tens of seconds to terminate), the listeners and then the load balancer
//! (whose network interfaces linger for minutes after it is deleted), and,
//! right after the route tables, the NAT gateways (a minute in `deleting`,
//! holding their address, subnet and the VPC's public mappings). What they
//! hold (security groups, subnets, the internet gateway) waits for them,
//! and retries its `DependencyViolation` while AWS releases what they left
//! (see `providers/src/retry.rs`). Deleting kind after kind instead would
//! put those waits one after another: about 30 s + 120 s + 60 s for the
//! reference cluster, where overlapped they take 120 s.
//!
//! Every holder kind comes later in [`ResourceKind::ALL`] than what it
//! holds (a test checks it), so the order is always a subset of the former
//! "kinds in reverse build order" and can never have a cycle.

use std::collections::{BTreeMap, BTreeSet};

use crate::plan::{Action, Plan};
use crate::resource::{ResourceKey, ResourceKind};

/// The kinds whose resources must be deleted before a resource of `kind`
/// can be, and why (AWS's own rule in each comment).
pub fn holders(kind: ResourceKind) -> &'static [ResourceKind] {
    use ResourceKind::*;
    match kind {
        // Nothing uses a record, a group (ForceDelete terminates its
        // instances), a listener, a route table's routes or a group's rules.
        DnsRecord | AutoScalingGroup | Listener | RouteTable | SecurityGroupRules => &[],
        // Nothing uses a hook or a rule; a hook deleted with its group
        // (ForceDelete deletes the group's outstanding lifecycle actions)
        // is gone, which the delete takes as done.
        LifecycleHook | EventRule => &[],
        // A rule targeting a deleted queue would fail every delivery; the
        // rules go first.
        SqsQueue => &[EventRule],
        // A store object: nothing in AWS holds it.
        Addon => &[],
        // DeleteLaunchTemplate is refused while a group launches from it
        // (ResourceInUse) in practice; the group goes first.
        LaunchTemplate => &[AutoScalingGroup],
        // A target group in use by a listener or registered with a group
        // cannot be deleted (ResourceInUse).
        TargetGroup => &[Listener, AutoScalingGroup],
        // Its listeners go with it, but the record pointing at it goes
        // first, so the API's name never resolves to nothing that exists.
        LoadBalancer => &[Listener, DnsRecord],
        // DeleteHostedZone: HostedZoneNotEmpty while it holds any record
        // but its SOA and NS.
        HostedZone => &[DnsRecord],
        // Unused once no template names it.
        KeyPair | InstanceProfile => &[LaunchTemplate],
        // DeleteRole: DeleteConflict while an instance profile holds it.
        IamRole => &[InstanceProfile],
        // DeleteSecurityGroup: DependencyViolation while a network interface
        // (an instance's, a load balancer's) or another group's rule uses it.
        SecurityGroup => &[
            SecurityGroupRules,
            LaunchTemplate,
            AutoScalingGroup,
            LoadBalancer,
        ],
        // A NAT gateway used by a route stays a blackhole target; routes go
        // first so no route ever points at a deleting gateway.
        NatGateway => &[RouteTable],
        // ReleaseAddress: InvalidIPAddress.InUse while a NAT gateway holds it.
        ElasticIp => &[NatGateway],
        // DeleteSubnet: DependencyViolation while any network interface is in
        // it (instances, load balancer, NAT gateway) or a table is associated.
        Subnet => &[NatGateway, LoadBalancer, AutoScalingGroup, RouteTable],
        // DetachInternetGateway: DependencyViolation while the VPC has mapped
        // public addresses (NAT gateways, internet-facing load balancers,
        // instances with public IPs); routes through it go first.
        InternetGateway => &[
            NatGateway,
            ElasticIp,
            LoadBalancer,
            AutoScalingGroup,
            RouteTable,
        ],
        // DeleteVpc: DependencyViolation while anything is left in it.
        Vpc => &[
            InternetGateway,
            Subnet,
            ElasticIp,
            NatGateway,
            RouteTable,
            SecurityGroup,
            SecurityGroupRules,
            LoadBalancer,
            TargetGroup,
            Listener,
            LaunchTemplate,
            AutoScalingGroup,
            // A private zone associated with the VPC: the zone goes first,
            // so it never outlives the only VPC it answers in.
            HostedZone,
        ],
    }
}

/// For every delete of `plan`, the deletes of the same plan that must
/// finish before it starts.
pub fn delete_dependencies(plan: &Plan) -> BTreeMap<ResourceKey, BTreeSet<ResourceKey>> {
    let deletes: Vec<(&ResourceKey, ResourceKind)> = plan
        .changes
        .iter()
        .filter(|change| change.action == Action::Delete)
        .map(|change| (&change.key, change.kind))
        .collect();
    deletes
        .iter()
        .map(|(key, kind)| {
            let held_by = holders(*kind);
            let before = deletes
                .iter()
                .filter(|(other, other_kind)| other != key && held_by.contains(other_kind))
                .map(|(other, _)| (*other).clone())
                .collect();
            ((*key).clone(), before)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::kind_rank;

    #[test]
    fn every_holder_comes_later_in_build_order_so_the_order_has_no_cycle() {
        for kind in ResourceKind::ALL {
            for holder in holders(kind) {
                assert!(
                    kind_rank(*holder) > kind_rank(kind),
                    "{holder:?} holds {kind:?} but is built before it"
                );
            }
        }
    }

    #[test]
    fn everything_in_a_vpc_goes_before_the_vpc() {
        let in_vpc: Vec<ResourceKind> = ResourceKind::ALL
            .into_iter()
            .filter(|kind| {
                !matches!(
                    kind,
                    ResourceKind::Vpc
                        | ResourceKind::IamRole
                        | ResourceKind::InstanceProfile
                        | ResourceKind::KeyPair
                        | ResourceKind::DnsRecord
                        | ResourceKind::LifecycleHook
                        | ResourceKind::SqsQueue
                        | ResourceKind::EventRule
                        | ResourceKind::Addon
                )
            })
            .collect();
        for kind in in_vpc {
            assert!(
                holders(ResourceKind::Vpc).contains(&kind),
                "{kind:?} is in the VPC but the VPC does not wait for it"
            );
        }
    }

    #[test]
    fn the_slow_holders_start_at_once() {
        // What AWS keeps for minutes after a delete must not wait behind
        // another slow delete.
        for kind in [
            ResourceKind::AutoScalingGroup,
            ResourceKind::Listener,
            ResourceKind::RouteTable,
        ] {
            assert!(holders(kind).is_empty(), "{kind:?} waits for something");
        }
        assert_eq!(
            holders(ResourceKind::LoadBalancer),
            [ResourceKind::Listener, ResourceKind::DnsRecord]
        );
        assert_eq!(
            holders(ResourceKind::NatGateway),
            [ResourceKind::RouteTable]
        );
    }
}
