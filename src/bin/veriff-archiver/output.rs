//! Terminal output shared by the subcommands: plain-text tables with aligned columns, and a
//! progress bar on stderr (only when stderr is a terminal). Numbers for people are
//! `veriff_archiver::units`.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// A plain-text table: the first column left-aligned (labels), the others right-aligned.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table.
    pub fn new() -> Table {
        Table::default()
    }

    /// Adds a row of cells.
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// The table as text, each line indented by `indent` and ending in a newline.
    pub fn render(&self, indent: &str) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::from(indent);
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let width = widths[i];
                if i == 0 {
                    let _ = write!(line, "{cell:<width$}");
                } else {
                    let _ = write!(line, "{cell:>width$}");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A progress bar on stderr: a spinner while the work is counted, then a bar of done /
/// total with the rate and the time left. Draws nothing when disabled.
pub struct Progress {
    bar: Option<ProgressBar>,
    unit: &'static str,
}

impl Progress {
    /// A progress display; `enabled` should be true only when stderr is a terminal and the
    /// output is for people. `preparing` is shown until the total is known.
    pub fn new(enabled: bool, preparing: impl Into<Cow<'static, str>>, unit: &'static str) -> Self {
        let bar = enabled.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                    .expect("a valid template"),
            );
            bar.set_message(preparing);
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress { bar, unit }
    }

    /// `done` of `total` units are finished.
    pub fn update(&self, done: u64, total: u64) {
        let Some(bar) = &self.bar else {
            return;
        };
        if bar.length() != Some(total) {
            let template = format!(
                "{{wide_bar}} {{human_pos}}/{{human_len}} {} ({{rate}}, {{eta}} left)",
                self.unit
            );
            bar.set_length(total);
            bar.set_style(
                ProgressStyle::with_template(&template)
                    .expect("a valid template")
                    .with_key("rate", |state: &ProgressState, w: &mut dyn fmt::Write| {
                        let _ = write!(w, "{:.0}/s", state.per_sec());
                    })
                    .progress_chars("=> "),
            );
            bar.reset_eta();
        }
        bar.set_position(done);
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_labels_left_and_numbers_right() {
        let mut table = Table::new();
        table.row(["sessions", "2"]);
        table.row(["bad signature", "10"]);
        assert_eq!(
            table.render("  "),
            "  sessions        2\n  bad signature  10\n"
        );
    }
}
