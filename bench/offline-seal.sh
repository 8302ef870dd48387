# Sourced by the bench scripts that time an offline `kubeseal --cert` seal (process.sh,
# kubeseal-order.sh, seal-by-path.sh): builds the release `kubeseal` and key generator, sets
# `bin`, makes a scratch directory `work` (removed on exit) with no kubeconfig in reach, and
# defines `write_example_secret PATH` and `make_cert DIR` (an RSA-4096 key pair as the
# controller makes it: DIR/tls.crt, DIR/tls.key).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --release --quiet -p sealed-secrets-cli
bin="$PWD/target/release"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export KUBECONFIG="$work/none"

make_cert() {
  "$bin/sealed-secrets-keygen" --key-size 4096 --out-dir "$1" 2> /dev/null
}

# The Secret every offline figure in BENCHMARKS.md seals: three keys.
write_example_secret() {
  cat > "$1" <<'YAML'
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: shop
stringData:
  username: admin
  password: s3cr3t-hunter2
  url: postgres://db.shop.svc:5432/shop
YAML
}
