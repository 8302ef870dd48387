#!/usr/bin/env bash
# Unsealing on a real kube-apiserver: 200 SealedSecrets x 3 RSA-4096 items, with 1 and 24 keys,
# with the release controller. Needs kube-apiserver and etcd (KUBEBUILDER_ASSETS, else
# /usr/local/kubebuilder/bin) and kubectl. Prints a Markdown table for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p sealed-secrets-controller -p sealed-secrets-cli -p sealed-secrets-gitops --bins
export SEALED_SECRETS_BIN_DIR="${CARGO_TARGET_DIR:-$PWD/target}/release"
cargo bench --locked -p sealed-secrets-e2e --bench unseal_real_api
