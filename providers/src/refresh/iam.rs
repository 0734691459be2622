//! IAM roles and instance profiles under the cluster's path
//! (`/skiff/<cluster>/`): one list call each, plus tags and the inline
//! policy of each role (a fixed number: control plane and nodes).

use std::collections::BTreeMap;

use skiff_plans::canonical::canonicalize_text;
use skiff_plans::desired::iam::POLICY_NAME;
use skiff_plans::resource::{
    Attributes, IamRoleAttributes, Id, InstanceProfileAttributes, ResourceKey, ResourceKind,
};
use skiff_plans::{names, ObservedResource, Output};

use super::{outputs, RefreshScope};
use crate::error::{aws_error, Result};
use crate::tags::from_iam;
use crate::AwsProvider;

/// Decodes IAM's URL-encoded policy documents.
pub(crate) fn url_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' && index + 2 < bytes.len() {
            if let Some(value) = text
                .get(index + 1..index + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            {
                decoded.push(value);
                index += 3;
                continue;
            }
        }
        decoded.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&decoded).to_string()
}

/// A policy document as IAM returns it, in canonical form.
pub(crate) fn policy_text(document: &str) -> String {
    let decoded = if document.trim_start().starts_with('{') {
        document.to_string()
    } else {
        url_decode(document)
    };
    canonicalize_text(&decoded)
}

pub(super) async fn refresh(
    provider: &AwsProvider,
    scope: &RefreshScope,
) -> Result<Vec<ObservedResource>> {
    let path = names::iam_path(&scope.cluster);
    // The roles (each with its tags and policy, all at once) and the
    // instance profiles are listed at the same time.
    let (mut found, profiles) = tokio::try_join!(roles(provider, scope, &path), async {
        let mut profiles = Vec::new();
        let mut pages = provider
            .iam
            .list_instance_profiles()
            .path_prefix(&path)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| aws_error("iam:ListInstanceProfiles", &path, error))?;
            profiles.extend(page.instance_profiles().iter().cloned());
        }
        Ok(profiles)
    })?;
    let role_keys: BTreeMap<String, ResourceKey> = found
        .iter()
        .map(|role| (role.id.clone(), role.key.clone()))
        .collect();
    for profile in &profiles {
        let name = profile.instance_profile_name();
        let role = profile
            .roles()
            .first()
            .map(|role| role.role_name().to_string())
            .unwrap_or_default();
        // Profiles have no tags in this listing; they belong to the
        // cluster by path and take the key of the role of the same name.
        let Some(role_key) = role_keys.get(name).or_else(|| role_keys.get(&role)) else {
            continue;
        };
        let key = ResourceKey::new(ResourceKind::InstanceProfile, role_key.name());
        found.push(ObservedResource {
            key,
            id: name.to_string(),
            attributes: Attributes::InstanceProfile(InstanceProfileAttributes {
                name: name.to_string(),
                path: profile.path().to_string(),
                role: Id::from(role.as_str()),
            }),
            outputs: outputs(&[
                (Output::Id, name),
                (Output::Name, name),
                (Output::Arn, profile.arn()),
            ]),
        });
    }
    Ok(found)
}

/// The cluster's roles under its path, each read with its tags and inline
/// policy (every role's at once).
async fn roles(
    provider: &AwsProvider,
    scope: &RefreshScope,
    path: &str,
) -> Result<Vec<ObservedResource>> {
    let mut roles = Vec::new();
    let mut pages = provider
        .iam
        .list_roles()
        .path_prefix(path)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|error| aws_error("iam:ListRoles", path, error))?;
        roles.extend(page.roles().iter().cloned());
    }
    let read = futures::future::try_join_all(roles.iter().map(|role| async move {
        let name = role.role_name();
        let (tags, policy) = tokio::try_join!(
            async {
                provider
                    .iam
                    .list_role_tags()
                    .role_name(name)
                    .send()
                    .await
                    .map(|output| from_iam(output.tags()))
                    .map_err(|error| aws_error("iam:ListRoleTags", name, error))
            },
            async {
                match provider
                    .iam
                    .get_role_policy()
                    .role_name(name)
                    .policy_name(POLICY_NAME)
                    .send()
                    .await
                {
                    Ok(output) => Ok(policy_text(output.policy_document())),
                    Err(error) => {
                        let error = aws_error("iam:GetRolePolicy", name, error);
                        if error.is_missing() {
                            Ok(String::new())
                        } else {
                            Err(error)
                        }
                    }
                }
            },
        )?;
        let Some(key) = scope.key_of(ResourceKind::IamRole, &tags) else {
            return Ok(None);
        };
        Ok(Some(ObservedResource {
            key,
            id: name.to_string(),
            attributes: Attributes::IamRole(IamRoleAttributes {
                name: name.to_string(),
                path: role.path().to_string(),
                assume_role_policy: role
                    .assume_role_policy_document()
                    .map(policy_text)
                    .unwrap_or_default(),
                policy_name: POLICY_NAME.to_string(),
                policy,
                tags,
            }),
            outputs: outputs(&[
                (Output::Id, name),
                (Output::Name, name),
                (Output::Arn, role.arn()),
            ]),
        }))
    }))
    .await?;
    Ok(read.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_iam_documents() {
        assert_eq!(url_decode("%7B%22a%22%3A1%7D"), r#"{"a":1}"#);
        assert_eq!(
            policy_text("%7B%22b%22%3A1%2C%22a%22%3A2%7D"),
            r#"{"a":2,"b":1}"#
        );
        assert_eq!(url_decode("100%"), "100%");
    }
}
