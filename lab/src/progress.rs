//! The status line of the long-running commands (`faults`, `flip`): a
//! spinner that ticks every 120 ms with the time elapsed, and where the
//! command is. Drawn on stderr, and only on a terminal, so `--json` output
//! and logs stay clean.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

pub struct Ticker {
    bar: ProgressBar,
}

impl Ticker {
    /// A run of `count` steps (the fault lab's scenarios): `[3/12] name`.
    pub fn steps(count: usize) -> Self {
        let bar = ProgressBar::new(count as u64)
            .with_style(ProgressStyle::with_template("{spinner} [{pos}/{len}] {elapsed:>4} {msg}").expect("valid template"));
        bar.enable_steady_tick(Duration::from_millis(120));
        Self { bar }
    }

    /// A run of a known length (`flip`): a bar filling with the seconds.
    pub fn over(length: Duration) -> Self {
        let bar = ProgressBar::new(length.as_millis() as u64)
            .with_style(ProgressStyle::with_template("{spinner} {elapsed:>4} / {prefix} [{bar:30}] {msg}").expect("valid template"));
        bar.set_prefix(format!("{} s", length.as_secs()));
        bar.enable_steady_tick(Duration::from_millis(120));
        Self { bar }
    }

    /// Starts the next step, counting the one before as done.
    pub fn step(&self, name: String) {
        if !self.bar.message().is_empty() {
            self.bar.inc(1);
        }
        self.bar.set_message(name);
    }

    /// Where a run of known length is, and what it is doing.
    pub fn at(&self, elapsed: Duration, message: String) {
        self.bar.set_position(elapsed.as_millis() as u64);
        self.bar.set_message(message);
    }

    /// Prints a line above the status line, which stays below it.
    pub fn println(&self, line: impl AsRef<str>) {
        self.bar.println(line);
    }

    /// Runs `print` (output on stdout) with the status line cleared.
    pub fn suspend<R>(&self, print: impl FnOnce() -> R) -> R {
        self.bar.suspend(print)
    }

    /// Clears the status line.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
