#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ briefly, one after the other, one job each, and fails on
# the first crash, timeout or out-of-memory report. Installs cargo-fuzz if it is missing.
#
# Usage: bench/fuzz-smoke.sh [seconds per target]   (default 20; FUZZ_SECONDS works too)
#
# The fuzz crate is its own workspace with its own Cargo.lock and target directory
# (fuzz/target), so this never touches the main build. cargo-fuzz needs nightly compiler flags;
# RUSTC_BOOTSTRAP=1 enables them on the stable toolchain. New inputs go to fuzz/corpus-work
# (ignored by git); the committed seeds in fuzz/corpus are only read. Findings are written to
# fuzz/artifacts/<target>/ and the failing command is printed. See docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-${FUZZ_SECONDS:-20}}"
cargo_fuzz_version="0.13.2"

if ! cargo fuzz --version > /dev/null 2>&1; then
  echo "installing cargo-fuzz $cargo_fuzz_version" >&2
  cargo install cargo-fuzz --locked --version "$cargo_fuzz_version"
fi

export RUSTC_BOOTSTRAP=1
# The shared target directory of the main workspace must not receive fuzz builds.
unset CARGO_TARGET_DIR
# Fails when Cargo.lock would have to change.
cargo fetch --locked --quiet

# No sanitizer: the code under test is safe Rust (unsafe_code is forbidden in core) plus
# aws-lc's C, which cargo-fuzz does not instrument anyway; what we look for are panics,
# overflows (debug assertions on), timeouts and memory blow-ups, and this runs ~2x faster.
flags=(--sanitizer none --debug-assertions)
cargo fuzz build "${flags[@]}"

for target in $(cargo fuzz list); do
  mkdir -p "corpus-work/$target"
  echo "== $target (${seconds}s)" >&2
  if ! cargo fuzz run "${flags[@]}" "$target" "corpus-work/$target" "corpus/$target" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      2> "corpus-work/$target.log"; then
    tail -n 40 "corpus-work/$target.log" >&2
    echo "error: fuzz target $target failed; reproduce with:" >&2
    echo "  cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run ${flags[*]} $target artifacts/$target/<file>" >&2
    exit 1
  fi
  grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "corpus-work/$target.log" >&2 || true
done
echo "fuzz smoke: all targets ran ${seconds}s without a finding" >&2
