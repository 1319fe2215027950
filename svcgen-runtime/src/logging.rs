//! Log output: one subscriber for the whole process, configured by `RUST_LOG`.

use std::io::IsTerminal;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

/// Logs to stdout, in colour only on a terminal. `RUST_LOG` sets the level
/// (`info` when unset or unreadable), e.g. `RUST_LOG=debug` or
/// `RUST_LOG=my_service=debug,tonic=info`. Call it once, first thing in
/// `main`.
pub fn init_tracing() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|value| value.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO));
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_ansi(std::io::stdout().is_terminal()))
        .with(filter)
        .init();
}
