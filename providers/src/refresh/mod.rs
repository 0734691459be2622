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
        (key == prefix || key.starts_with(&format!("{prefix}/"))).then(|| ResourceKey(key.clone()))
    }
}

impl AwsProvider {
    /// Reads every resource of the cluster.
    pub async fn refresh(&self, scope: &RefreshScope) -> Result<Observed> {
        let (ec2, scaling, balancers, roles, record) = tokio::try_join!(
            ec2::refresh(self, scope),
            autoscaling::refresh(self, scope),
            elb::refresh(self, scope),
            iam::refresh(self, scope),
            route53::refresh(self, scope),
        )?;
        let mut observed = Observed::default();
        for resource in ec2
            .into_iter()
            .chain(scaling)
            .chain(balancers)
            .chain(roles)
            .chain(record)
        {
            observed.insert(resource);
        }
        Ok(observed)
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
