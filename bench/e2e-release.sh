# Sourced by the bench scripts that run an e2e suite at full size (churn.sh, restart.sh):
# builds the release binaries the suite runs, points the harness at them, prints the machine,
# then runs `run_suite TEST PREFIX`: the suite with its summary lines (starting with PREFIX).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --quiet -p sealed-secrets-controller --bin controller \
  -p sealed-secrets-cli --bin kubeseal -p sealed-secrets-gitops --bin gitops-controller
export SEALED_SECRETS_BIN_DIR="$CARGO_TARGET_DIR/release"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"

run_suite() {
  cargo test --quiet -p sealed-secrets-e2e --test "$1" -- --nocapture 2>&1 \
    | grep -E "^($2|test result)"
}
