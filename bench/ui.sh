#!/usr/bin/env bash
# Issue 20's figures of `kubeseal ui` on the real control plane, with release binaries: the
# overview with 500 GitSyncs, the page of one GitSync of 2,000 objects (median and p95 of 20
# requests each, over loopback HTTP with the session cookie), and the UI process's peak RSS.
# It is the ignored test tests/tests/ui_figures.rs; BENCHMARKS.md quotes its "ui figures" lines.
#
# Needs etcd and kube-apiserver in $KUBEBUILDER_ASSETS (default /usr/local/kubebuilder/bin).
source "$(dirname "$0")/e2e-release.sh"
cargo test --quiet -p sealed-secrets-e2e --test ui_figures -- --ignored --nocapture 2>&1 \
  | grep -E "^(ui figures|test result)"
