//! The node termination handler's queue processor on control-plane nodes
//! (`templates/node-termination.sh.j2`, run by the
//! `skiff-node-termination.service` unit): the names and limits the
//! processor and the planner's AWS resources
//! (`skiff_plans::desired::node_termination`) share.
//!
//! The processor is in every control-plane node's script whether the
//! handler is on or off (`spec.addons.nodeTerminationHandler.enabled`), so
//! turning it on or off changes no user-data and rolls no node: with the
//! handler off, the queue and the processor's permissions are gone, and the
//! processor finds no queue, says so once, and looks again later.

use sha2::{Digest, Sha256};

/// How long the processor's drain of one node may take, in seconds: below
/// the lifecycle hook's heartbeat timeout (`HOOK_HEARTBEAT_SECONDS`, 300, in
/// the planner), leaving a minute to complete the lifecycle action.
pub const DRAIN_TIMEOUT_SECONDS: u32 = 240;

/// The cluster's queue name: `<cluster>-nth` (kops's form, KOPS
/// `pkg/model/awsmodel/nodeterminationhandler.go`) with every character SQS
/// does not allow in a name replaced by `-`, at most 80 characters (SQS
/// `CreateQueue`: "up to 80 characters... alphanumeric characters,
/// hyphens (-), and underscores (_)"); a longer name is cut and ends with a
/// hash of the whole, so it stays unique.
pub fn queue_name(cluster: &str) -> String {
    const LIMIT: usize = 80;
    let readable = format!("{cluster}-nth");
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
    if cleaned.len() <= LIMIT {
        return cleaned;
    }
    let hash = hex::encode(&Sha256::digest(readable.as_bytes())[..4]);
    let keep = LIMIT - hash.len() - 1;
    format!("{}-{hash}", cleaned[..keep].trim_end_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_fit_sqs() {
        assert_eq!(queue_name("c1.example.com"), "c1-example-com-nth");
        let long = queue_name(&format!("{}.example.com", "a".repeat(100)));
        assert_eq!(long.len(), 80);
        assert!(long
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || character == '-'));
        assert_ne!(
            long,
            queue_name(&format!("{}.example.org", "a".repeat(100)))
        );
    }
}
