//! Reading what exists, cheaply: EC2 and Auto Scaling resources with one
//! filtered, paginated call per type (`tag:kubernetes.io/cluster/<name>` =
//! `owned`), load balancers by their derived names, IAM by the cluster's
//! path, the DNS record by name. The number of calls depends on the number
//! of resource *types*, not of instance groups or zones.
//!
//! Everything read is normalized into the planner's attribute types here,
//! so that what skiff applied compares equal to what it reads back.

use std::collections::BTreeMap;

use skiff_plans::names;
use skiff_plans::recorded::RecordedContent;
use skiff_plans::resource::{ResourceKey, ResourceKind, Tags};
use skiff_plans::Observed;

use crate::error::Result;
use crate::AwsProvider;

mod autoscaling;
mod ec2;
mod elb;
mod iam;
mod node_termination;
mod route53;

/// What to look for.
#[derive(Debug, Clone)]
pub struct RefreshScope {
    /// The cluster.
    pub cluster: String,
    /// The API record's hosted zone and name (`api.<cluster>.`), when the
    /// cluster uses Route53.
    pub dns_record: Option<(String, String)>,
    /// The recorded state, for what tags cannot prove.
    pub recorded: Option<RecordedContent>,
}

impl RefreshScope {
    /// The key a resource's tags give it, if it carries skiff's tags for
    /// this cluster and the key belongs to `kind`.
    pub(crate) fn key_of(&self, kind: ResourceKind, tags: &Tags) -> Option<ResourceKey> {
        if tags
            .get(&names::ownership_tag(&self.cluster))
            .map(String::as_str)
            != Some("owned")
        {
            return None;
        }
        let key = tags.get(names::RESOURCE_TAG)?;
        let prefix = kind.key_prefix();
        (key == prefix || key.starts_with(&format!("{prefix}/")))
            .then(|| ResourceKey::parse(key).ok())
            .flatten()
    }
}

impl AwsProvider {
    /// Reads every resource of the cluster.
    pub async fn refresh(&self, scope: &RefreshScope) -> Result<Observed> {
        let later = Later {
            dns_record: scope.dns_record.clone(),
            recorded: scope.recorded.clone(),
        };
        self.refresh_with(&scope.cluster, std::future::ready(later))
            .await
    }

    /// Reads every resource of `cluster`, starting at once with everything
    /// its tags and names find, while `later` resolves to what the rest
    /// needs: the API's DNS record is read where `later` says (else where
    /// its recorded state says), and the recorded state settles which of two
    /// resources with one key is the stray. A caller that still has to look
    /// up the hosted zone or read the recorded state starts the refresh
    /// meanwhile instead of after them.
    pub async fn refresh_with(
        &self,
        cluster: &str,
        later: impl std::future::Future<Output = Later>,
    ) -> Result<Observed> {
        let scope = RefreshScope {
            cluster: cluster.to_string(),
            dns_record: None,
            recorded: None,
        };
        let record = async {
            let later = later.await;
            let record = route53::refresh(
                self,
                &scope,
                later.dns_record.clone(),
                later.recorded.as_ref(),
            )
            .await?;
            Ok((record, later))
        };
        let (ec2, scaling, balancers, roles, (record, later), handler) = tokio::try_join!(
            ec2::refresh(self, &scope),
            scaling_and_hooks(self, &scope),
            elb::refresh(self, &scope),
            iam::refresh(self, &scope),
            record,
            node_termination(self, &scope),
        )?;
        let mut observed = assemble([ec2, scaling, balancers, roles, record, handler]);
        let Some(recorded) = &later.recorded else {
            return Ok(observed);
        };
        // A resource the recorded state knows but the listing left out may
        // be one AWS does not list yet (created moments ago: listings are
        // eventually consistent too). Treating it as deleted would plan a
        // duplicate, so look again, with growing waits, for a bounded time;
        // what is still missing then was deleted outside skiff.
        let started = tokio::time::Instant::now();
        let mut delay = std::time::Duration::from_millis(250);
        loop {
            let missing = missing_recorded(&observed, recorded);
            if missing.is_empty() || started.elapsed() + delay > self.retry.absence {
                if !missing.is_empty() {
                    tracing::debug!(
                        "recorded but not found after {:?}: {}",
                        started.elapsed(),
                        missing.join(", ")
                    );
                }
                break;
            }
            tracing::debug!(
                "recorded but not listed (yet?): {}; looking again in {delay:?}",
                missing.join(", ")
            );
            tokio::time::sleep(delay).await;
            delay *= 2;
            let (ec2, scaling, balancers, roles, record, handler) = tokio::try_join!(
                ec2::refresh(self, &scope),
                scaling_and_hooks(self, &scope),
                elb::refresh(self, &scope),
                iam::refresh(self, &scope),
                route53::refresh(self, &scope, later.dns_record.clone(), Some(recorded)),
                node_termination(self, &scope),
            )?;
            observed = assemble([ec2, scaling, balancers, roles, record, handler]);
        }
        keep_recorded(&mut observed, recorded);
        Ok(observed)
    }
}

/// The cluster's auto scaling groups, then their termination lifecycle
/// hooks (read through the groups: hooks carry no tags).
async fn scaling_and_hooks(
    provider: &AwsProvider,
    scope: &RefreshScope,
) -> Result<Vec<skiff_plans::ObservedResource>> {
    let mut groups = autoscaling::refresh(provider, scope).await?;
    let hooks = node_termination::refresh_hooks(provider, &groups).await?;
    groups.extend(hooks);
    Ok(groups)
}

/// The node termination handler's queue and rules, read by their names.
async fn node_termination(
    provider: &AwsProvider,
    scope: &RefreshScope,
) -> Result<Vec<skiff_plans::ObservedResource>> {
    let (mut queue, rules) = tokio::try_join!(
        node_termination::refresh_queue(provider, scope),
        node_termination::refresh_rules(provider, scope),
    )?;
    queue.extend(rules);
    Ok(queue)
}

/// One `Observed` of what each service's refresh found.
fn assemble<I: IntoIterator<Item = skiff_plans::ObservedResource>>(parts: [I; 6]) -> Observed {
    let mut observed = Observed::default();
    for part in parts {
        for resource in part {
            observed.insert(resource);
        }
    }
    observed
}

/// The keys of recorded resources the refresh did not find.
fn missing_recorded(observed: &Observed, recorded: &RecordedContent) -> Vec<String> {
    recorded
        .resources
        .iter()
        .filter(|(_, resource)| resource.kind.is_in_aws())
        .filter(|(key, _)| !observed.resources.contains_key(*key))
        .map(|(key, _)| key.as_str().to_string())
        .collect()
}

/// What a refresh needs only once its first reads are under way (see
/// [`AwsProvider::refresh_with`]).
#[derive(Debug, Clone, Default)]
pub struct Later {
    /// The API record's hosted zone and name (`api.<cluster>.`), when the
    /// cluster uses Route53.
    pub dns_record: Option<(String, String)>,
    /// The recorded state, for what tags cannot prove.
    pub recorded: Option<RecordedContent>,
}

/// When two resources carry the same key (a create retried after a lost
/// answer, or an interrupted run, can leave a second one), the one the
/// recorded state knows is the resource and the other the stray, whatever
/// order AWS listed them in: what refers to the recorded one (a NAT
/// gateway's address, a group's rules) then stays as it is, and only the
/// stray is deleted.
fn keep_recorded(observed: &mut Observed, recorded: &RecordedContent) {
    for stray in &mut observed.strays {
        let Some(known) = recorded.resources.get(&stray.key) else {
            continue;
        };
        if known.id != stray.id {
            continue;
        }
        if let Some(kept) = observed.resources.get_mut(&stray.key) {
            if kept.id != known.id {
                std::mem::swap(kept, stray);
            }
        }
    }
}

/// Outputs builder shorthand.
pub(crate) fn outputs(
    pairs: &[(skiff_plans::Output, &str)],
) -> BTreeMap<skiff_plans::Output, String> {
    pairs
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(output, value)| (*output, (*value).to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use skiff_plans::recorded::RecordedResource;
    use skiff_plans::resource::{Attributes, ElasticIpAttributes};
    use skiff_plans::ObservedResource;

    use super::*;

    fn address(id: &str) -> ObservedResource {
        ObservedResource {
            key: ResourceKey::new(ResourceKind::ElasticIp, "us-east-1a"),
            id: id.to_string(),
            attributes: Attributes::ElasticIp(ElasticIpAttributes {
                tags: Tags::default(),
            }),
            outputs: BTreeMap::new(),
        }
    }

    fn recording(id: &str) -> RecordedContent {
        let mut recorded = RecordedContent::default();
        recorded.resources.insert(
            ResourceKey::new(ResourceKind::ElasticIp, "us-east-1a"),
            RecordedResource {
                kind: ResourceKind::ElasticIp,
                id: id.to_string(),
                outputs: BTreeMap::new(),
                attributes: None,
            },
        );
        recorded
    }

    /// The addons are state-store objects the engine observes after the
    /// refresh: the cloud listing never has them, and looking again for
    /// them would make every plan of a cluster with addons list everything
    /// four times, seconds later.
    #[test]
    fn only_recorded_aws_resources_are_looked_for_again() {
        let mut recorded = recording("eipalloc-1");
        let addon = ResourceKey::new(ResourceKind::Addon, "metrics-server");
        recorded.resources.insert(
            addon.clone(),
            RecordedResource {
                kind: ResourceKind::Addon,
                id: "addons/metrics-server.yaml".to_string(),
                outputs: BTreeMap::new(),
                attributes: None,
            },
        );
        let mut observed = Observed::default();
        observed.insert(address("eipalloc-1"));
        assert!(missing_recorded(&observed, &recorded).is_empty());
        assert_eq!(
            missing_recorded(&Observed::default(), &recorded),
            vec!["elastic-ip/us-east-1a".to_string()]
        );
    }

    #[test]
    fn the_recorded_one_of_two_resources_with_a_key_is_kept() {
        // Listed stray first: swapped.
        let mut observed = Observed::default();
        observed.insert(address("eipalloc-stray"));
        observed.insert(address("eipalloc-recorded"));
        keep_recorded(&mut observed, &recording("eipalloc-recorded"));
        let key = ResourceKey::new(ResourceKind::ElasticIp, "us-east-1a");
        assert_eq!(observed.resources[&key].id, "eipalloc-recorded");
        assert_eq!(observed.strays.len(), 1);
        assert_eq!(observed.strays[0].id, "eipalloc-stray");

        // Listed recorded first, or neither recorded: unchanged.
        for recorded in ["eipalloc-first", "eipalloc-unknown"] {
            let mut observed = Observed::default();
            observed.insert(address("eipalloc-first"));
            observed.insert(address("eipalloc-second"));
            keep_recorded(&mut observed, &recording(recorded));
            assert_eq!(observed.resources[&key].id, "eipalloc-first");
            assert_eq!(observed.strays[0].id, "eipalloc-second");
        }
    }
}
