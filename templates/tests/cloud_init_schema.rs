//! Every rendered user-data passes cloud-init's own schema check.
//!
//! CI installs cloud-init (Debian package `cloud-init`); without it this
//! test fails rather than skipping, since a skipped check looks like a pass.

mod support;

use std::process::Command;

use skiff_test_support::tools;
use support::examples::all_roles_and_families;

fn schema_check(cloud_init: &std::path::Path, user_data: &str) -> (bool, String) {
    let file = tempfile::NamedTempFile::new().expect("temporary file");
    std::fs::write(file.path(), user_data).expect("write user-data");
    let output = Command::new(cloud_init)
        .args(["schema", "--config-file"])
        .arg(file.path())
        .output()
        .expect("cloud-init runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn every_role_and_family_passes_cloud_init_schema() {
    let cloud_init = tools::require("cloud-init", "apt-get install -y cloud-init");
    tools::announce(&cloud_init, "--version");
    for (name, config) in all_roles_and_families() {
        let whole = skiff_templates::render_user_data(&config).expect("renders");
        // The document EC2 gets (with the loader) and the whole one.
        let ec2 = skiff_templates::ec2_user_data(&whole).expect("EC2's form");
        for (form, user_data) in [("EC2's", &ec2.text), ("whole", &whole)] {
            let (valid, report) = schema_check(&cloud_init, user_data);
            assert!(
                valid,
                "{name}: cloud-init schema rejected the {form} user-data:\n{report}"
            );
            assert!(report.contains("Valid cloud-config"), "{name}: {report}");
        }
    }
}

/// Proves the check above can fail: a malformed write_files is rejected.
#[test]
fn cloud_init_schema_rejects_a_broken_document() {
    let cloud_init = tools::require("cloud-init", "apt-get install -y cloud-init");
    let (valid, report) = schema_check(
        &cloud_init,
        "#cloud-config\nwrite_files:\n- path: /etc/x\n  permissions: 644\n  encoding: zip\n",
    );
    assert!(!valid, "cloud-init accepted an invalid document:\n{report}");
}
