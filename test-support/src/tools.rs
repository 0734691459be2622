//! External tools the tests run. CI installs them; a missing tool fails the
//! test loudly instead of skipping it, because a skipped check looks like a
//! passing one.

use std::path::PathBuf;
use std::process::Command;

/// The absolute path of `name`, or a panic that says how to install it.
pub fn require(name: &str, install_hint: &str) -> PathBuf {
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .expect("sh runs");
    let path = String::from_utf8_lossy(&output.stdout).trim().to_string();
    assert!(
        output.status.success() && !path.is_empty(),
        "`{name}` is required by this test and was not found on PATH; install it: {install_hint}"
    );
    PathBuf::from(path)
}

/// The version line of a tool, printed so a CI log shows what checked the output.
pub fn announce(path: &PathBuf, version_argument: &str) {
    let output = Command::new(path)
        .arg(version_argument)
        .output()
        .expect("tool runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let version_line = text
        .lines()
        .find(|line| line.contains(|character: char| character.is_ascii_digit()))
        .unwrap_or("version unknown")
        .trim()
        .to_string();
    eprintln!("using {} ({version_line})", path.display());
}
