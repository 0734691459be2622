//! Reads a rendered `#cloud-config` back, the way cloud-init would.

use std::io::Read;

use base64::Engine;
use serde_norway::Value;

/// One `write_files` entry, with its content decoded as cloud-init decodes it.
#[derive(Debug, Clone)]
pub struct WrittenFile {
    /// Where the file lands on the node.
    pub path: String,
    /// Its mode, in octal text (`0600`).
    pub permissions: String,
    /// The `encoding` key, if any (`gz+b64`).
    pub encoding: Option<String>,
    /// The file's text as it lands on the node.
    pub content: String,
}

/// The parts of a node's cloud-config the tests look at.
#[derive(Debug)]
pub struct CloudConfig {
    /// The `write_files` entries.
    pub files: Vec<WrittenFile>,
    /// Each `runcmd` entry as a shell command line.
    pub commands: Vec<String>,
}

impl CloudConfig {
    /// Parses user-data (panics unless it is a `#cloud-config` document).
    pub fn parse(user_data: &str) -> CloudConfig {
        assert!(
            user_data.starts_with("#cloud-config\n"),
            "user-data must start with #cloud-config"
        );
        let document: Value = serde_norway::from_str(user_data).expect("user-data is YAML");
        let files = document
            .get("write_files")
            .and_then(Value::as_sequence)
            .map(|entries| {
                entries
                    .iter()
                    .map(|entry| {
                        let encoding = entry
                            .get("encoding")
                            .and_then(Value::as_str)
                            .map(str::to_string);
                        let raw = text(entry, "content");
                        let content = match encoding.as_deref() {
                            None => raw,
                            Some("gz+b64") => gunzip_base64(&raw),
                            Some(other) => panic!("unexpected encoding {other}"),
                        };
                        WrittenFile {
                            path: text(entry, "path"),
                            permissions: text(entry, "permissions"),
                            encoding,
                            content,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let commands = document
            .get("runcmd")
            .and_then(Value::as_sequence)
            .map(|entries| {
                entries
                    .iter()
                    .map(|entry| match entry {
                        Value::String(line) => line.clone(),
                        Value::Sequence(words) => words
                            .iter()
                            .map(|word| word.as_str().expect("runcmd word is text").to_string())
                            .collect::<Vec<_>>()
                            .join(" "),
                        other => panic!("unexpected runcmd entry {other:?}"),
                    })
                    .collect()
            })
            .unwrap_or_default();
        CloudConfig { files, commands }
    }

    /// The `write_files` entry of `path` (panics if there is none).
    pub fn file(&self, path: &str) -> &WrittenFile {
        self.files
            .iter()
            .find(|file| file.path == path)
            .unwrap_or_else(|| panic!("user-data writes no {path}"))
    }
}

fn text(entry: &Value, key: &str) -> String {
    entry
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("write_files entry without {key}: {entry:?}"))
        .to_string()
}

fn gunzip_base64(encoded: &str) -> String {
    let compressed = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("gz+b64 content is base64");
    let mut text = String::new();
    flate2::read::GzDecoder::new(compressed.as_slice())
        .read_to_string(&mut text)
        .expect("gz+b64 content is gzip of UTF-8 text");
    text
}
