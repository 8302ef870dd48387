#!/usr/bin/env bash
# Offline end-to-end demo: no cluster, no network.
# Makes a throwaway sealing key pair (as the controller would), seals an example Secret in each
# scope with `kubeseal --cert`, shows what is safe to commit, opens it again with
# `kubeseal --recovery-unseal`, and checks that renaming or moving breaks what it should.
set -euo pipefail
cd "$(dirname "$0")"

cargo build --release --quiet -p sealed-secrets-cli
bin="$PWD/target/release"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export KUBECONFIG="$work/no-kubeconfig"   # never read a real kubeconfig in the demo

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. A throwaway RSA-4096 sealing key pair, made like the controller makes one"
"$bin/sealed-secrets-keygen" --out-dir "$work/keys"

cat > "$work/secret.yaml" <<'YAML'
apiVersion: v1
kind: Secret
metadata:
  name: db-credentials
  namespace: shop
  labels:
    app: shop
type: Opaque
stringData:
  username: admin
  password: s3cr3t-hunter2
YAML
step "2. The raw Secret (never commit this)"
cat "$work/secret.yaml"

failures=0
for scope in strict namespace-wide cluster-wide; do
  step "3. Seal it in scope '$scope' (safe to commit)"
  "$bin/kubeseal" --cert "$work/keys/tls.crt" --scope "$scope" -o yaml \
    -f "$work/secret.yaml" -w "$work/sealed-$scope.yaml"
  sed -E 's/^(    [a-z]+: Ag.{40}).*/\1.../' "$work/sealed-$scope.yaml"

  step "4. Open it again with the private key (kubeseal --recovery-unseal)"
  "$bin/kubeseal" --recovery-unseal --recovery-private-key "$work/keys/tls.key" -o yaml \
    -f "$work/sealed-$scope.yaml" > "$work/opened-$scope.yaml"
  password=$(sed -n 's/^  password: //p' "$work/opened-$scope.yaml" | base64 -d)
  if [ "$password" = "s3cr3t-hunter2" ]; then
    echo "opened: password matches the original"
  else
    echo "MISMATCH: got '$password'"; failures=$((failures + 1))
  fi

  step "5. Rename it to 'db-copy': the scope decides whether it still opens"
  sed 's/^  name: db-credentials$/  name: db-copy/' "$work/sealed-$scope.yaml" > "$work/renamed.yaml"
  if "$bin/kubeseal" --recovery-unseal --recovery-private-key "$work/keys/tls.key" \
       -f "$work/renamed.yaml" > /dev/null 2> "$work/err"; then
    outcome="opens"
  else
    outcome="refused: $(cat "$work/err")"
  fi
  expected="opens"; [ "$scope" = strict ] && expected="refused"
  echo "$scope, renamed -> $outcome"
  case "$outcome" in "$expected"*) ;; *) echo "UNEXPECTED (wanted $expected)"; failures=$((failures + 1));; esac
done

step "Summary"
if [ "$failures" -eq 0 ]; then
  echo "all scopes sealed and opened offline; strict refused a rename, the wider scopes allowed it"
else
  echo "$failures check(s) failed"; exit 1
fi
