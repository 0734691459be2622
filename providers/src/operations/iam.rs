//! IAM roles (with their inline policy) and instance profiles.

use skiff_plans::resource::{IamRoleAttributes, InstanceProfileAttributes, ResourceKey};
use skiff_plans::Output;

use super::{value, Applied};
use crate::error::{aws_error, ProviderError, Result};
use crate::retry::retry;
use crate::tags::{changes, to_iam};
use crate::AwsProvider;

async fn put_policy(provider: &AwsProvider, role: &IamRoleAttributes) -> Result<()> {
    retry(&provider.retry, || async {
        provider
            .iam
            .put_role_policy()
            .role_name(&role.name)
            .policy_name(&role.policy_name)
            .policy_document(&role.policy)
            .send()
            .await
            .map_err(|error| aws_error("iam:PutRolePolicy", &role.name, error))
    })
    .await?;
    Ok(())
}

pub(crate) async fn create_role(
    provider: &AwsProvider,
    key: &ResourceKey,
    role: &IamRoleAttributes,
) -> Result<Applied> {
    let output = retry(&provider.retry, || async {
        provider
            .iam
            .create_role()
            .role_name(&role.name)
            .path(&role.path)
            .assume_role_policy_document(&role.assume_role_policy)
            .set_tags(Some(to_iam(&role.tags)))
            .description(format!("skiff: {}", key.as_str()))
            .send()
            .await
            .map_err(|error| aws_error("iam:CreateRole", &role.name, error))
    })
    .await?;
    let arn = output
        .role()
        .map(|created| created.arn().to_string())
        .ok_or_else(|| {
            ProviderError::other("iam:CreateRole", &role.name, "no role in the answer")
        })?;
    put_policy(provider, role).await?;
    Ok(Applied::with_id(&role.name)
        .output(Output::Name, &role.name)
        .output(Output::Arn, &arn))
}

pub(crate) async fn update_role(
    provider: &AwsProvider,
    before: &IamRoleAttributes,
    after: &IamRoleAttributes,
) -> Result<Applied> {
    let name = &after.name;
    if before.assume_role_policy != after.assume_role_policy {
        retry(&provider.retry, || async {
            provider
                .iam
                .update_assume_role_policy()
                .role_name(name)
                .policy_document(&after.assume_role_policy)
                .send()
                .await
                .map_err(|error| aws_error("iam:UpdateAssumeRolePolicy", name, error))
        })
        .await?;
    }
    if before.policy != after.policy || before.policy_name != after.policy_name {
        put_policy(provider, after).await?;
    }
    let (set, removed) = changes(&before.tags, &after.tags);
    if !set.is_empty() {
        retry(&provider.retry, || async {
            provider
                .iam
                .tag_role()
                .role_name(name)
                .set_tags(Some(to_iam(&set)))
                .send()
                .await
                .map_err(|error| aws_error("iam:TagRole", name, error))
        })
        .await?;
    }
    if !removed.is_empty() {
        retry(&provider.retry, || async {
            provider
                .iam
                .untag_role()
                .role_name(name)
                .set_tag_keys(Some(removed.clone()))
                .send()
                .await
                .map_err(|error| aws_error("iam:UntagRole", name, error))
        })
        .await?;
    }
    Ok(Applied::with_id(name).output(Output::Name, name))
}

pub(crate) async fn delete_role(provider: &AwsProvider, role: &IamRoleAttributes) -> Result<()> {
    let name = &role.name;
    // A role must leave its instance profiles and lose its inline policies first.
    let profiles = provider
        .iam
        .list_instance_profiles_for_role()
        .role_name(name)
        .send()
        .await
        .map_err(|error| aws_error("iam:ListInstanceProfilesForRole", name, error))?;
    for profile in profiles.instance_profiles() {
        remove_role(provider, profile.instance_profile_name(), name).await?;
    }
    let policies = provider
        .iam
        .list_role_policies()
        .role_name(name)
        .send()
        .await
        .map_err(|error| aws_error("iam:ListRolePolicies", name, error))?;
    for policy in policies.policy_names() {
        retry(&provider.retry, || async {
            provider
                .iam
                .delete_role_policy()
                .role_name(name)
                .policy_name(policy)
                .send()
                .await
                .map_err(|error| aws_error("iam:DeleteRolePolicy", name, error))
        })
        .await?;
    }
    retry(&provider.retry, || async {
        provider
            .iam
            .delete_role()
            .role_name(name)
            .send()
            .await
            .map_err(|error| aws_error("iam:DeleteRole", name, error))
    })
    .await?;
    Ok(())
}

async fn remove_role(provider: &AwsProvider, profile: &str, role: &str) -> Result<()> {
    let result = retry(&provider.retry, || async {
        provider
            .iam
            .remove_role_from_instance_profile()
            .instance_profile_name(profile)
            .role_name(role)
            .send()
            .await
            .map_err(|error| aws_error("iam:RemoveRoleFromInstanceProfile", profile, error))
    })
    .await;
    match result {
        Err(error) if error.is_missing() => Ok(()),
        other => other.map(|_| ()),
    }
}

async fn add_role(provider: &AwsProvider, profile: &str, role: &str) -> Result<()> {
    let result = retry(&provider.retry, || async {
        provider
            .iam
            .add_role_to_instance_profile()
            .instance_profile_name(profile)
            .role_name(role)
            .send()
            .await
            .map_err(|error| aws_error("iam:AddRoleToInstanceProfile", profile, error))
    })
    .await;
    match result {
        // Already in it (an interrupted earlier run).
        Err(error) if error.code.as_deref() == Some("LimitExceeded") => Ok(()),
        other => other.map(|_| ()),
    }
}

pub(crate) async fn create_instance_profile(
    provider: &AwsProvider,
    key: &ResourceKey,
    profile: &InstanceProfileAttributes,
) -> Result<Applied> {
    let role = value(key, "role", &profile.role)?;
    let output = retry(&provider.retry, || async {
        provider
            .iam
            .create_instance_profile()
            .instance_profile_name(&profile.name)
            .path(&profile.path)
            .send()
            .await
            .map_err(|error| aws_error("iam:CreateInstanceProfile", &profile.name, error))
    })
    .await?;
    let arn = output
        .instance_profile()
        .map(|created| created.arn().to_string())
        .ok_or_else(|| {
            ProviderError::other(
                "iam:CreateInstanceProfile",
                &profile.name,
                "no profile in the answer",
            )
        })?;
    add_role(provider, &profile.name, role).await?;
    Ok(Applied::with_id(&profile.name)
        .output(Output::Name, &profile.name)
        .output(Output::Arn, &arn))
}

pub(crate) async fn update_instance_profile(
    provider: &AwsProvider,
    key: &ResourceKey,
    before: &InstanceProfileAttributes,
    after: &InstanceProfileAttributes,
) -> Result<Applied> {
    if before.role != after.role {
        if let Some(old) = before.role.value().filter(|old| !old.is_empty()) {
            remove_role(provider, &after.name, old).await?;
        }
        add_role(provider, &after.name, value(key, "role", &after.role)?).await?;
    }
    Ok(Applied::with_id(&after.name).output(Output::Name, &after.name))
}

pub(crate) async fn delete_instance_profile(
    provider: &AwsProvider,
    profile: &InstanceProfileAttributes,
) -> Result<()> {
    if let Some(role) = profile.role.value().filter(|role| !role.is_empty()) {
        remove_role(provider, &profile.name, role).await?;
    }
    retry(&provider.retry, || async {
        provider
            .iam
            .delete_instance_profile()
            .instance_profile_name(&profile.name)
            .send()
            .await
            .map_err(|error| aws_error("iam:DeleteInstanceProfile", &profile.name, error))
    })
    .await?;
    Ok(())
}
