//! The bootstrap script kept in the state store, and its loader in the
//! user-data.
//!
//! EC2 takes at most 16 KB of user-data, compressed; a control-plane
//! node's bootstrap script alone came within a kilobyte of it. So the
//! user-data EC2 gets carries, at [`paths::BOOTSTRAP_SCRIPT`], a small
//! loader instead of the script; the script is an object of the state
//! store named by its SHA-256 ([`state_store::SCRIPTS_FOLDER`]), which the
//! loader fetches with the instance's IAM role, checks and runs (the way
//! kops' user-data fetches nodeup by hash).
//!
//! Everywhere else, the user-data is the *whole* document, with the script
//! in place: what the planner renders and diffs, what the preview explains,
//! what a node runs in the end. Two pure functions move between the forms:
//! [`ec2_user_data`] (whole → EC2's, plus the object to store) and
//! [`with_stored_script`] (EC2's + the stored object → whole). The swap is
//! textual and exact, so whole → EC2's → whole gives back the same bytes,
//! and the script's hash names exactly what a node will run: a launch
//! template never points at a script that could change under it.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::TemplateError;
use crate::paths;
use crate::render::{render, shared_environment, WRITE_FILES_CONTENT};
use crate::state_store;

/// The first line after the shebang of every loader: how a loader is told
/// from a script.
const LOADER_MARKER: &str = "# skiff bootstrap loader.";

/// User-data as EC2 gets it, and the object the state store must hold
/// before an instance launches with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ec2UserData {
    /// The `#cloud-config` document, with the loader in place of the script.
    pub text: String,
    /// The script the loader fetches; `None` when the user-data runs no
    /// bootstrap script (a bastion's).
    pub script: Option<StoredScript>,
}

/// A bootstrap script as the state store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredScript {
    /// The object key under the cluster's prefix: `scripts/<sha256>`.
    pub key: String,
    /// Its lowercase hexadecimal SHA-256.
    pub sha256: String,
    /// The script.
    pub content: String,
}

impl StoredScript {
    /// The object for `content`.
    pub fn new(content: String) -> StoredScript {
        let sha256 = hex::encode(Sha256::digest(content.as_bytes()));
        StoredScript {
            key: format!("{}{sha256}", state_store::SCRIPTS_FOLDER),
            sha256,
            content,
        }
    }
}

#[derive(Deserialize)]
struct CloudConfig {
    #[serde(default)]
    write_files: Vec<WriteFile>,
}

#[derive(Deserialize)]
struct WriteFile {
    path: String,
    #[serde(default)]
    content: String,
}

/// The content of the file at [`paths::BOOTSTRAP_SCRIPT`] in a cloud-config
/// document, if there is one.
fn bootstrap_entry(user_data: &str) -> Option<String> {
    if !user_data.starts_with("#cloud-config") {
        return None;
    }
    let document: CloudConfig = serde_norway::from_str(user_data).ok()?;
    document
        .write_files
        .into_iter()
        .find(|file| file.path == paths::BOOTSTRAP_SCRIPT)
        .map(|file| file.content)
}

/// The entry for [`paths::BOOTSTRAP_SCRIPT`] exactly as cloud-config.yaml.j2
/// lays it out with `content`.
fn entry_text(content: &str) -> Result<String, TemplateError> {
    let indented = render(
        shared_environment()?,
        WRITE_FILES_CONTENT,
        &minijinja::context! { content => content },
    )?;
    Ok(format!(
        "- path: {}\n  owner: root:root\n  permissions: '0755'\n  content: |\n    {indented}\n",
        paths::BOOTSTRAP_SCRIPT
    ))
}

/// Replaces the one entry holding `from` with one holding `to`.
fn swap(user_data: &str, from: &str, to: &str) -> Result<String, TemplateError> {
    let old = entry_text(from)?;
    if user_data.matches(&old).count() != 1 {
        return Err(TemplateError::invalid(
            "user_data",
            paths::BOOTSTRAP_SCRIPT,
            "the user-data does not hold the bootstrap script entry as skiff renders it",
        ));
    }
    Ok(user_data.replacen(&old, &entry_text(to)?, 1))
}

/// The loader of `script`.
fn loader(script: &StoredScript) -> Result<String, TemplateError> {
    render(
        shared_environment()?,
        "bootstrap-loader.sh.j2",
        &minijinja::context! {
            sha256 => &script.sha256,
            script_key => &script.key,
            paths => minijinja::context! {
                state_store_env => paths::STATE_STORE_ENV,
                log => paths::BOOTSTRAP_LOG,
            },
        },
    )
}

/// The user-data EC2 gets for `user_data` (a whole document, as rendered),
/// and the script to store. A document without a bootstrap script, or one
/// whose script is already a loader, is returned as it is.
pub fn ec2_user_data(user_data: &str) -> Result<Ec2UserData, TemplateError> {
    let unchanged = || Ec2UserData {
        text: user_data.to_string(),
        script: None,
    };
    let Some(content) = bootstrap_entry(user_data) else {
        return Ok(unchanged());
    };
    if is_loader(&content) {
        return Ok(unchanged());
    }
    let script = StoredScript::new(content);
    let text = swap(user_data, &script.content, &loader(&script)?)?;
    Ok(Ec2UserData {
        text,
        script: Some(script),
    })
}

fn is_loader(content: &str) -> bool {
    content
        .lines()
        .nth(1)
        .is_some_and(|line| line.starts_with(LOADER_MARKER))
}

/// The object key of the script that `user_data` (as EC2 returns it,
/// decoded) fetches, or `None` when it carries its script in place (or
/// runs none).
pub fn stored_script_key(user_data: &str) -> Option<String> {
    let content = bootstrap_entry(user_data)?;
    if !is_loader(&content) {
        return None;
    }
    content
        .lines()
        .find_map(|line| line.strip_prefix("readonly KEY="))
        .map(str::to_string)
}

/// The whole document: `user_data` (as EC2 returns it, decoded) with the
/// stored `script` in place of its loader. Refused when the script is not
/// the one the loader names (its SHA-256 differs).
pub fn with_stored_script(user_data: &str, script: &str) -> Result<String, TemplateError> {
    let loader_text = bootstrap_entry(user_data)
        .filter(|content| is_loader(content))
        .ok_or_else(|| {
            TemplateError::invalid(
                "user_data",
                paths::BOOTSTRAP_SCRIPT,
                "the user-data has no bootstrap loader",
            )
        })?;
    let stored = StoredScript::new(script.to_string());
    if stored_script_key(user_data).as_deref() != Some(stored.key.as_str()) {
        return Err(TemplateError::invalid(
            "user_data",
            stored.key,
            "the stored script is not the one the loader names",
        ));
    }
    swap(user_data, &loader_text, script)
}

#[cfg(test)]
mod tests {
    use skiff_api::{InstanceGroupRole, OsFamily};

    use super::*;
    use crate::tests::example;

    #[test]
    fn the_whole_document_comes_back_from_ec2s_and_the_stored_script() {
        for role in [InstanceGroupRole::ControlPlane, InstanceGroupRole::Node] {
            let whole = crate::render_user_data(&example(role, OsFamily::Debian)).expect("renders");
            let ec2 = ec2_user_data(&whole).expect("swaps");
            let script = ec2.script.clone().expect("a script to store");
            assert!(script
                .content
                .starts_with("#!/bin/bash\n# skiff node bootstrap"));
            assert!(!ec2.text.contains(&script.content));
            assert!(ec2
                .text
                .contains(&format!("readonly SHA256={}", script.sha256)));
            assert_eq!(stored_script_key(&ec2.text), Some(script.key.clone()));
            assert_eq!(stored_script_key(&whole), None);
            assert_eq!(
                with_stored_script(&ec2.text, &script.content).expect("expands"),
                whole
            );
            // Already EC2's form: nothing to do.
            assert_eq!(ec2_user_data(&ec2.text).expect("unchanged").text, ec2.text);
        }
    }

    #[test]
    fn a_script_that_is_not_the_one_named_is_refused() {
        let whole = crate::render_user_data(&example(InstanceGroupRole::Node, OsFamily::Debian))
            .expect("renders");
        let ec2 = ec2_user_data(&whole).expect("swaps");
        let error = with_stored_script(&ec2.text, "#!/bin/bash\necho other\n").unwrap_err();
        assert!(error.to_string().contains("not the one the loader names"));
    }

    #[test]
    fn a_bastion_has_nothing_to_store() {
        let whole = crate::render_user_data(&example(InstanceGroupRole::Bastion, OsFamily::Debian))
            .expect("renders");
        let ec2 = ec2_user_data(&whole).expect("unchanged");
        assert_eq!(ec2.text, whole);
        assert_eq!(ec2.script, None);
    }
}
