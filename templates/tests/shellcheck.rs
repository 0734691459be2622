//! Every shell script the user-data carries (and every sandbox stub) passes
//! shellcheck with no finding of any severity.
//!
//! CI installs shellcheck; without it this test fails rather than skipping.

mod support;

use std::path::Path;
use std::process::Command;

use skiff_test_support::cloud_config::CloudConfig;
use skiff_test_support::sandbox::STUBS_DIRECTORY;
use skiff_test_support::tools;
use support::examples::all_roles_and_families;

fn shellcheck(shellcheck: &Path, name: &str, script: &str) -> Result<(), String> {
    let file = tempfile::NamedTempFile::new().expect("temporary file");
    std::fs::write(file.path(), script).expect("write script");
    let output = Command::new(shellcheck)
        .args(["--shell=bash", "--severity=style", "--format=gcc"])
        .arg(file.path())
        .output()
        .expect("shellcheck runs");
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{name}:\n{}",
            String::from_utf8_lossy(&output.stdout)
        ))
    }
}

#[test]
fn every_shell_part_of_the_user_data_is_clean() {
    let tool = tools::require("shellcheck", "apt-get install -y shellcheck");
    tools::announce(&tool, "--version");
    let mut checked = 0;
    let mut findings = Vec::new();
    for (name, config) in all_roles_and_families() {
        let whole = skiff_templates::render_user_data(&config).expect("renders");
        // EC2's document carries the loader; the whole one, the script.
        let ec2 = skiff_templates::ec2_user_data(&whole).expect("EC2's form");
        if ec2.text != whole {
            let loader = CloudConfig::parse(&ec2.text)
                .files
                .into_iter()
                .find(|file| file.path == skiff_templates::paths::BOOTSTRAP_SCRIPT)
                .expect("the loader");
            checked += 1;
            if let Err(finding) = shellcheck(&tool, &format!("{name} loader"), &loader.content) {
                findings.push(finding);
            }
        }
        let user_data = whole;
        let parsed = CloudConfig::parse(&user_data);
        for file in parsed
            .files
            .iter()
            .filter(|file| file.content.starts_with("#!"))
        {
            checked += 1;
            if let Err(finding) = shellcheck(&tool, &format!("{name} {}", file.path), &file.content)
            {
                findings.push(finding);
            }
        }
        if !parsed.commands.is_empty() {
            checked += 1;
            let runcmd = format!("#!/bin/bash\n{}\n", parsed.commands.join("\n"));
            if let Err(finding) = shellcheck(&tool, &format!("{name} runcmd"), &runcmd) {
                findings.push(finding);
            }
        }
    }
    // Per family and container runtime: the control plane's loader,
    // bootstrap script (which is also what its units run) and runcmd, the
    // worker's likewise, and with external etcd the member's and the
    // control plane's; and a Calico control plane of a cluster with Windows
    // nodes.
    assert_eq!(checked, 39, "unexpected number of shell parts");
    assert!(
        findings.is_empty(),
        "shellcheck findings:\n{}",
        findings.join("\n")
    );
}

#[test]
fn sandbox_stubs_are_clean() {
    let tool = tools::require("shellcheck", "apt-get install -y shellcheck");
    let directory = Path::new(STUBS_DIRECTORY);
    let mut findings = Vec::new();
    for entry in std::fs::read_dir(directory).expect("stubs") {
        let path = entry.expect("entry").path();
        let script = std::fs::read_to_string(&path).expect("stub");
        if let Err(finding) = shellcheck(&tool, &path.display().to_string(), &script) {
            findings.push(finding);
        }
    }
    assert!(
        findings.is_empty(),
        "shellcheck findings:\n{}",
        findings.join("\n")
    );
}

/// Proves the check can fail.
#[test]
fn shellcheck_flags_an_unquoted_expansion() {
    let tool = tools::require("shellcheck", "apt-get install -y shellcheck");
    assert!(shellcheck(&tool, "bad", "#!/bin/bash\nrm -rf $1/\n").is_err());
}
