//! The gate every operation that writes secrets to the state store passes
//! first: the store's security check ([`skiff_state::security`], made once
//! per run) and, on a refusal-level finding, a refusal that names each
//! finding and its fix, before anything is written.
//!
//! The operations that call it: `create cluster` and `create -f` (a new
//! cluster's next step writes its keys), `update cluster --yes`, `apply`
//! (a saved plan), `update cluster --target terraform` (the PKI), `restore
//! cluster --yes` (the rebuilt control plane writes etcd backups, which
//! hold every Kubernetes Secret). `--allow-insecure-store` lets them go on,
//! with a warning naming each finding.

use skiff_state::security::{SecurityReport, StoreFinding};
use skiff_state::StateStore;

use crate::error::{Refusal, Result};
use crate::notes::{Note, Notes};

/// Whether a refusal-level finding stops the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InsecureStore {
    /// Refuse (the default).
    #[default]
    Refuse,
    /// Go on, warning (`--allow-insecure-store`).
    Allow,
}

/// Checks the store before `what` writes secrets to it: refuses on a
/// refusal-level finding unless `policy` allows it (then warns).
pub async fn require_secure_store(
    store: &StateStore,
    what: &str,
    policy: InsecureStore,
    notes: &dyn Notes,
) -> Result<()> {
    let report = store.security().await;
    gate(report, what, policy, notes)
}

/// The decision on a report (pure, for the tests).
pub fn gate(
    report: &SecurityReport,
    what: &str,
    policy: InsecureStore,
    notes: &dyn Notes,
) -> Result<()> {
    let refusals: Vec<&StoreFinding> = report.refusals().collect();
    if refusals.is_empty() {
        return Ok(());
    }
    let listed = list(&refusals);
    match policy {
        InsecureStore::Refuse => Err(Refusal::InsecureStore {
            what: what.to_string(),
            store: report.store.clone(),
            findings: listed,
        }
        .into()),
        InsecureStore::Allow => {
            notes.note(Note::InsecureStoreAllowed {
                what: what.to_string(),
                store: report.store.clone(),
                findings: listed,
            });
            Ok(())
        }
    }
}

/// One finding a line: what, then the fix.
fn list(findings: &[&StoreFinding]) -> String {
    findings
        .iter()
        .map(|finding| format!("\n  - {}\n    fix: {}", finding.detail, finding.fix))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use skiff_state::security::{FindingKind, Severity};

    use super::*;

    #[derive(Default)]
    struct Collected(Mutex<Vec<Note>>);

    impl Notes for Collected {
        fn note(&self, note: Note) {
            self.0.lock().expect("notes").push(note);
        }
    }

    fn report(severity: Severity) -> SecurityReport {
        SecurityReport {
            store: "s3://b/team".to_string(),
            encryption: None,
            findings: vec![StoreFinding {
                kind: FindingKind::NoDefaultEncryption,
                severity,
                detail: "the bucket has no default encryption".to_string(),
                fix: "run `skiff state init s3://b/team --yes`".to_string(),
            }],
        }
    }

    #[test]
    fn refusals_stop_warnings_pass_and_the_flag_warns() {
        let notes = Collected::default();
        let refused = gate(
            &report(Severity::Refusal),
            "update cluster c1",
            InsecureStore::Refuse,
            &notes,
        )
        .expect_err("refused");
        let text = refused.to_string();
        assert!(text.contains("no default encryption"), "{text}");
        assert!(
            text.contains("skiff state init s3://b/team --yes"),
            "{text}"
        );
        assert!(text.contains("--allow-insecure-store"), "{text}");
        gate(
            &report(Severity::Warning),
            "update cluster c1",
            InsecureStore::Refuse,
            &notes,
        )
        .expect("warnings pass");
        assert!(notes.0.lock().expect("notes").is_empty());
        gate(
            &report(Severity::Refusal),
            "update cluster c1",
            InsecureStore::Allow,
            &notes,
        )
        .expect("allowed");
        let notes = notes.0.lock().expect("notes");
        assert_eq!(notes.len(), 1);
        assert!(notes[0].is_warning());
        assert!(notes[0].to_string().contains("no default encryption"));
    }
}
