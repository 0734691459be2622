//! AWS names and tags of a cluster's resources: deterministic, unique per
//! cluster, and within each service's limits (a load balancer name has at
//! most 32 characters, an IAM role name 64).

use sha2::{Digest, Sha256};

use crate::resource::{ResourceKey, Tags};

/// The tag every skiff resource carries with the cluster name (the name
/// kops and the Kubernetes AWS cloud provider use).
pub const CLUSTER_TAG: &str = "KubernetesCluster";
/// The tag every skiff resource carries with its resource key.
pub const RESOURCE_TAG: &str = "skiff.dev/resource";
/// The tag naming an instance's group.
pub const INSTANCE_GROUP_TAG: &str = "skiff.dev/instance-group";
/// The tag naming an instance's role.
pub const ROLE_TAG: &str = "skiff.dev/role";

/// `kubernetes.io/cluster/<name>`, valued `owned` on what the cluster owns.
pub fn ownership_tag(cluster: &str) -> String {
    format!("kubernetes.io/cluster/{cluster}")
}

/// The tags of a resource: cloud labels, then the cluster and ownership
/// tags, the resource key and a `Name`.
pub fn tags(cluster: &str, cloud_labels: &Tags, key: &ResourceKey, name: &str) -> Tags {
    let mut tags = cloud_labels.clone();
    tags.insert(CLUSTER_TAG.to_string(), cluster.to_string());
    tags.insert(ownership_tag(cluster), "owned".to_string());
    tags.insert(RESOURCE_TAG.to_string(), key.to_string());
    tags.insert("Name".to_string(), name.to_string());
    tags
}

/// A short stable hash of a text, for names that must be shortened.
pub fn short_hash(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..4])
}

/// A name of at most `limit` characters from `[a-zA-Z0-9-]`: the readable
/// form when it fits, else a truncated form with a hash so it stays unique.
pub fn limited(readable: &str, limit: usize) -> String {
    let cleaned: String = readable
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || character == '-' {
                character
            } else {
                '-'
            }
        })
        .collect();
    let cleaned = cleaned.trim_matches('-').to_string();
    if cleaned.len() <= limit {
        return cleaned;
    }
    let hash = short_hash(readable);
    let keep = limit - hash.len() - 1;
    format!("{}-{hash}", cleaned[..keep].trim_end_matches('-'))
}

/// The API load balancer's name (at most 32 characters).
pub fn load_balancer(cluster: &str) -> String {
    limited(&format!("api-{cluster}"), 32)
}

/// The API target group's name (at most 32 characters).
pub fn target_group(cluster: &str) -> String {
    limited(&format!("tcp-{cluster}"), 32)
}

/// The internal API load balancer's name (at most 32 characters): the
/// endpoint nodes use when the API load balancer is internet-facing.
pub fn internal_load_balancer(cluster: &str) -> String {
    limited(&format!("api-int-{cluster}"), 32)
}

/// The internal API load balancer's target group name (at most 32 characters).
pub fn internal_target_group(cluster: &str) -> String {
    limited(&format!("tcp-int-{cluster}"), 32)
}

/// The IAM path of the cluster's roles and instance profiles.
pub fn iam_path(cluster: &str) -> String {
    format!("/skiff/{cluster}/")
}

/// An IAM role (and instance profile) name for a role (at most 64 characters).
pub fn iam_role(cluster: &str, role: &str) -> String {
    let readable = format!("{role}.{cluster}");
    if readable.len() <= 64 {
        readable
    } else {
        limited(&readable, 64)
    }
}

/// The EC2 key pair's name.
pub fn key_pair(cluster: &str, public_key: &str) -> String {
    format!("skiff.{cluster}-{}", short_hash(public_key))
}

/// A launch template or auto scaling group name for an instance group.
pub fn instance_group_resource(cluster: &str, group: &str) -> String {
    format!("{group}.{cluster}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_balancer_names_fit_and_stay_unique() {
        assert_eq!(load_balancer("c1.example.com"), "api-c1-example-com");
        let long_one = load_balancer("a-very-long-cluster-name.dev.example.com");
        let long_two = load_balancer("a-very-long-cluster-name.prd.example.com");
        assert!(long_one.len() <= 32 && long_two.len() <= 32);
        assert_ne!(long_one, long_two);
    }

    #[test]
    fn role_names_fit() {
        let name = iam_role(&"x".repeat(70), "control-plane");
        assert!(name.len() <= 64, "{name}");
    }
}
