#!/usr/bin/env bash
# Template bombs against the release controller on a real kube-apiserver (issue 12): the
# normal SealedSecret applied with them must still be unsealed promptly, /healthz must answer,
# memory must stay small. Needs kube-apiserver and etcd (KUBEBUILDER_ASSETS, else
# /usr/local/kubebuilder/bin) and kubectl. Prints Markdown tables for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p sealed-secrets-controller -p sealed-secrets-cli -p sealed-secrets-gitops --bins
export SEALED_SECRETS_BIN_DIR="${CARGO_TARGET_DIR:-$PWD/target}/release"
cargo bench --locked -p sealed-secrets-e2e --bench hostile_unseal
