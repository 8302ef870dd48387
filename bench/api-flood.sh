#!/usr/bin/env bash
# Issue 12's flood against a release `controller` on loopback: 8 connections POST, for 15 s,
# SealedSecrets of 3,000 items (about 2 MiB) that no key opens to /v1/verify and /v1/rotate,
# with a new X-Forwarded-For on each request, while /healthz is probed every 100 ms on a new
# connection. Prints the answers by status, /healthz latency and the controller's peak RSS.
#
# The controller needs an API server: this starts etcd + kube-apiserver from
# $KUBEBUILDER_ASSETS (default /usr/local/kubebuilder/bin) on loopback, with a static admin
# token, installs the SealedSecret CRD and runs the controller against it, once per scenario
# (a fresh process each, so each peak is its own):
#   defaults        the controller's defaults (rate limit 2/s, burst 2)
#   no-rate-limit   --rate-limit 1000000: the caps and the RSA workers alone
#   under-cap       no rate limit, 1,000 items (under --max-request-items): every request
#                   reaches RSA and stops at its first item
# Without etcd and kube-apiserver it says so and exits 2; `--in-process` runs the same flood
# against the controller's router in the bench process instead (no API server needed).
#
# Usage: bench/api-flood.sh [--in-process]
#   (env: API_FLOOD_SECONDS, API_FLOOD_CONNECTIONS, API_FLOOD_SKIP_BUILD=1 to reuse the build)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

if [[ -z "${API_FLOOD_SKIP_BUILD:-}" ]]; then  # set it to reuse binaries already built
  cargo build --release --quiet -p sealed-secrets-controller --bin controller --example api_flood
fi
bin="$CARGO_TARGET_DIR/release"
flood="$bin/examples/api_flood"

if [[ "${1:-}" == "--in-process" ]]; then
  echo "## in process (the controller's router in the bench process)"
  echo "### defaults"; "$flood"
  echo "### no-rate-limit"; API_FLOOD_RATE_LIMIT=1000000 API_FLOOD_RATE_LIMIT_BURST=1000 "$flood"
  echo "### under-cap"; API_FLOOD_RATE_LIMIT=1000000 API_FLOOD_RATE_LIMIT_BURST=1000 API_FLOOD_ITEMS=1000 "$flood"
  exit 0
fi

assets="${KUBEBUILDER_ASSETS:-/usr/local/kubebuilder/bin}"
for tool in etcd kube-apiserver; do
  if [[ ! -x "$assets/$tool" ]]; then
    echo "api-flood: no $assets/$tool; set KUBEBUILDER_ASSETS, or run with --in-process" >&2
    exit 2
  fi
done

work="$(mktemp -d)"
pids=()
stop() { # pid: SIGTERM, up to 10 s, then SIGKILL
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  # Newest first: controllers, then kube-apiserver, then etcd (the apiserver hangs without it).
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop "${pids[i]}"; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # url, what
  for _ in $(seq 1 600); do
    if curl -fsk -o /dev/null "$1" -H "Authorization: Bearer $token" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "api-flood: $2 did not come up; logs in $work" >&2
  tail -20 "$work"/*.log >&2 || true
  exit 1
}

etcd_port=$(free_port); peer_port=$(free_port); api_port=$(free_port)
token="$(openssl rand -hex 16)"
echo "$token,bench-admin,bench-admin,\"system:masters\"" > "$work/tokens.csv"
openssl genrsa -out "$work/sa.key" 2048 2>/dev/null
openssl rsa -in "$work/sa.key" -pubout -out "$work/sa.pub" 2>/dev/null

"$assets/etcd" --data-dir "$work/etcd" --unsafe-no-fsync \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" > "$work/etcd.log" 2>&1 &
pids+=($!)
"$assets/kube-apiserver" --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
  --secure-port="$api_port" --etcd-servers="http://127.0.0.1:$etcd_port" \
  --service-cluster-ip-range=10.0.0.0/24 --authorization-mode=RBAC \
  --token-auth-file="$work/tokens.csv" --cert-dir="$work/certs" \
  --service-account-key-file="$work/sa.pub" --service-account-signing-key-file="$work/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --api-audiences=https://kubernetes.default.svc.cluster.local \
  --endpoint-reconciler-type=none > "$work/apiserver.log" 2>&1 &
pids+=($!)
wait_for "https://127.0.0.1:$api_port/readyz" kube-apiserver

cat > "$work/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: bench, cluster: {server: "https://127.0.0.1:$api_port", insecure-skip-tls-verify: true}}]
users: [{name: bench, user: {token: "$token"}}]
contexts: [{name: bench, context: {cluster: bench, user: bench, namespace: default}}]
current-context: bench
EOF
for crd in crds/bitnami.com_sealedsecrets.yaml; do
  curl -fsk -o /dev/null -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/yaml' \
    --data-binary "@$crd" "https://127.0.0.1:$api_port/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
done

# scenario name, extra flood env, controller flags...
scenario() {
  local name="$1" env="$2"; shift 2
  local port metrics_port
  port=$(free_port); metrics_port=$(free_port)
  POD_NAMESPACE=default "$bin/controller" --kubeconfig "$work/kubeconfig" \
    --listen-addr "127.0.0.1:$port" --listen-metrics-addr "127.0.0.1:$metrics_port" "$@" \
    > "$work/controller-$name.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  wait_for "http://127.0.0.1:$port/v1/cert.pem" "controller ($name)"
  echo "### $name (controller flags: ${*:-none})"
  env $env API_FLOOD_URL="http://127.0.0.1:$port" API_FLOOD_PID="$pid" "$flood"
  stop "$pid"
}

echo "## release controller against kube-apiserver on loopback ($(nproc) cores)"
scenario defaults ""
scenario no-rate-limit "" --rate-limit 1000000 --rate-limit-burst 1000
scenario under-cap "API_FLOOD_ITEMS=1000" --rate-limit 1000000 --rate-limit-burst 1000
