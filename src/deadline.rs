//! An overall time limit for a command that waits on services (`--timeout`):
//! every request and every pause is cut to what is left of it.

use std::time::{Duration, Instant};

/// The moment a command gives up, and the limit it was given.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    end: Instant,
    limit: Duration,
}

impl Deadline {
    /// A deadline `limit` from now.
    pub fn after(limit: Duration) -> Deadline {
        Deadline {
            end: Instant::now() + limit,
            limit,
        }
    }

    /// The time left (zero once passed).
    pub fn remaining(&self) -> Duration {
        self.end.saturating_duration_since(Instant::now())
    }

    /// Fails with one line naming the limit once it has passed.
    pub fn check(&self, waiting_for: &str) -> anyhow::Result<()> {
        if self.remaining().is_zero() {
            anyhow::bail!(
                "gave up waiting for {waiting_for} after {}s (--timeout)",
                self.limit.as_secs_f64()
            );
        }
        Ok(())
    }

    /// Sleeps `pause`, or until the deadline if that comes first.
    pub fn sleep(&self, pause: Duration) {
        std::thread::sleep(pause.min(self.remaining()));
    }
}

/// Reads a positive number of seconds (`--timeout`, `--poll-interval`).
pub fn seconds(text: &str) -> Result<Duration, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(value > 0.0 && value <= 86_400.0) {
        return Err(format!(
            "{text}: must be more than 0 and at most 86400 seconds"
        ));
    }
    Ok(Duration::from_secs_f64(value))
}
