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

    /// How many looks, one every `every`, a wait loop may take: what fits
    /// in the time left and two more, so the loop is bounded in count as
    /// well as by the deadline.
    pub fn polls(&self, every: Duration) -> u64 {
        (self.remaining().as_secs_f64() / every.as_secs_f64()) as u64 + 2
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

/// Reads `--poll-interval`: at least 0.05 s, so a loop of status requests
/// never hammers a service or the orchestrator.
pub fn poll_interval(text: &str) -> Result<Duration, String> {
    let every = seconds(text)?;
    if every < Duration::from_millis(50) {
        return Err(format!("{text}: at least 0.05 seconds"));
    }
    Ok(every)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poll_interval_is_at_least_50_ms() {
        assert_eq!(poll_interval("0.05"), Ok(Duration::from_millis(50)));
        assert_eq!(poll_interval("2"), Ok(Duration::from_secs(2)));
        for bad in ["0.049", "0.001", "0", "-1", "x"] {
            assert!(poll_interval(bad).is_err(), "{bad}");
        }
    }
}
