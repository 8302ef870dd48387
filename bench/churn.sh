#!/usr/bin/env bash
# Issue 24's long churn run on the real control plane, with release binaries: 300 SealedSecret
# names, 300 s of changes (batches of 12 every 0.4 s: apply the other version 60%, delete the
# SealedSecret 20%, delete its Secret 20%), the API server SIGKILLed twice (at 100 s and 200 s),
# garbage collection by kube-controller-manager; then every object must be right within 30 s.
# It is the e2e soak of tests/tests/churn.rs, sized up; it prints the summary line
# ("churn summary: ...") that BENCHMARKS.md quotes.
#
# Needs etcd, kube-apiserver and kube-controller-manager in $KUBEBUILDER_ASSETS (default
# /usr/local/kubebuilder/bin), and kubectl.
#
# Usage: bench/churn.sh   (env: CHURN_NAMES, CHURN_SECONDS, CHURN_RESTARTS, CHURN_SEED;
#                          SEALED_SECRETS_E2E_AUDIT=1 SEALED_SECRETS_E2E_KEEP=1 keep an audit
#                          log of every write in the cluster folder)
export SEALED_SECRETS_CHURN_NAMES="${CHURN_NAMES:-300}"
export SEALED_SECRETS_CHURN_SECONDS="${CHURN_SECONDS:-300}"
export SEALED_SECRETS_CHURN_RESTARTS="${CHURN_RESTARTS:-2}"
export SEALED_SECRETS_CHURN_SEED="${CHURN_SEED:-20261206}"
source "$(dirname "$0")/e2e-release.sh"
run_suite churn churn
