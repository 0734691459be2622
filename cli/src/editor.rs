//! Editing text in the user's editor, the way `kubectl edit` does.

use std::io::Write;
use std::process::Command;

use anyhow::{bail, Context};

/// The editor command: `$VISUAL`, else `$EDITOR`, else `vi`.
pub fn editor_command() -> String {
    ["VISUAL", "EDITOR"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.trim().is_empty())
        .unwrap_or_else(|| "vi".to_string())
}

/// Opens `text` in the editor and returns what was saved. The editor
/// command may carry arguments (`code --wait`); it runs through `sh`.
pub fn edit(text: &str, name_hint: &str) -> anyhow::Result<String> {
    let mut file = tempfile::Builder::new()
        .prefix(&format!("skiff-edit-{name_hint}-"))
        .suffix(".yaml")
        .tempfile()
        .context("cannot create a temporary file to edit")?;
    file.write_all(text.as_bytes())
        .context("cannot write the temporary file to edit")?;
    file.flush()
        .context("cannot write the temporary file to edit")?;
    let path = file.path().to_path_buf();
    let editor = editor_command();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("skiff-editor")
        .arg(&path)
        .status()
        .with_context(|| format!("cannot start the editor {editor:?} (set VISUAL or EDITOR)"))?;
    if !status.success() {
        bail!("the editor {editor:?} exited with {status}; nothing was changed");
    }
    std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the edited file {}", path.display()))
}

/// Keeps a failed edit where the user can find it again.
pub fn save_rejected(text: &str, name_hint: &str) -> Option<std::path::PathBuf> {
    let file = tempfile::Builder::new()
        .prefix(&format!("skiff-edit-{name_hint}-rejected-"))
        .suffix(".yaml")
        .tempfile()
        .ok()?;
    let (mut handle, path) = file.keep().ok()?;
    handle.write_all(text.as_bytes()).ok()?;
    Some(path)
}

/// Removes the comment header skiff adds above the document.
pub fn strip_header(text: &str) -> String {
    text.lines()
        .skip_while(|line| line.starts_with('#') || line.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}
