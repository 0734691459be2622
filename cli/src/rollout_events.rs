//! Rolling-update events on the terminal: a progress bar per group on a
//! terminal, plain lines otherwise, JSON lines with `-o json`.

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use skiff_rollout::{Event, EventSink};

/// Events as progress bars (terminal), plain lines, or JSON lines (`-o json`).
pub struct Sink {
    json: bool,
    bars: Option<(
        MultiProgress,
        std::sync::Mutex<std::collections::BTreeMap<String, ProgressBar>>,
    )>,
}

impl Sink {
    pub fn new(json: bool, terminal: bool) -> Sink {
        Sink {
            json,
            bars: terminal.then(|| {
                (
                    MultiProgress::new(),
                    std::sync::Mutex::new(std::collections::BTreeMap::new()),
                )
            }),
        }
    }

    pub fn finish(&self) {
        if let Some((_, bars)) = &self.bars {
            if let Ok(bars) = bars.lock() {
                for bar in bars.values() {
                    bar.finish();
                }
            }
        }
    }
}

impl EventSink for Sink {
    fn event(&self, event: &Event) {
        if self.json {
            if let Ok(line) = serde_json::to_string(event) {
                println!("{line}");
            }
            return;
        }
        let line = match event {
            Event::GroupStarted {
                group,
                outdated,
                total,
                surge,
                unavailable,
            } => {
                format!("{group}: replacing {outdated} of {total} instances (surge {surge}, unavailable {unavailable})")
            }
            Event::Grown { group, desired } => {
                format!("{group}: grown to {desired} instances for surge")
            }
            Event::Drained {
                group,
                instance,
                node,
            } => format!("{group}: drained node {node} ({instance})"),
            Event::Terminated {
                group,
                instance,
                shrink,
            } => {
                format!(
                    "{group}: terminated {instance}{}",
                    if *shrink {
                        " (group shrinks back)"
                    } else {
                        " (replacement launching)"
                    }
                )
            }
            Event::Validated {
                group,
                current,
                total,
            } => format!("{group}: {current}/{total} instances up to date and healthy"),
            Event::GroupDone { group, replaced } => {
                format!("{group}: done, {replaced} instance(s) replaced")
            }
        };
        match &self.bars {
            None => eprintln!("{line}"),
            Some((multi, bars)) => {
                let Ok(mut bars) = bars.lock() else { return };
                let group = match event {
                    Event::GroupStarted { group, .. }
                    | Event::Grown { group, .. }
                    | Event::Drained { group, .. }
                    | Event::Terminated { group, .. }
                    | Event::Validated { group, .. }
                    | Event::GroupDone { group, .. } => group.clone(),
                };
                let bar = bars.entry(group.clone()).or_insert_with(|| {
                    let bar = multi.add(ProgressBar::new(0));
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix:>24} [{bar:25}] {pos}/{len} eta {eta} {wide_msg}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    bar.set_prefix(group);
                    bar
                });
                match event {
                    Event::GroupStarted { outdated, .. } => bar.set_length(*outdated as u64),
                    Event::Terminated { .. } => bar.inc(1),
                    _ => {}
                }
                bar.set_message(line);
            }
        }
    }
}
