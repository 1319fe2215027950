//! Ids svcgen gives the runs and tasks it starts: a fresh workflow id per
//! run, and the orchestrator's task id for a node's operation
//! (`task_` and the first 8 hex digits of the SHA-256 of `container:operation`).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// `<prefix>-<12 random hex digits>`, e.g. `svcgen-run-3f2a9c1d04be`.
pub fn fresh(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let seed = RandomState::new().hash_one((nanos, std::process::id()));
    let digest = Sha256::digest(format!("{seed}:{nanos}").as_bytes());
    format!("{prefix}-{}", &hex(&digest)[..12])
}

/// The orchestrator's id of the task running `node_key` (`container:operation`).
pub fn task_id(node_key: &str) -> String {
    format!("task_{}", &hex(&Sha256::digest(node_key.as_bytes()))[..8])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn task_ids_are_the_orchestrators() {
        // hashlib.sha256(b"producer1:Produce").hexdigest()[:8]
        assert_eq!(super::task_id("producer1:Produce"), "task_2990addb");
        assert_ne!(super::fresh("a"), super::fresh("a"));
    }
}
