//! External etcd (`spec.etcd.topology: external`): the members' fixed
//! addresses as the nodes see them.
//!
//! Every member's address is decided by the plan (its instance group's
//! launch template fixes the instance's private IP), so the etcd members'
//! `--initial-cluster` and the control plane's `etcd.external.endpoints`
//! are known when the user-data is rendered and never change when an
//! instance is replaced. docs/external-etcd.md says why.

use std::net::Ipv4Addr;

use crate::error::TemplateError;

/// The client port of every member (kubeadm's default, §2.1.7 of the guide).
pub const CLIENT_PORT: u16 = 2379;
/// The peer port of every member.
pub const PEER_PORT: u16 = 2380;

/// One member of the external etcd cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdMember {
    /// The member's name: its instance group's name (`etcd-1`), which stays
    /// when the group's instance is replaced.
    pub name: String,
    /// Its fixed private IP.
    pub address: Ipv4Addr,
}

impl EtcdMember {
    /// `https://<address>:2379`.
    pub fn client_url(&self) -> String {
        format!("https://{}:{CLIENT_PORT}", self.address)
    }

    /// `https://<address>:2380`.
    pub fn peer_url(&self) -> String {
        format!("https://{}:{PEER_PORT}", self.address)
    }
}

/// The external etcd cluster a node belongs to (an `Etcd` node) or uses
/// (a control-plane node).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExternalEtcd {
    /// Every member, in name order.
    pub members: Vec<EtcdMember>,
}

impl ExternalEtcd {
    /// The endpoints the API servers use, in member order.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(EtcdMember::client_url).collect()
    }

    /// etcd's `--initial-cluster`: `name=https://address:2380,...`.
    pub fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|member| format!("{}={}", member.name, member.peer_url()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The member named `name`.
    pub fn member(&self, name: &str) -> Option<&EtcdMember> {
        self.members.iter().find(|member| member.name == name)
    }

    pub(crate) fn validate(&self) -> Result<(), TemplateError> {
        if self.members.is_empty() {
            return Err(TemplateError::invalid(
                "external_etcd.members",
                "",
                "an external etcd cluster needs members",
            ));
        }
        for member in &self.members {
            let name_ok = !member.name.is_empty()
                && member.name.len() <= 63
                && member
                    .name
                    .bytes()
                    .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
            if !name_ok {
                return Err(TemplateError::invalid(
                    "external_etcd.members.name",
                    &member.name,
                    "a member name is an instance group name (lowercase letters, digits and hyphens)",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_the_initial_cluster_follow_the_member_order() {
        let etcd = ExternalEtcd {
            members: vec![
                EtcdMember {
                    name: "etcd-1".into(),
                    address: Ipv4Addr::new(10, 0, 31, 254),
                },
                EtcdMember {
                    name: "etcd-2".into(),
                    address: Ipv4Addr::new(10, 0, 63, 253),
                },
            ],
        };
        assert_eq!(
            etcd.endpoints(),
            ["https://10.0.31.254:2379", "https://10.0.63.253:2379"]
        );
        assert_eq!(
            etcd.initial_cluster(),
            "etcd-1=https://10.0.31.254:2380,etcd-2=https://10.0.63.253:2380"
        );
        assert!(etcd.validate().is_ok());
        assert!(ExternalEtcd::default().validate().is_err());
    }

    fn three_members() -> ExternalEtcd {
        ExternalEtcd {
            members: (1..=3)
                .map(|ordinal| EtcdMember {
                    name: format!("etcd-{ordinal}"),
                    address: Ipv4Addr::new(10, 0, 31 + 32 * (ordinal - 1), 255 - ordinal),
                })
                .collect(),
        }
    }

    fn file(config: &crate::NodeBootstrap, path: &str) -> Option<String> {
        crate::node_files(config)
            .expect("renders")
            .into_iter()
            .find(|file| file.path == path)
            .map(|file| file.content)
    }

    #[test]
    fn the_control_plane_lists_the_members_and_runs_no_local_etcd() {
        use skiff_api::{InstanceGroupRole, OsFamily};
        let stacked = crate::tests::example(InstanceGroupRole::ControlPlane, OsFamily::Debian);
        let external = crate::NodeBootstrap {
            external_etcd: Some(three_members()),
            ..stacked.clone()
        };
        let init = file(&external, crate::paths::KUBEADM_INIT_TEMPLATE).expect("init");
        let cluster: serde_norway::Value = init
            .split("\n---\n")
            .map(|document| serde_norway::from_str(document).expect("yaml"))
            .find(|document: &serde_norway::Value| document["kind"] == "ClusterConfiguration")
            .expect("a ClusterConfiguration");
        assert_eq!(
            cluster["etcd"]["local"],
            serde_norway::Value::Null,
            "{init}"
        );
        let endpoints: Vec<&str> = cluster["etcd"]["external"]["endpoints"]
            .as_sequence()
            .expect("endpoints")
            .iter()
            .map(|endpoint| endpoint.as_str().expect("text"))
            .collect();
        assert_eq!(
            endpoints,
            [
                "https://10.0.31.254:2379",
                "https://10.0.63.253:2379",
                "https://10.0.95.252:2379"
            ]
        );
        assert_eq!(
            cluster["etcd"]["external"]["certFile"],
            crate::paths::API_SERVER_ETCD_CLIENT_CERTIFICATE
        );
        let script = file(&external, crate::paths::BOOTSTRAP_SCRIPT).expect("script");
        assert!(
            script.contains("\nwait_for_external_etcd\n"),
            "waits for the members"
        );
        assert!(!script.contains("skiff-leave-etcd.service skiff-etcd-backup.timer"));
        let stacked_init = file(&stacked, crate::paths::KUBEADM_INIT_TEMPLATE).expect("init");
        assert!(stacked_init.contains("  local:\n    dataDir: /var/lib/etcd"));
        assert!(!stacked_init.contains("external:"));
    }

    #[test]
    fn a_member_runs_etcd_only_and_reads_no_kubernetes_secret() {
        use skiff_api::{InstanceGroupRole, OsFamily};
        let member = crate::NodeBootstrap {
            instance_group: "etcd-2".into(),
            external_etcd: Some(three_members()),
            ..crate::tests::example(InstanceGroupRole::Etcd, OsFamily::Rhel)
        };
        for path in [
            crate::paths::KUBEADM_INIT_TEMPLATE,
            crate::paths::KUBEADM_JOIN_TEMPLATE,
            crate::paths::API_ENDPOINT_FILE,
        ] {
            assert_eq!(file(&member, path), None, "{path}");
        }
        let config = file(&member, crate::paths::KUBEADM_ETCD_MEMBER_TEMPLATE).expect("config");
        assert!(config.contains("value: \"etcd-2\""), "{config}");
        assert!(config.contains("https://10.0.63.253:2380"), "{config}");
        let script = file(&member, crate::paths::BOOTSTRAP_SCRIPT).expect("script");
        assert!(
            script.contains("readonly MEMBER_ADDRESS='10.0.63.253'"),
            "{script}"
        );
        assert!(script.contains("kubeadm init phase etcd local"));
        assert!(!script.contains("secrets/bootstrap-token"));
        assert!(!script.contains("kubeadm join"));
        // A member that is not one of the cluster's is refused.
        let stranger = crate::NodeBootstrap {
            instance_group: "etcd-9".into(),
            ..member
        };
        assert!(crate::render_user_data(&stranger).is_err());
    }
}
