#!/bin/sh
# Rewrites templates/reference/Cargo.lock, the lock every generated project
# starts from: the newest versions cargo resolves for a new project, then
# the pins below, which keep a cold `cargo build` of a generated project
# from compiling work it does not need. Run it after changing the
# generated Cargo.toml or the runtime's dependencies; then run the tests
# (the generated-project test builds with --locked).
#
# The pins, and why (each is the newest release before the change named):
# - one syn and one prettyplease, not two: serde, serde_derive,
#   tokio-macros, thiserror, pin-project, async-trait and prost-build
#   moved to syn 3 in their latest patch releases, while prost-derive,
#   tracing-attributes, tonic-build and protox's crates are on syn 2;
# - one itertools: prost-derive allows 0.14, which prost-build needs;
# - prost-reflect 0.16.3: later releases take logos 0.16, whose code
#   generator pulls in regex-automata's full engine and aho-corasick.
# lockfile.rs checks the result (`the_reference_lock_builds_one_syn...`).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo run --quiet --manifest-path "$root/Cargo.toml" -- new "$work/demo-svc" --no-input >/dev/null
cd "$work/demo-svc"
cargo generate-lockfile --quiet
pin() { cargo update --quiet --package "$1" --precise "$2"; }
pin serde 1.0.228
pin serde_derive 1.0.228
pin tokio-macros 2.7.1
pin thiserror 2.0.18
pin pin-project 1.1.13
pin async-trait 0.1.89
pin prost-build 0.14.4
pin itertools@0.15.0 0.14.0
pin prost-reflect 0.16.3
cp Cargo.lock "$root/templates/reference/Cargo.lock"
echo "wrote templates/reference/Cargo.lock"
