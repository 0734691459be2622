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
}
