//! All output goes through the [`Printer`]: data on stdout (tables, YAML,
//! JSON), messages and progress on stderr, so that `skiff get ... -o json |
//! jq` always receives clean data. Colour only on a terminal and never when
//! `NO_COLOR` is set.

use std::io::{IsTerminal, Write};

/// Output formats of commands that print data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum OutputFormat {
    /// Aligned columns for people.
    #[default]
    Table,
    /// YAML documents.
    Yaml,
    /// JSON.
    Json,
}

/// Output formats of a plan (`update cluster -o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum PlanFormat {
    /// The preview for people.
    #[default]
    Table,
    /// YAML.
    Yaml,
    /// JSON (docs/plan-format.md).
    Json,
    /// Markdown for a pull-request comment, secrets redacted.
    Markdown,
}

/// Writes data and messages.
#[derive(Debug, Clone)]
pub struct Printer {
    color: bool,
    quiet: bool,
}

impl Printer {
    /// A printer for this process's terminal and environment.
    pub fn new(quiet: bool) -> Printer {
        let color = std::io::stderr().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
        Printer { color, quiet }
    }

    /// Whether stderr is a terminal (for progress displays).
    pub fn is_terminal(&self) -> bool {
        std::io::stderr().is_terminal()
    }

    /// Data for stdout.
    pub fn data(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        if !text.ends_with('\n') && !text.is_empty() {
            let _ = stdout.write_all(b"\n");
        }
        let _ = stdout.flush();
    }

    /// An informational message on stderr.
    pub fn info(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }

    /// A warning on stderr (never suppressed).
    pub fn warn(&self, text: &str) {
        if self.color {
            eprintln!("\x1b[33mwarning:\x1b[0m {text}");
        } else {
            eprintln!("warning: {text}");
        }
    }

    /// An error on stderr.
    pub fn error(&self, text: &str) {
        if self.color {
            eprintln!("\x1b[31merror:\x1b[0m {text}");
        } else {
            eprintln!("error: {text}");
        }
    }

    /// Text in bold on a colour terminal.
    pub fn bold(&self, text: &str) -> String {
        if self.color {
            format!("\x1b[1m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// Colours a plan symbol: green `+`, yellow `~`, red `-`.
    pub fn paint(&self, text: &str, color: Color) -> String {
        if !self.color {
            return text.to_string();
        }
        let code = match color {
            Color::Green => "32",
            Color::Yellow => "33",
            Color::Red => "31",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }
}

/// Terminal colours used by the printer.
#[derive(Debug, Clone, Copy)]
pub enum Color {
    /// Additions.
    Green,
    /// Changes.
    Yellow,
    /// Deletions.
    Red,
}

/// Lays out rows as aligned columns, header first.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|cell| cell.chars().count()).collect();
    for row in rows {
        for (index, cell) in row.iter().enumerate() {
            if index < widths.len() {
                widths[index] = widths[index].max(cell.chars().count());
            }
        }
    }
    let mut text = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut rendered = String::new();
        for (index, cell) in cells.iter().enumerate() {
            if index + 1 == cells.len() {
                rendered.push_str(cell);
            } else {
                rendered.push_str(&format!("{cell:<width$}  ", width = widths[index]));
            }
        }
        text.push_str(rendered.trim_end());
        text.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    text
}

/// Serializes data for `-o yaml` / `-o json`.
pub fn to_json<T: serde::Serialize>(value: &T) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(value)? + "\n")
}
