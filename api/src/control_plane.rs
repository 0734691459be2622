//! `spec.controlPlane`: settings of the control-plane components that skiff
//! hands to kubeadm: the API server's audit log
//! (`spec.controlPlane.apiServer.audit`), and each component's extra flags
//! and host folders (`extraArgs`, `extraVolumes`:
//! [`crate::component_arguments`]).
//!
//! An audit policy is an `audit.k8s.io/v1` `Policy`
//! (kubernetes/kubernetes staging/src/k8s.io/apiserver/pkg/apis/audit/v1/types.go).
//! [`check_audit_policy`] parses it into typed structs that refuse unknown
//! fields, so a typo is refused here rather than by the API server of a node
//! that then never starts, and it refuses a policy whose rules could write
//! the body of a Secret into the log.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::component_arguments::{ComponentSpec, HostPathMount};

/// The default number of days an audit log file is kept after rotation.
pub const DEFAULT_AUDIT_MAX_AGE_DAYS: u32 = 30;
/// The default number of rotated audit log files kept.
pub const DEFAULT_AUDIT_MAX_BACKUPS: u32 = 10;
/// The default size in megabytes at which the audit log is rotated.
pub const DEFAULT_AUDIT_MAX_SIZE_MEGABYTES: u32 = 100;

/// Settings of the control plane's components.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ControlPlaneSpec {
    /// kube-apiserver.
    #[serde(default)]
    pub api_server: ApiServerSpec,
    /// kube-controller-manager's extra flags and host folders.
    #[serde(default, skip_serializing_if = "ComponentSpec::is_empty")]
    pub controller_manager: ComponentSpec,
    /// kube-scheduler's extra flags and host folders.
    #[serde(default, skip_serializing_if = "ComponentSpec::is_empty")]
    pub scheduler: ComponentSpec,
    /// The stacked etcd member's extra flags (kubeadm's local etcd takes no
    /// extraVolumes; validation refuses them).
    #[serde(default, skip_serializing_if = "ComponentSpec::is_empty")]
    pub etcd: ComponentSpec,
}

/// kube-apiserver settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiServerSpec {
    /// The audit log every control-plane node's API server writes.
    #[serde(default)]
    pub audit: AuditSpec,
    /// Extra flags, by name without the leading `--` (`oidc-issuer-url`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_args: BTreeMap<String, String>,
    /// Host paths mounted into the API server's static pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_volumes: Vec<HostPathMount>,
}

impl ApiServerSpec {
    /// The extra flags and folders as any component's.
    pub fn arguments(&self) -> ComponentSpec {
        ComponentSpec {
            extra_args: self.extra_args.clone(),
            extra_volumes: self.extra_volumes.clone(),
        }
    }
}

/// The API server's audit log: which requests are recorded (the policy)
/// and how long the files on each control-plane node are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditSpec {
    /// An `audit.k8s.io/v1` `Policy` in YAML; skiff's default policy when unset
    /// (docs/security.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Days a rotated log file is kept (`--audit-log-maxage`), 1 to 3650.
    #[serde(default = "default_max_age_days")]
    pub max_age_days: u32,
    /// Rotated log files kept (`--audit-log-maxbackup`), 1 to 1000.
    #[serde(default = "default_max_backups")]
    pub max_backups: u32,
    /// The size in megabytes at which the log is rotated
    /// (`--audit-log-maxsize`), 1 to 10240.
    #[serde(default = "default_max_size_megabytes")]
    pub max_size_megabytes: u32,
}

fn default_max_age_days() -> u32 {
    DEFAULT_AUDIT_MAX_AGE_DAYS
}

fn default_max_backups() -> u32 {
    DEFAULT_AUDIT_MAX_BACKUPS
}

fn default_max_size_megabytes() -> u32 {
    DEFAULT_AUDIT_MAX_SIZE_MEGABYTES
}

impl Default for AuditSpec {
    fn default() -> Self {
        AuditSpec {
            policy: None,
            max_age_days: DEFAULT_AUDIT_MAX_AGE_DAYS,
            max_backups: DEFAULT_AUDIT_MAX_BACKUPS,
            max_size_megabytes: DEFAULT_AUDIT_MAX_SIZE_MEGABYTES,
        }
    }
}

/// The allowed range of each numeric audit setting: (field, lowest, highest).
pub const AUDIT_LIMITS: [(&str, u32, u32); 3] = [
    ("maxAgeDays", 1, 3650),
    ("maxBackups", 1, 1000),
    ("maxSizeMegabytes", 1, 10_240),
];

impl AuditSpec {
    /// The value of a numeric setting by its field name in [`AUDIT_LIMITS`].
    pub fn limit_value(&self, field: &str) -> u32 {
        match field {
            "maxAgeDays" => self.max_age_days,
            "maxBackups" => self.max_backups,
            _ => self.max_size_megabytes,
        }
    }
}

/// An audit level (`audit.k8s.io/v1` `Level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum AuditLevel {
    /// Nothing is logged.
    None,
    /// Who did what to which object, without bodies.
    Metadata,
    /// Metadata and the request body.
    Request,
    /// Metadata, request and response bodies.
    RequestResponse,
}

impl AuditLevel {
    fn records_bodies(self) -> bool {
        matches!(self, AuditLevel::Request | AuditLevel::RequestResponse)
    }
}

/// An `audit.k8s.io/v1` `Policy`, as the API server reads it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditPolicy {
    /// Must be `audit.k8s.io/v1`.
    pub api_version: String,
    /// Must be `Policy`.
    pub kind: String,
    /// Object metadata (ignored by the API server).
    #[serde(default)]
    pub metadata: Option<serde_norway::Value>,
    /// The rules; the first that matches a request decides its level.
    pub rules: Vec<AuditRule>,
    /// Stages never recorded.
    #[serde(default)]
    pub omit_stages: Vec<String>,
    /// Whether managed fields are left out of bodies.
    #[serde(default)]
    pub omit_managed_fields: Option<bool>,
}

/// One rule of an audit policy (`PolicyRule`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditRule {
    /// The level of the requests this rule matches.
    pub level: AuditLevel,
    /// Users the rule applies to; all when empty.
    #[serde(default)]
    pub users: Vec<String>,
    /// User groups the rule applies to; all when empty.
    #[serde(default)]
    pub user_groups: Vec<String>,
    /// Verbs the rule applies to; all when empty.
    #[serde(default)]
    pub verbs: Vec<String>,
    /// Resources the rule applies to; all resource requests when empty.
    #[serde(default)]
    pub resources: Vec<AuditGroupResources>,
    /// Namespaces the rule applies to; all when empty.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Non-resource URLs (`/healthz*`) the rule applies to.
    #[serde(rename = "nonResourceURLs", default)]
    pub non_resource_urls: Vec<String>,
    /// Stages this rule does not record.
    #[serde(default)]
    pub omit_stages: Vec<String>,
    /// Whether managed fields are left out of bodies.
    #[serde(default)]
    pub omit_managed_fields: Option<bool>,
}

/// Resources of one API group (`GroupResources`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditGroupResources {
    /// The API group; `""` is the core group (where Secrets are).
    #[serde(default)]
    pub group: String,
    /// Resources of the group (`secrets`, `*`, `pods/log`); all when empty.
    #[serde(default)]
    pub resources: Vec<String>,
    /// Object names; all when empty.
    #[serde(default)]
    pub resource_names: Vec<String>,
}

impl AuditGroupResources {
    /// Whether this entry matches some Secret requests.
    fn matches_some_secrets(&self) -> bool {
        self.group.is_empty()
            && (self.resources.is_empty()
                || self
                    .resources
                    .iter()
                    .any(|resource| resource == "*" || resource.starts_with("secrets")))
    }

    /// Whether this entry matches every Secret request.
    fn matches_every_secret(&self) -> bool {
        self.group.is_empty()
            && self.resource_names.is_empty()
            && (self.resources.is_empty()
                || self
                    .resources
                    .iter()
                    .any(|resource| resource == "*" || resource == "secrets"))
    }
}

impl AuditRule {
    /// Whether the rule can match a request for a Secret. A rule with only
    /// `nonResourceURLs` matches no resource request; a rule with neither
    /// resources nor URLs matches every request.
    fn may_match_secrets(&self) -> bool {
        if self.resources.is_empty() {
            return self.non_resource_urls.is_empty();
        }
        self.resources
            .iter()
            .any(AuditGroupResources::matches_some_secrets)
    }

    /// Whether the rule matches every request for a Secret, whoever makes
    /// it: then no later rule sees one.
    fn matches_every_secret(&self) -> bool {
        let unrestricted = self.users.is_empty()
            && self.user_groups.is_empty()
            && self.verbs.is_empty()
            && self.namespaces.is_empty()
            && self.non_resource_urls.is_empty();
        unrestricted
            && (self.resources.is_empty()
                || self
                    .resources
                    .iter()
                    .any(AuditGroupResources::matches_every_secret))
    }
}

/// Why an audit policy is refused. The message completes
/// `spec.controlPlane.apiServer.audit.policy: ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditPolicyError {
    /// Not YAML of a `Policy` (an unknown field, a level that does not exist).
    #[error("not an audit.k8s.io/v1 Policy: {reason}")]
    Parse {
        /// The parser's message, with the field path.
        reason: String,
    },
    /// Another `apiVersion` or `kind`.
    #[error("apiVersion must be audit.k8s.io/v1 and kind Policy, not {api_version} {kind}")]
    WrongKind {
        /// What was given.
        api_version: String,
        /// What was given.
        kind: String,
    },
    /// No rule: the API server would record nothing.
    #[error("the policy has no rules; an empty policy records nothing (remove policy to use skiff's default)")]
    NoRules,
    /// A rule that could write a Secret's body into the log.
    #[error(
        "rules[{index}] has level {level:?} and can match Secrets, so the log would hold Secret values; \
         put a rule with level Metadata for resources [{{group: \"\", resources: [\"secrets\"]}}] before it, \
         or lower its level to Metadata"
    )]
    SecretBodies {
        /// The rule's index in `rules`.
        index: usize,
        /// Its level.
        level: AuditLevel,
    },
}

/// Parses and checks an audit policy (see the module documentation).
pub fn check_audit_policy(text: &str) -> Result<AuditPolicy, AuditPolicyError> {
    let deserializer = serde_norway::Deserializer::from_str(text);
    let policy: AuditPolicy = serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner().to_string();
        AuditPolicyError::Parse {
            reason: if path == "." {
                inner
            } else {
                format!("{path}: {inner}")
            },
        }
    })?;
    if policy.api_version != "audit.k8s.io/v1" || policy.kind != "Policy" {
        return Err(AuditPolicyError::WrongKind {
            api_version: policy.api_version.clone(),
            kind: policy.kind.clone(),
        });
    }
    if policy.rules.is_empty() {
        return Err(AuditPolicyError::NoRules);
    }
    // The first matching rule decides (the API server's policy evaluation,
    // staging/src/k8s.io/apiserver/pkg/audit/policy/checker.go): a rule
    // recording bodies is harmless once an earlier rule takes every Secret.
    for (index, rule) in policy.rules.iter().enumerate() {
        if rule.level.records_bodies() && rule.may_match_secrets() {
            return Err(AuditPolicyError::SecretBodies {
                index,
                level: rule.level,
            });
        }
        if rule.matches_every_secret() {
            break;
        }
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(rules: &str) -> String {
        format!("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n{rules}")
    }

    #[test]
    fn a_secrets_rule_first_makes_a_later_catch_all_request_rule_safe() {
        let text = policy(
            "  - level: Metadata\n    resources:\n      - group: \"\"\n        resources: [secrets]\n  - level: Request\n",
        );
        assert!(check_audit_policy(&text).is_ok());
    }

    #[test]
    fn a_body_rule_that_can_reach_secrets_is_refused_by_index() {
        let catch_all = policy(
            "  - level: None\n    nonResourceURLs: [/healthz*]\n  - level: RequestResponse\n",
        );
        assert_eq!(
            check_audit_policy(&catch_all).map(|_| ()),
            Err(AuditPolicyError::SecretBodies {
                index: 1,
                level: AuditLevel::RequestResponse
            })
        );
        // A Metadata rule for one user only does not cover everyone's Secrets.
        let partial = policy(
            "  - level: Metadata\n    users: [admin]\n    resources:\n      - group: \"\"\n        resources: [secrets]\n  - level: Request\n    resources:\n      - group: \"\"\n",
        );
        let error = check_audit_policy(&partial).expect_err("refused");
        assert!(
            error.to_string().starts_with("rules[1] has level Request"),
            "{error}"
        );
        // Another group's resources never include Secrets.
        let apps = policy("  - level: Request\n    resources:\n      - group: apps\n");
        assert!(check_audit_policy(&apps).is_ok());
    }

    #[test]
    fn unknown_fields_levels_and_kinds_are_refused() {
        let typo = policy("  - level: Metadata\n    verb: [get]\n");
        let error = check_audit_policy(&typo).expect_err("refused");
        assert!(error.to_string().contains("rules[0]"), "{error}");
        assert!(error.to_string().contains("verb"), "{error}");
        let level = policy("  - level: Everything\n");
        assert!(check_audit_policy(&level).is_err());
        let kind = "apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules:\n  - level: Metadata\n";
        assert!(matches!(
            check_audit_policy(kind),
            Err(AuditPolicyError::WrongKind { .. })
        ));
        assert_eq!(
            check_audit_policy("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n")
                .map(|_| ()),
            Err(AuditPolicyError::NoRules)
        );
    }
}
