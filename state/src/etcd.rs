//! The etcd backups the control-plane nodes write under `<cluster>/etcd/`,
//! as the operator's side reads them: listing, naming one by its ID, and
//! asking the next control plane to restore it.
//!
//! A backup's ID carries what an operator chooses by: when it was taken,
//! the etcd revision it holds and which node took it
//! (`20261206T121500Z-rev48213-i-0abc12345def67890`). IDs sort by time as
//! strings, so the store's sorted listing is already in time order; the
//! size is the object's own.

use std::fmt;
use std::str::FromStr;

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::error::Result;
use crate::layout;
use crate::objects::{ObjectStore, Precondition, PutOptions};

/// A text that is not a backup ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a backup ID like 20261206T121500Z-rev48213-i-0abc12345def67890 (UTC time, etcd revision, instance)")]
pub struct InvalidBackupId {
    /// What was given.
    pub text: String,
}

/// The ID of one etcd backup: `<UTC YYYYMMDDTHHMMSSZ>-rev<revision>-<instance-id>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BackupId {
    text: String,
    taken_at: OffsetDateTime,
    revision: u64,
    instance: String,
}

impl BackupId {
    /// The ID as written in the store.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// When the snapshot was taken (UTC, whole seconds).
    pub fn taken_at(&self) -> OffsetDateTime {
        self.taken_at
    }

    /// The etcd revision the snapshot holds.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The instance that took it.
    pub fn instance(&self) -> &str {
        &self.instance
    }
}

impl fmt::Display for BackupId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)
    }
}

impl FromStr for BackupId {
    type Err = InvalidBackupId;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        let invalid = || InvalidBackupId {
            text: text.to_string(),
        };
        let (stamp, rest) = text.split_once("-rev").ok_or_else(invalid)?;
        let (revision, instance) = rest.split_once('-').ok_or_else(invalid)?;
        let taken_at = parse_stamp(stamp).ok_or_else(invalid)?;
        if revision.is_empty() || !revision.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(invalid());
        }
        let revision: u64 = revision.parse().map_err(|_| invalid())?;
        let suffix = instance.strip_prefix("i-").ok_or_else(invalid)?;
        if suffix.is_empty()
            || suffix.len() > 32
            || !suffix.bytes().all(|byte| byte.is_ascii_alphanumeric())
        {
            return Err(invalid());
        }
        Ok(BackupId {
            text: text.to_string(),
            taken_at,
            revision,
            instance: instance.to_string(),
        })
    }
}

/// `YYYYMMDDTHHMMSSZ` as a UTC time.
fn parse_stamp(stamp: &str) -> Option<OffsetDateTime> {
    let bytes = stamp.as_bytes();
    if bytes.len() != 16 || bytes[8] != b'T' || bytes[15] != b'Z' {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = stamp.get(range)?;
        if !part.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let year = i32::try_from(digits(0..4)?).ok()?;
    let month = Month::try_from(u8::try_from(digits(4..6)?).ok()?).ok()?;
    let day = u8::try_from(digits(6..8)?).ok()?;
    let hour = u8::try_from(digits(9..11)?).ok()?;
    let minute = u8::try_from(digits(11..13)?).ok()?;
    let second = u8::try_from(digits(13..15)?).ok()?;
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time = Time::from_hms(hour, minute, second).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// One backup in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// Its ID.
    pub id: BackupId,
    /// Its key, relative to the store's root.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

/// The backups of a cluster, newest first. Objects in the folder whose names
/// are not `<ID>.db` are skipped (logged at debug level): a node's upload in
/// progress or a file someone put there is no backup.
pub async fn list_backups(objects: &dyn ObjectStore, cluster: &str) -> Result<Vec<Backup>> {
    let folder = layout::etcd_backups_folder(cluster);
    let mut backups = Vec::new();
    for listed in objects.list_sized(&folder).await? {
        let name = listed.key.strip_prefix(&folder).unwrap_or(&listed.key);
        let parsed = name
            .strip_suffix(layout::ETCD_BACKUP_SUFFIX)
            .filter(|id| !id.contains('/'))
            .map(str::parse::<BackupId>);
        match parsed {
            Some(Ok(id)) => backups.push(Backup {
                id,
                key: listed.key,
                size: listed.size,
            }),
            _ => tracing::debug!("{}: not an etcd backup (<ID>.db), skipped", listed.key),
        }
    }
    backups.sort_by(|first, second| {
        second
            .id
            .taken_at()
            .cmp(&first.id.taken_at())
            .then_with(|| second.id.as_str().cmp(first.id.as_str()))
    });
    Ok(backups)
}

/// Asks the next control plane that finds no live etcd member to restore
/// `id`: writes `<cluster>/etcd/restore-request` (one line), replacing an
/// earlier request.
pub async fn write_restore_request(
    objects: &dyn ObjectStore,
    cluster: &str,
    id: &BackupId,
) -> Result<()> {
    objects
        .put(
            &layout::restore_request(cluster),
            format!("{id}\n").into_bytes(),
            Precondition::None,
            PutOptions::default(),
        )
        .await?;
    Ok(())
}

/// The pending restore request of a cluster, if any: the ID as written.
pub async fn read_restore_request(
    objects: &dyn ObjectStore,
    cluster: &str,
) -> Result<Option<String>> {
    Ok(objects
        .get(&layout::restore_request(cluster))
        .await?
        .map(|object| String::from_utf8_lossy(&object.bytes).trim().to_string()))
}

/// When one certificate on a control-plane node expires, by kubeadm's name
/// for it (`apiserver`, `etcd-peer`, `admin.conf`, `ca`, ...).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateExpiry {
    /// kubeadm's name for the certificate.
    pub name: String,
    /// When it expires.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
}

/// What a control-plane node last reported about its certificates (written
/// after its bootstrap and by its daily certificate check: `kubeadm certs
/// check-expiration`, every certificate and authority kubeadm manages there).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateReport {
    /// The instance that wrote it.
    pub instance: String,
    /// When the node looked.
    #[serde(with = "time::serde::rfc3339")]
    pub checked: OffsetDateTime,
    /// Every certificate it found.
    pub certificates: Vec<CertificateExpiry>,
}

impl CertificateReport {
    /// The certificate that expires first.
    pub fn earliest(&self) -> Option<&CertificateExpiry> {
        self.certificates
            .iter()
            .min_by_key(|certificate| certificate.not_after)
    }
}

/// The certificate reports of a cluster's control-plane nodes, by instance.
/// An object that does not parse is skipped with a warning naming it: one
/// node's bad report must not hide the others'.
pub async fn list_certificate_reports(
    objects: &dyn ObjectStore,
    cluster: &str,
) -> Result<Vec<CertificateReport>> {
    let folder = layout::etcd_certificates_folder(cluster);
    let mut reports = Vec::new();
    for key in objects.list(&folder).await? {
        let Some(object) = objects.get(&key).await? else {
            continue; // deleted since the listing: its node left
        };
        match serde_json::from_slice::<CertificateReport>(&object.bytes) {
            Ok(report) => reports.push(report),
            Err(error) => tracing::warn!("{key}: not a certificate report ({error}); skipped"),
        }
    }
    reports.sort_by(|first, second| first.instance.cmp(&second.instance));
    Ok(reports)
}

/// What a control-plane node last said about its bootstrap (written at each
/// phase: `bootstrapping`, `upgrading`, `initialized`, `restored`, `joined`,
/// `upgraded`, or `failed` with the reason).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    /// The instance.
    pub instance: String,
    /// Its node name.
    #[serde(default)]
    pub node: String,
    /// The Kubernetes version it installs.
    #[serde(default)]
    pub kubernetes_version: String,
    /// Where its bootstrap is.
    pub phase: String,
    /// What it said, e.g. why it failed.
    #[serde(default)]
    pub message: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
}

impl NodeStatus {
    /// Whether the node's bootstrap failed.
    pub fn failed(&self) -> bool {
        self.phase == "failed"
    }
}

/// The status objects of a cluster's control-plane nodes, by instance. An
/// object that does not parse is skipped with a warning naming it.
pub async fn list_node_statuses(
    objects: &dyn ObjectStore,
    cluster: &str,
) -> Result<Vec<NodeStatus>> {
    let folder = layout::etcd_status_folder(cluster);
    let mut statuses = Vec::new();
    for key in objects.list(&folder).await? {
        let Some(object) = objects.get(&key).await? else {
            continue;
        };
        match serde_json::from_slice::<NodeStatus>(&object.bytes) {
            Ok(status) => statuses.push(status),
            Err(error) => tracing::warn!("{key}: not a node status ({error}); skipped"),
        }
    }
    statuses.sort_by(|first, second| first.instance.cmp(&second.instance));
    Ok(statuses)
}

/// What an external etcd member last reported of itself (written every
/// minute by the member's `report-health`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberHealthReport {
    /// The member's name (its instance group's).
    pub member: String,
    /// The instance that wrote it.
    pub instance: String,
    /// Whether `etcdctl endpoint health` succeeded at the member.
    pub healthy: bool,
    /// How many voting members its member list had.
    pub voting_members: usize,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub checked: OffsetDateTime,
}

/// The external etcd members' health reports, by member. An object that
/// does not parse is skipped with a warning naming it.
pub async fn list_member_health(
    objects: &dyn ObjectStore,
    cluster: &str,
) -> Result<Vec<MemberHealthReport>> {
    let folder = layout::etcd_health_folder(cluster);
    let mut reports = Vec::new();
    for key in objects.list(&folder).await? {
        let Some(object) = objects.get(&key).await? else {
            continue;
        };
        match serde_json::from_slice::<MemberHealthReport>(&object.bytes) {
            Ok(report) => reports.push(report),
            Err(error) => {
                tracing::warn!("{key}: not an etcd member health report ({error}); skipped")
            }
        }
    }
    reports.sort_by(|first, second| first.member.cmp(&second.member));
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_health_report_reads_as_the_member_writes_it() {
        let report: MemberHealthReport = serde_json::from_str(
            r#"{"member":"etcd-2","instance":"i-0b20000000000000b","healthy":true,"votingMembers":3,"checked":"2026-12-07T03:45:16Z"}"#,
        )
        .expect("parses");
        assert_eq!(report.member, "etcd-2");
        assert!(report.healthy);
        assert_eq!(report.voting_members, 3);
        assert_eq!(
            report.checked,
            time::macros::datetime!(2026-12-07 03:45:16 UTC)
        );
    }

    #[test]
    fn ids_parse_into_time_revision_and_instance() {
        let id: BackupId = "20261206T121500Z-rev48213-i-0abc12345def67890"
            .parse()
            .expect("parses");
        assert_eq!(id.revision(), 48213);
        assert_eq!(id.instance(), "i-0abc12345def67890");
        assert_eq!(
            id.taken_at(),
            time::macros::datetime!(2026-12-06 12:15:00 UTC)
        );
        assert_eq!(
            id.to_string(),
            "20261206T121500Z-rev48213-i-0abc12345def67890"
        );
    }

    #[test]
    fn other_names_are_not_ids() {
        for text in [
            "",
            "latest",
            "20261206T121500Z",
            "20261206T121500Z-rev-i-0abc",
            "20261206T121500Z-rev12-0abc",
            "20261206T121500Z-rev12-i-",
            "20261306T121500Z-rev12-i-0abc",
            "20261206T256000Z-rev12-i-0abc",
            "2026120xT121500Z-rev12-i-0abc",
            "20261206T121500Z-rev+12-i-0abc",
            "20261206T121500Z-rev12-i-0abc/../x",
            "20261206T121500Z-rev99999999999999999999999-i-0abc",
        ] {
            assert!(text.parse::<BackupId>().is_err(), "{text:?} parsed");
        }
    }

    #[tokio::test]
    async fn listing_is_newest_first_and_skips_other_names() {
        let folder = tempfile::tempdir().expect("temporary folder");
        let store = crate::objects::file::FileStore::open(folder.path()).expect("opens");
        let put = |key: &str, size: usize| {
            let store = store.clone();
            let key = key.to_string();
            async move {
                store
                    .put(
                        &key,
                        vec![0; size],
                        Precondition::None,
                        PutOptions::default(),
                    )
                    .await
                    .expect("writes");
            }
        };
        put("c1/etcd/backups/20261206T120000Z-rev10-i-0aaa.db", 3).await;
        put("c1/etcd/backups/20261206T121500Z-rev12-i-0bbb.db", 5).await;
        put("c1/etcd/backups/upload.tmp", 1).await;
        put("c1/etcd/backups/20261206T123000Z-rev14-i-0ccc.db.part", 1).await;
        put("c2/etcd/backups/20261206T130000Z-rev99-i-0ddd.db", 1).await;
        let backups = list_backups(&store, "c1").await.expect("lists");
        let ids: Vec<(&str, u64)> = backups
            .iter()
            .map(|backup| (backup.id.as_str(), backup.size))
            .collect();
        assert_eq!(
            ids,
            [
                ("20261206T121500Z-rev12-i-0bbb", 5),
                ("20261206T120000Z-rev10-i-0aaa", 3)
            ]
        );
    }
}
