//! Security groups and their ingress rules.

use aws_sdk_ec2::types::{IpPermission, IpRange, ResourceType, UserIdGroupPair};
use skiff_plans::resource::{
    IngressRule, ResourceKey, RuleSource, SecurityGroupAttributes, SecurityGroupRulesAttributes,
};

use super::{value, Applied};
use crate::error::{aws_error, ProviderError, Result};
use crate::retry::retry;
use crate::tags::ec2_spec;
use crate::AwsProvider;

pub(crate) async fn create_group(
    provider: &AwsProvider,
    key: &ResourceKey,
    group: &SecurityGroupAttributes,
) -> Result<Applied> {
    let vpc = value(key, "vpc", &group.vpc)?;
    let output = retry(&provider.retry, || async {
        provider
            .ec2
            .create_security_group()
            .group_name(&group.name)
            .description(&group.description)
            .vpc_id(vpc)
            .tag_specifications(ec2_spec(ResourceType::SecurityGroup, &group.tags))
            .send()
            .await
            .map_err(|error| aws_error("ec2:CreateSecurityGroup", key.as_str(), error))
    })
    .await?;
    let id = output.group_id().ok_or_else(|| {
        ProviderError::other(
            "ec2:CreateSecurityGroup",
            key.as_str(),
            "no group ID in the answer",
        )
    })?;
    Ok(Applied::with_id(id))
}

pub(crate) async fn delete_group(provider: &AwsProvider, id: &str) -> Result<()> {
    // Instances and load balancers may still be letting go of it (their
    // network interfaces linger after they are deleted): wait for them.
    super::holders::delete_when_free(
        provider,
        super::holders::Held::SecurityGroup(id),
        || async {
            provider
                .ec2
                .delete_security_group()
                .group_id(id)
                .send()
                .await
                .map_err(|error| aws_error("ec2:DeleteSecurityGroup", id, error))
        },
    )
    .await?;
    Ok(())
}

fn permission(key: &ResourceKey, rule: &IngressRule) -> Result<IpPermission> {
    let mut builder = IpPermission::builder().ip_protocol(&rule.protocol);
    if rule.protocol != "-1" {
        builder = builder.from_port(rule.from_port).to_port(rule.to_port);
    }
    builder = match &rule.source {
        RuleSource::Cidr(cidr) => builder.ip_ranges(IpRange::builder().cidr_ip(cidr).build()),
        RuleSource::Group(group) => builder.user_id_group_pairs(
            UserIdGroupPair::builder()
                .group_id(value(key, "ingress", group)?)
                .build(),
        ),
    };
    Ok(builder.build())
}

async fn authorize(
    provider: &AwsProvider,
    key: &ResourceKey,
    group: &str,
    rules: &[&IngressRule],
) -> Result<()> {
    if rules.is_empty() {
        return Ok(());
    }
    let permissions: Vec<IpPermission> = rules
        .iter()
        .map(|rule| permission(key, rule))
        .collect::<Result<_>>()?;
    let result = retry(&provider.retry, || async {
        provider
            .ec2
            .authorize_security_group_ingress()
            .group_id(group)
            .set_ip_permissions(Some(permissions.clone()))
            .send()
            .await
            .map_err(|error| aws_error("ec2:AuthorizeSecurityGroupIngress", key.as_str(), error))
    })
    .await;
    match result {
        // A rule already there (an earlier run was interrupted) is what we want.
        Err(error) if error.code.as_deref() == Some("InvalidPermission.Duplicate") => {
            for rule in rules {
                let single = vec![permission(key, rule)?];
                let result = provider
                    .ec2
                    .authorize_security_group_ingress()
                    .group_id(group)
                    .set_ip_permissions(Some(single))
                    .send()
                    .await
                    .map_err(|error| {
                        aws_error("ec2:AuthorizeSecurityGroupIngress", key.as_str(), error)
                    });
                match result {
                    Ok(_) => {}
                    Err(error) if error.code.as_deref() == Some("InvalidPermission.Duplicate") => {}
                    Err(error) => return Err(error),
                }
            }
            Ok(())
        }
        Err(error) => Err(error),
        Ok(_) => Ok(()),
    }
}

async fn revoke(
    provider: &AwsProvider,
    key: &ResourceKey,
    group: &str,
    rules: &[&IngressRule],
) -> Result<()> {
    if rules.is_empty() {
        return Ok(());
    }
    let permissions: Vec<IpPermission> = rules
        .iter()
        .map(|rule| permission(key, rule))
        .collect::<Result<_>>()?;
    retry(&provider.retry, || async {
        provider
            .ec2
            .revoke_security_group_ingress()
            .group_id(group)
            .set_ip_permissions(Some(permissions.clone()))
            .send()
            .await
            .map_err(|error| aws_error("ec2:RevokeSecurityGroupIngress", key.as_str(), error))
    })
    .await?;
    Ok(())
}

pub(crate) async fn create_rules(
    provider: &AwsProvider,
    key: &ResourceKey,
    rules: &SecurityGroupRulesAttributes,
) -> Result<Applied> {
    let group = value(key, "group", &rules.group)?;
    let all: Vec<&IngressRule> = rules.ingress.iter().collect();
    authorize(provider, key, group, &all).await?;
    Ok(Applied::with_id(group))
}

pub(crate) async fn update_rules(
    provider: &AwsProvider,
    key: &ResourceKey,
    id: &str,
    before: &SecurityGroupRulesAttributes,
    after: &SecurityGroupRulesAttributes,
) -> Result<Applied> {
    let missing: Vec<&IngressRule> = after
        .ingress
        .iter()
        .filter(|rule| !before.ingress.contains(rule))
        .collect();
    let extra: Vec<&IngressRule> = before
        .ingress
        .iter()
        .filter(|rule| !after.ingress.contains(rule))
        .collect();
    authorize(provider, key, id, &missing).await?;
    revoke(provider, key, id, &extra).await?;
    Ok(Applied::with_id(id))
}

pub(crate) async fn delete_rules(
    provider: &AwsProvider,
    key: &ResourceKey,
    id: &str,
    rules: &SecurityGroupRulesAttributes,
) -> Result<()> {
    let all: Vec<&IngressRule> = rules.ingress.iter().collect();
    revoke(provider, key, id, &all).await
}
