#!/usr/bin/env bash
# `kubeseal lint` over a generated repository of 5,000 YAML files (2,000 ConfigMaps, 1,500
# Deployments, 1,500 SealedSecrets with 3 RSA-4096 items each, in 50 directories). No
# kustomizations, so this measures our own walking, parsing and checking, not kubectl.
# Usage: bench/lint.sh [runs]   (default 10). Prints Markdown table rows.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-10}"

cargo build --release --quiet -p sealed-secrets-cli
bin="$PWD/target/release"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export KUBECONFIG="$work/none"

"$bin/sealed-secrets-keygen" --key-size 4096 --out-dir "$work" 2>/dev/null
values=()
for i in 1 2 3; do
  values+=("$(printf 'value-%s' "$i" | "$bin/kubeseal" --raw --cert "$work/tls.crt" \
    --scope cluster-wide)")
done

repo="$work/repo"
for d in $(seq -w 0 49); do
  dir="$repo/apps/app-$d"
  mkdir -p "$dir"
  for f in $(seq -w 0 99); do
    n=$((10#$d * 100 + 10#$f))
    case $((n % 10)) in
      0|1|2|3) cat > "$dir/cm-$f.yaml" <<YAML
apiVersion: v1
kind: ConfigMap
metadata:
  name: config-$n
  namespace: team-$d
  labels:
    app.kubernetes.io/name: app-$d
data:
  LOG_LEVEL: info
  FEATURE_FLAGS: "a,b,c"
  settings.json: |
    {"replicas": 3, "timeout": "30s", "endpoint": "https://api.example.com/v1/items"}
YAML
      ;;
      4|5|6) cat > "$dir/deploy-$f.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-$n
  namespace: team-$d
  labels:
    app.kubernetes.io/name: app-$d
spec:
  replicas: 3
  selector:
    matchLabels:
      app.kubernetes.io/name: app-$n
  template:
    metadata:
      labels:
        app.kubernetes.io/name: app-$n
    spec:
      containers:
      - name: app
        image: registry.example.com/app:1.2.$n
        ports:
        - containerPort: 8080
        envFrom:
        - configMapRef:
            name: config-$n
        - secretRef:
            name: db-$n
        resources:
          limits:
            cpu: 500m
            memory: 256Mi
YAML
      ;;
      *) cat > "$dir/sealed-$f.yaml" <<YAML
---
apiVersion: bitnami.com/v1alpha1
kind: SealedSecret
metadata:
  annotations:
    sealedsecrets.bitnami.com/cluster-wide: "true"
  name: db-$n
  namespace: team-$d
spec:
  encryptedData:
    password: ${values[0]}
    url: ${values[1]}
    username: ${values[2]}
  template:
    metadata:
      annotations:
        sealedsecrets.bitnami.com/cluster-wide: "true"
      name: db-$n
      namespace: team-$d
YAML
      ;;
    esac
  done
done
files=$(find "$repo" -name '*.yaml' | wc -l)
bytes=$(du -sb "$repo" | cut -f1)

cd "$repo"
# Warm the page cache, and make sure the repository is clean.
"$bin/kubeseal" lint --cert "$work/tls.crt" > /dev/null 2>&1

measure() {
  local label="$1"; shift
  local times=()
  for _ in $(seq "$runs"); do
    start=$(date +%s%N)
    "$@" > /dev/null 2>&1
    end=$(date +%s%N)
    times+=($(( (end - start) / 1000000 )))
  done
  sorted=$(printf '%s\n' "${times[@]}" | sort -n)
  median=$(echo "$sorted" | awk -v n="$runs" 'NR == int((n + 1) / 2) { print }')
  min=$(echo "$sorted" | head -1)
  max=$(echo "$sorted" | tail -1)
  printf '| %s | %s ms | %s ms | %s ms |\n' "$label" "$median" "$min" "$max"
}

echo "repository: $files files, $((bytes / 1024)) KiB"
echo "| run ($runs runs) | median | min | max |"
echo "|---|---|---|---|"
measure "kubeseal lint" "$bin/kubeseal" lint
measure "kubeseal lint --cert (RSA block sizes too)" "$bin/kubeseal" lint --cert "$work/tls.crt"
measure "kubeseal lint --format sarif" "$bin/kubeseal" lint --format sarif
peak_kb=$(/usr/bin/time -f '%M' "$bin/kubeseal" lint --cert "$work/tls.crt" 2>&1 >/dev/null | tail -1)
echo "peak resident memory (--cert): ${peak_kb} KiB"
/usr/bin/time -f '%U %S' -o "$work/cpu" "$bin/kubeseal" lint --cert "$work/tls.crt" > /dev/null 2>&1
echo "user/system CPU seconds of one --cert run: $(cat "$work/cpu")"
