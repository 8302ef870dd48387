#!/usr/bin/env bash
# Issue 23's restart measurement on the real control plane, with release binaries: N
# SealedSecrets of three RSA-4096 items unsealed, the controller stopped, a Secret edited by
# hand, a SealedSecret changed and one created while it is away, the controller started again
# and one more SealedSecret created at once. Prints how long that one took after the controller
# was ready, when the backlog of unchanged objects was done, the controller's CPU until then,
# its peak RSS, how many Secrets were rewritten and how many values were decrypted. It is the
# e2e test tests/tests/restart.rs, sized up; BENCHMARKS.md quotes its "restart summary" line.
#
# Needs etcd and kube-apiserver in $KUBEBUILDER_ASSETS (default /usr/local/kubebuilder/bin).
#
# Usage: bench/restart.sh [OBJECTS]   (default 10000; 100000 works the same way, given time:
#                                     the first unseal costs three RSA-4096 operations each)
export SEALED_SECRETS_RESTART_OBJECTS="${1:-10000}"
source "$(dirname "$0")/e2e-release.sh"
run_suite restart "restart|failover"
