//! Progress of running tasks on stderr: one indicatif bar per task when
//! stderr is a terminal, else one plain line per change of a task's state
//! (for CI logs). Standard output is left to the command's result.

use std::cell::RefCell;
use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::one_line;

/// Where the bars or lines of one command go.
pub struct Display {
    bars: Option<MultiProgress>,
}

impl Display {
    /// Bars on a terminal, plain lines otherwise.
    pub fn for_stderr() -> Display {
        let bars = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Display { bars }
    }

    /// The display of one task, shown as `label`.
    pub fn task(&self, label: &str) -> TaskProgress {
        let bar = self.bars.as_ref().map(|bars| {
            let style = ProgressStyle::with_template("{prefix:.bold} [{bar:24}] {pos:>3}% {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            let bar = bars.add(ProgressBar::new(100).with_style(style));
            bar.set_prefix(label.to_string());
            bar
        });
        TaskProgress {
            bar,
            label: label.to_string(),
            last: RefCell::new(String::new()),
        }
    }
}

/// One task's bar (or lines).
pub struct TaskProgress {
    bar: Option<ProgressBar>,
    label: String,
    last: RefCell<String>,
}

impl TaskProgress {
    /// Not started yet.
    pub fn pending(&self) {
        self.show(None, "pending");
    }

    /// Running, `percent` done (when known), with the service's message.
    pub fn running(&self, percent: Option<i64>, message: Option<&str>) {
        let mut text = String::from("running");
        if let (None, Some(p)) = (&self.bar, percent) {
            text.push_str(&format!(" {}%", p.clamp(0, 100)));
        }
        if let Some(m) = message.filter(|m| !m.is_empty()) {
            text.push_str(&format!(" ({})", one_line(m)));
        }
        self.show(percent, &text);
    }

    /// Finished; `detail` says with what.
    pub fn complete(&self, detail: &str) {
        let text = format!("complete {detail}").trim_end().to_string();
        match &self.bar {
            Some(bar) => {
                bar.set_position(100);
                bar.finish_with_message(text);
            }
            None => self.line(&text),
        }
    }

    /// Failed with `error`.
    pub fn failed(&self, error: &str) {
        let text = format!("failed: {}", one_line(error));
        match &self.bar {
            Some(bar) => bar.abandon_with_message(text),
            None => self.line(&text),
        }
    }

    /// Not run (an earlier task failed).
    pub fn skipped(&self) {
        match &self.bar {
            Some(bar) => bar.abandon_with_message("not run"),
            None => self.line("not run"),
        }
    }

    fn show(&self, percent: Option<i64>, text: &str) {
        match &self.bar {
            Some(bar) => {
                if let Some(p) = percent {
                    bar.set_position(p.clamp(0, 100) as u64);
                }
                bar.set_message(text.to_string());
            }
            None => self.line(text),
        }
    }

    /// A plain line, only when it says something new.
    fn line(&self, text: &str) {
        let mut last = self.last.borrow_mut();
        if *last != text {
            eprintln!("{}: {text}", self.label);
            *last = text.to_string();
        }
    }
}
