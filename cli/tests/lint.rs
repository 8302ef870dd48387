//! `kubeseal lint` over fixture repositories built in temporary directories: one repository per
//! finding, a clean one that passes, and a GitOps layout (`base/`, `overlays/staging`,
//! `overlays/production` with `nameSuffix: -prod`) where the suffix breaks a strict
//! SealedSecret; and issue 16's `oslo-prod` layout, where the recovery key decides scope findings
//! and a suffix or prefix breaks workload references to a SealedSecret. Runs the real binary;
//! kustomizations are rendered by the real kubectl.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::OnceLock,
};

use base64::Engine;
use sealed_secrets_core::{
    crypto::{SystemRandom, hybrid_encrypt},
    keys::{GeneratedKeyPair, generate_key_pair},
    scope::Scope,
};
use serde_json::Value;

const PLAINTEXT: &str = "hunter2-do-not-print";

fn pair(bits: usize) -> &'static GeneratedKeyPair {
    static P2048: OnceLock<GeneratedKeyPair> = OnceLock::new();
    static P3072: OnceLock<GeneratedKeyPair> = OnceLock::new();
    let cell = if bits == 2048 { &P2048 } else { &P3072 };
    cell.get_or_init(|| {
        generate_key_pair(
            bits,
            "",
            jiff::Timestamp::now(),
            jiff::SignedDuration::from_hours(24),
        )
        .unwrap()
    })
}

/// A sealed value of [`PLAINTEXT`] for the 2048-bit key, base64.
fn seal(scope: Scope, namespace: &str, name: &str) -> String {
    seal_for(pair(2048), scope, namespace, name)
}

fn seal_for(pair: &GeneratedKeyPair, scope: Scope, namespace: &str, name: &str) -> String {
    let bytes = hybrid_encrypt(
        &pair.key.public_key(),
        PLAINTEXT.as_bytes(),
        &scope.label(namespace, name),
        &mut SystemRandom,
    )
    .unwrap();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A SealedSecret in kubeseal's YAML layout, with extra annotation lines if given.
fn sealed_yaml(
    namespace: Option<&str>,
    name: &str,
    annotations: &str,
    items: &[(&str, &str)],
) -> String {
    let mut out = format!(
        "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: {name}\n"
    );
    if let Some(ns) = namespace {
        out.push_str(&format!("  namespace: {ns}\n"));
    }
    if !annotations.is_empty() {
        out.push_str("  annotations:\n");
        out.push_str(annotations);
    }
    out.push_str("spec:\n  template:\n    metadata:\n      name: ");
    out.push_str(name);
    out.push_str("\n  encryptedData:\n");
    for (item, value) in items {
        out.push_str(&format!("    {item}: {value}\n"));
    }
    out
}

struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Self {
        let repo = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        repo.write("keys/tls.crt", &pair(2048).cert_pem);
        repo.write("keys/tls.key", &pair(2048).key.to_pkcs1_pem().unwrap());
        repo
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }

    fn lint(&self, args: &[&str]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_kubeseal"))
            .arg("lint")
            .args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("HOME", self.dir.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("KUBECONFIG", self.path("no-kubeconfig"))
            .output()
            .unwrap();
        Run::from(output)
    }
}

#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        let run = Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        };
        assert!(
            !run.stdout.contains(PLAINTEXT) && !run.stderr.contains(PLAINTEXT),
            "a secret value was printed: {run:?}"
        );
        run
    }
}

impl Run {
    /// The finding lines (`path:line: severity rule: message`) of a text report.
    fn lines(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| !l.starts_with(' '))
            .collect()
    }

    fn rules(&self) -> Vec<&str> {
        self.lines()
            .iter()
            .filter_map(|l| l.split(": ").nth(1))
            .filter_map(|s| s.split(' ').nth(1))
            .collect()
    }

    fn assert_only(&self, rule: &str) -> String {
        assert_eq!(self.code, 1, "{self:?}");
        assert_eq!(self.rules(), [rule], "{self:?}");
        self.lines()[0].to_string()
    }
}

fn has_kubectl() -> bool {
    let ok = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("kubectl not found: skipping a kustomize test");
    }
    ok
}

fn clean_sealed(ns: &str, name: &str) -> String {
    sealed_yaml(
        Some(ns),
        name,
        "",
        &[("password", &seal(Scope::Strict, ns, name))],
    )
}

#[test]
fn clean_repository_passes() {
    let repo = Repo::new();
    repo.write("apps/db.yaml", &clean_sealed("shop", "db"));
    repo.write(
        "apps/multi.yaml",
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n---\n{}---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: sa-token\n  annotations:\n    kubernetes.io/service-account.name: app\ntype: kubernetes.io/service-account-token\n",
            sealed_yaml(
                Some("shop"),
                "wide",
                "    sealedsecrets.bitnami.com/namespace-wide: \"true\"\n",
                &[("a", &seal(Scope::NamespaceWide, "shop", "x"))]
            )
        ),
    );
    repo.write("apps/deploy.json", "{\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\", \"metadata\": {\"name\": \"d\"}}\n");
    repo.write(".github/workflows/ci.yaml", "not: [valid");
    repo.write("chart/Chart.yaml", "name: c\n");
    repo.write(
        "chart/templates/secret.yaml",
        "kind: Secret\n{{ .Values.x }}\n",
    );
    if has_kubectl() {
        repo.write("k/base/sealed.yaml", &clean_sealed("shop", "api"));
        repo.write("k/base/kustomization.yaml", "resources:\n- sealed.yaml\n");
        repo.write(
            "k/overlays/staging/kustomization.yaml",
            "resources:\n- ../../base\nnamespace: shop\ncommonLabels:\n  env: staging\n",
        );
    }
    let run = repo.lint(&[
        "--cert",
        "keys/tls.crt",
        "--recovery-private-key",
        "keys/tls.key",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("0 errors, 0 warnings"), "{run:?}");
}

#[test]
fn raw_secrets_are_errors_unless_their_type_is_allowed() {
    let repo = Repo::new();
    repo.write(
        "secret.yaml",
        &format!("# a comment\napiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: shop\ntype: kubernetes.io/basic-auth\nstringData:\n  password: {PLAINTEXT}\n"),
    );
    let run = repo.lint(&[]);
    let line = run.assert_only("raw-secret");
    assert!(
        line.starts_with("secret.yaml:2: error raw-secret: Secret \"shop/db\""),
        "{line}"
    );
    let run = repo.lint(&["--allow-secret-type", "kubernetes.io/basic-auth"]);
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn raw_secrets_inside_lists_and_json_are_found() {
    let repo = Repo::new();
    repo.write(
        "list.json",
        &format!("{{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"List\",\n  \"items\": [\n    {{\"apiVersion\": \"v1\", \"kind\": \"Secret\", \"metadata\": {{\"name\": \"s\"}}, \"data\": {{\"k\": \"{}\"}}}}\n  ]\n}}\n", base64::engine::general_purpose::STANDARD.encode(PLAINTEXT)),
    );
    let line = repo.lint(&[]).assert_only("raw-secret");
    assert!(line.starts_with("list.json:1: error raw-secret:"), "{line}");
}

#[test]
fn bad_base64_is_reported_at_the_item() {
    let repo = Repo::new();
    let good = seal(Scope::Strict, "shop", "db");
    repo.write(
        "db.yaml",
        &sealed_yaml(
            Some("shop"),
            "db",
            "",
            &[("good", &good), ("broken", "AgB!!notbase64")],
        ),
    );
    let line = repo.lint(&[]).assert_only("invalid-base64");
    assert_eq!(
        line,
        "db.yaml:12: error invalid-base64: SealedSecret \"shop/db\": item \"broken\" is not valid base64 (illegal base64 data at input byte 3)"
    );
}

#[test]
fn a_length_prefix_that_does_not_fit_is_reported() {
    let repo = Repo::new();
    let mut bytes = base64::engine::general_purpose::STANDARD
        .decode(seal(Scope::Strict, "shop", "db"))
        .unwrap();
    bytes.truncate(200);
    let short = base64::engine::general_purpose::STANDARD.encode(&bytes);
    repo.write(
        "db.yaml",
        &sealed_yaml(Some("shop"), "db", "", &[("password", &short)]),
    );
    let line = repo.lint(&[]).assert_only("ciphertext-truncated");
    assert!(
        line.contains("announces a 256-byte RSA block but only 198 bytes follow"),
        "{line}"
    );
}

#[test]
fn empty_encrypted_data_is_reported() {
    let repo = Repo::new();
    repo.write(
        "db.yaml",
        "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: db\n  namespace: shop\nspec:\n  encryptedData: {}\n",
    );
    let line = repo.lint(&[]).assert_only("empty-encrypted-data");
    assert!(line.starts_with("db.yaml:7: "), "{line}");
}

#[test]
fn both_data_formats_are_reported() {
    let repo = Repo::new();
    let mut text = clean_sealed("shop", "db");
    text.push_str(&format!("  data: {}\n", seal(Scope::Strict, "shop", "db")));
    repo.write("db.yaml", &text);
    let line = repo.lint(&[]).assert_only("both-data-and-encrypted-data");
    assert!(line.starts_with("db.yaml:12: "), "{line}");
}

#[test]
fn unknown_scope_annotation_values_are_reported() {
    let repo = Repo::new();
    repo.write(
        "db.yaml",
        &sealed_yaml(
            Some("shop"),
            "db",
            "    sealedsecrets.bitnami.com/cluster-wide: \"yes\"\n",
            &[("password", &seal(Scope::Strict, "shop", "db"))],
        ),
    );
    let line = repo.lint(&[]).assert_only("unknown-scope-annotation");
    assert!(line.starts_with("db.yaml:7: "), "{line}");
    assert!(line.contains("is \"yes\""), "{line}");
}

#[test]
fn an_expired_certificate_is_reported() {
    let repo = Repo::new();
    let old = generate_key_pair(
        2048,
        "",
        "2020-01-01T00:00:00Z".parse().unwrap(),
        jiff::SignedDuration::from_hours(24),
    )
    .unwrap();
    repo.write("old.crt", &old.cert_pem);
    repo.write("db.yaml", &clean_sealed("shop", "db"));
    let line = repo
        .lint(&["--cert", "old.crt"])
        .assert_only("cert-expired");
    assert!(line.starts_with("old.crt: error cert-expired:"), "{line}");
    assert!(line.contains("January 2, 2020"), "{line}");
}

#[test]
fn values_sealed_for_a_key_of_another_size_are_reported() {
    let repo = Repo::new();
    repo.write("big.crt", &pair(3072).cert_pem);
    repo.write("db.yaml", &clean_sealed("shop", "db"));
    let line = repo
        .lint(&["--cert", "big.crt"])
        .assert_only("rsa-key-size-mismatch");
    assert!(
        line.contains(
            "has a 256-byte RSA block (a 2048-bit key) but the certificate's key is 3072-bit"
        ),
        "{line}"
    );
    let ok = seal_for(pair(3072), Scope::Strict, "shop", "db");
    repo.write(
        "db.yaml",
        &sealed_yaml(Some("shop"), "db", "", &[("password", &ok)]),
    );
    assert_eq!(repo.lint(&["--cert", "big.crt"]).code, 0);
}

#[test]
fn strict_sealed_secrets_without_a_namespace_are_reported() {
    let repo = Repo::new();
    repo.write(
        "db.yaml",
        &sealed_yaml(
            None,
            "db",
            "",
            &[("password", &seal(Scope::Strict, "shop", "db"))],
        ),
    );
    let line = repo.lint(&[]).assert_only("missing-namespace");
    assert!(line.contains("is strict but has no namespace"), "{line}");
}

#[test]
fn recovery_keys_open_every_value_under_its_own_label() {
    let repo = Repo::new();
    let wrong_name = seal(Scope::Strict, "shop", "other");
    repo.write(
        "db.yaml",
        &sealed_yaml(
            Some("shop"),
            "db",
            "",
            &[
                ("good", &seal(Scope::Strict, "shop", "db")),
                ("moved", &wrong_name),
            ],
        ),
    );
    let key_list = repo.write("keys/list.yaml", &key_secret_list());
    let key = key_list.to_str().unwrap();
    let line = repo
        .lint(&["--recovery-private-key", key, "--exclude", "keys"])
        .assert_only("cannot-decrypt");
    assert!(
        line.starts_with("db.yaml:12: error cannot-decrypt:"),
        "{line}"
    );
    assert!(line.contains("item \"moved\""), "{line}");
    assert!(line.contains("strict label \"shop/db\""), "{line}");
    // Another key opens nothing.
    let other = generate_key_pair(
        2048,
        "",
        jiff::Timestamp::now(),
        jiff::SignedDuration::from_hours(1),
    )
    .unwrap();
    repo.write("keys/other.pem", &other.key.to_pkcs1_pem().unwrap());
    let run = repo.lint(&[
        "--recovery-private-key",
        "keys/other.pem",
        "--exclude",
        "keys",
    ]);
    // One error per SealedSecret, at its first value, the other value as a related place.
    let line = run.assert_only("cannot-decrypt");
    assert!(
        line.starts_with(
            "db.yaml:11: error cannot-decrypt: SealedSecret \"shop/db\": 2 values do not open"
        ),
        "{line}"
    );
    assert!(
        run.stdout
            .contains("    db.yaml:12: note: item \"moved\" does not open either"),
        "{run:?}"
    );
    // Comma lists and repeated flags both work.
    let run = repo.lint(&[
        "--recovery-private-key",
        "keys/other.pem,keys/tls.key",
        "--exclude",
        "keys",
    ]);
    assert_eq!(run.rules(), ["cannot-decrypt"], "{run:?}");
}

/// The key backup `kubectl get secret -l sealedsecrets.bitnami.com/sealed-secrets-key -o yaml`
/// produces.
fn key_secret_list() -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    format!(
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata:\n    name: sealed-secrets-key\n  type: kubernetes.io/tls\n  data:\n    tls.crt: {}\n    tls.key: {}\n",
        b64(&pair(2048).cert_pem),
        b64(&pair(2048).key.to_pkcs1_pem().unwrap())
    )
}

/// The GitOps guides' layout. Staging keeps the name; production's `nameSuffix: -prod` renames
/// the strict SealedSecret, which then cannot be opened.
fn gitops_repo() -> Repo {
    let repo = Repo::new();
    repo.write(
        "base/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop\n  namespace: shop\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: shop:1\n",
    );
    repo.write(
        "base/sealed-db.yaml",
        &format!("---\n{}", clean_sealed("shop", "db")),
    );
    repo.write(
        "base/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- deployment.yaml\n- sealed-db.yaml\n",
    );
    repo.write(
        "overlays/staging/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../../base\ncommonLabels:\n  env: staging\n",
    );
    repo.write(
        "overlays/production/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../../base\nnameSuffix: -prod\n",
    );
    repo
}

#[test]
fn gitops_overlay_suffix_breaks_a_strict_sealed_secret_and_both_files_are_named() {
    if !has_kubectl() {
        return;
    }
    let repo = gitops_repo();
    let run = repo.lint(&[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.rules(), ["overlay-breaks-scope"], "{run:?}");
    let line = run.lines()[0];
    assert!(
        line.starts_with("overlays/production/kustomization.yaml:5: error overlay-breaks-scope: strict SealedSecret \"shop/db\" defined at base/sealed-db.yaml:2 is renamed to \"shop/db-prod\""),
        "{line}"
    );
    assert!(line.contains("(nameSuffix: -prod)"), "{line}");
    assert!(
        run.stdout
            .contains("    base/sealed-db.yaml:2: note: sealed for \"shop/db\" (strict)"),
        "{run:?}"
    );

    assert!(line.contains("a guess from the file"), "{line}");

    // With the key, staging opens and production does not: the trial decryption proves the
    // suffix broke it (one error, not one per value plus the guess).
    let line = repo
        .lint(&["--recovery-private-key", "keys/tls.key"])
        .assert_only("overlay-breaks-scope");
    assert!(line.starts_with("overlays/production/kustomization.yaml:5: error overlay-breaks-scope: strict SealedSecret \"shop/db\" defined at base/sealed-db.yaml:2 is renamed to \"shop/db-prod\""), "{line}");
    assert!(
        line.contains("the recovery keys prove it breaks the scope: 1 value does not open under the rendered strict label \"shop/db-prod\" but item \"password\" opens under the strict label \"shop/db\""),
        "{line}"
    );
    assert!(!line.contains("guess"), "{line}");

    // Sealing namespace-wide survives the rename.
    repo.write(
        "base/sealed-db.yaml",
        &sealed_yaml(
            Some("shop"),
            "db",
            "    sealedsecrets.bitnami.com/namespace-wide: \"true\"\n",
            &[("password", &seal(Scope::NamespaceWide, "shop", "db"))],
        ),
    );
    let run = repo.lint(&["--recovery-private-key", "keys/tls.key"]);
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn an_overlay_that_patches_in_values_sealed_for_the_new_name_passes() {
    if !has_kubectl() {
        return;
    }
    let repo = gitops_repo();
    repo.write(
        "overlays/production/sealed-db-patch.yaml",
        &sealed_yaml(
            Some("shop"),
            "db",
            "",
            &[("password", &seal(Scope::Strict, "shop", "db-prod"))],
        ),
    );
    repo.write(
        "overlays/production/kustomization.yaml",
        "resources:\n- ../../base\nnameSuffix: -prod\npatches:\n- path: sealed-db-patch.yaml\n",
    );
    let run = repo.lint(&["--recovery-private-key", "keys/tls.key"]);
    assert_eq!(run.code, 0, "{run:?}");
    // Values patched in for the wrong name are still caught by the recovery keys.
    repo.write(
        "overlays/production/sealed-db-patch.yaml",
        &sealed_yaml(
            Some("shop"),
            "db",
            "",
            &[("password", &seal(Scope::Strict, "shop", "db"))],
        ),
    );
    let line = repo
        .lint(&["--recovery-private-key", "keys/tls.key"])
        .assert_only("cannot-decrypt");
    assert!(
        line.starts_with("overlays/production/sealed-db-patch.yaml:11: error cannot-decrypt:"),
        "{line}"
    );
}

#[test]
fn an_overlay_namespace_moves_namespace_wide_but_not_cluster_wide_sealed_secrets() {
    if !has_kubectl() {
        return;
    }
    let repo = Repo::new();
    repo.write(
        "base/wide.yaml",
        &sealed_yaml(
            Some("shop"),
            "wide",
            "    sealedsecrets.bitnami.com/namespace-wide: \"true\"\n",
            &[("a", &seal(Scope::NamespaceWide, "shop", ""))],
        ),
    );
    repo.write(
        "base/cluster.yaml",
        &sealed_yaml(
            Some("shop"),
            "cluster",
            "    sealedsecrets.bitnami.com/cluster-wide: \"true\"\n",
            &[("a", &seal(Scope::ClusterWide, "", ""))],
        ),
    );
    repo.write(
        "base/kustomization.yaml",
        "resources:\n- wide.yaml\n- cluster.yaml\n",
    );
    repo.write(
        "qa/kustomization.yaml",
        "resources:\n- ../base\nnamespace: qa\n",
    );
    let run = repo.lint(&[]);
    let line = run.assert_only("overlay-breaks-scope");
    assert!(
        line.starts_with("qa/kustomization.yaml:3: error overlay-breaks-scope: namespace-wide SealedSecret \"shop/wide\" defined at base/wide.yaml:1 is moved to \"qa/wide\""),
        "{line}"
    );
}

#[test]
fn a_base_without_namespace_is_fine_only_if_the_overlay_gives_one() {
    if !has_kubectl() {
        return;
    }
    let repo = Repo::new();
    repo.write(
        "base/db.yaml",
        &sealed_yaml(
            None,
            "db",
            "",
            &[("password", &seal(Scope::Strict, "shop", "db"))],
        ),
    );
    repo.write("base/kustomization.yaml", "resources:\n- db.yaml\n");
    repo.write(
        "shop/kustomization.yaml",
        "resources:\n- ../base\nnamespace: shop\n",
    );
    let run = repo.lint(&["--recovery-private-key", "keys/tls.key"]);
    assert_eq!(run.code, 0, "{run:?}");
    repo.write("other/kustomization.yaml", "resources:\n- ../base\n");
    let line = repo.lint(&[]).assert_only("missing-namespace");
    assert!(line.starts_with("base/db.yaml:3: error missing-namespace: SealedSecret \"db\" (as rendered by other/kustomization.yaml)"), "{line}");
}

#[test]
fn secret_generators_are_raw_secrets_located_at_the_generator() {
    if !has_kubectl() {
        return;
    }
    let repo = Repo::new();
    repo.write("app/password.txt", PLAINTEXT);
    repo.write(
        "app/kustomization.yaml",
        "namespace: shop\nsecretGenerator:\n- name: db\n  files:\n  - password.txt\n",
    );
    let line = repo.lint(&[]).assert_only("raw-secret");
    assert!(
        line.starts_with("app/kustomization.yaml:2: error raw-secret: Secret \"shop/db-"),
        "{line}"
    );
}

#[test]
fn kustomize_failures_are_findings_and_missing_kubectl_is_an_io_error() {
    if !has_kubectl() {
        return;
    }
    let repo = Repo::new();
    repo.write("app/kustomization.yaml", "resources:\n- missing.yaml\n");
    let line = repo.lint(&[]).assert_only("kustomize-build-failed");
    assert!(
        line.starts_with("app/kustomization.yaml: error kustomize-build-failed:"),
        "{line}"
    );
    let run = repo.lint(&["--kubectl", "/nonexistent/kubectl"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("error: /nonexistent/kubectl not found"),
        "{run:?}"
    );
    assert!(run.stderr.contains("kubectl kustomize"), "{run:?}");
}

#[test]
fn unparsable_secret_files_are_reported() {
    let repo = Repo::new();
    repo.write(
        "a.yaml",
        "apiVersion: v1\nkind: ConfigMap\n---\nkind: Secret\ndata: {a: [\n",
    );
    let line = repo.lint(&[]).assert_only("invalid-yaml");
    assert!(line.starts_with("a.yaml:5: error invalid-yaml:"), "{line}");
    assert_eq!(repo.lint(&["--exclude", "a.yaml"]).code, 0);
}

fn broken_repo() -> Repo {
    let repo = Repo::new();
    repo.write(
        "secret.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  p: {PLAINTEXT}\n"
        ),
    );
    let mut text = clean_sealed("shop", "db");
    text.push_str(&format!("  data: {}\n", seal(Scope::Strict, "shop", "db")));
    repo.write("dir with space/db.yaml", &text);
    repo
}

#[test]
fn json_report() {
    let run = broken_repo().lint(&["--format", "json"]);
    assert_eq!(run.code, 1, "{run:?}");
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["summary"]["errors"], 2);
    assert_eq!(v["findings"][0]["rule"], "both-data-and-encrypted-data");
    assert_eq!(v["findings"][0]["file"], "dir with space/db.yaml");
    assert_eq!(v["findings"][0]["line"], 12);
    assert_eq!(v["findings"][1]["rule"], "raw-secret");
    assert_eq!(v["findings"][1]["severity"], "error");
}

#[test]
fn sarif_report_for_code_scanning() {
    let repo = broken_repo();
    let run = repo.lint(&["--format", "sarif", "--output", "out.sarif"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stdout, "");
    let v: Value = serde_json::from_slice(&fs::read(repo.path("out.sarif")).unwrap()).unwrap();
    assert_eq!(v["version"], "2.1.0");
    let run0 = &v["runs"][0];
    let results = run0["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    let location = &results[0]["locations"][0]["physicalLocation"];
    assert_eq!(
        location["artifactLocation"]["uri"],
        "dir%20with%20space/db.yaml"
    );
    assert_eq!(location["region"]["startLine"], 12);
    let rules = run0["tool"]["driver"]["rules"].as_array().unwrap();
    for result in results {
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], result["ruleId"]);
        assert_eq!(result["level"], "error");
    }
}

#[test]
fn junit_report() {
    let repo = broken_repo();
    repo.write("fine.yaml", &clean_sealed("shop", "x"));
    let run = repo.lint(&["--format", "junit"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.starts_with("<?xml"), "{run:?}");
    assert!(run.stdout.contains("tests=\"3\" failures=\"2\""), "{run:?}");
    assert!(
        run.stdout.contains("<failure type=\"raw-secret\""),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("<testcase classname=\"fine.yaml\" name=\"fine.yaml\"/>"),
        "{run:?}"
    );
}

#[test]
fn verify_needs_a_cluster_and_usage_errors_exit_2() {
    let repo = Repo::new();
    let run = repo.lint(&["--verify"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("needs cluster access"), "{run:?}");
    assert!(run.stderr.contains("not supported yet"), "{run:?}");
    assert_eq!(repo.lint(&["--format", "xml"]).code, 2);
    assert_eq!(repo.lint(&["--no-such-flag"]).code, 2);
    let run = repo.lint(&["missing-dir"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("missing-dir"), "{run:?}");
    let run = repo.lint(&["--cert", "missing.crt"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("open missing.crt"), "{run:?}");
}

#[test]
fn explicit_paths_limit_the_walk() {
    let repo = broken_repo();
    repo.write("ok/db.yaml", &clean_sealed("shop", "db"));
    let run = repo.lint(&["ok", "ok/db.yaml"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("(1 source checked)"), "{run:?}");
}

#[test]
fn without_lint_first_kubeseal_keeps_upstream_behaviour() {
    // `lint` anywhere else is an ignored positional argument, as upstream.
    let repo = Repo::new();
    let output = Command::new(env!("CARGO_BIN_EXE_kubeseal"))
        .args(["--version", "lint"])
        .current_dir(Path::new(repo.dir.path()))
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("kubeseal version: "));
}

#[test]
fn the_deprecated_data_field_is_a_warning_that_does_not_fail() {
    let repo = Repo::new();
    repo.write(
        "db.yaml",
        &format!(
            "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: db\n  namespace: shop\nspec:\n  data: {}\n",
            seal(Scope::Strict, "shop", "db")
        ),
    );
    let run = repo.lint(&[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.rules(), ["deprecated-data-field"], "{run:?}");
    assert!(
        run.lines()[0].starts_with("db.yaml:7: warning deprecated-data-field:"),
        "{run:?}"
    );
    assert!(run.stderr.contains("0 errors, 1 warning"), "{run:?}");
}

/// Issue 16's repository: a base with a Deployment that takes its environment from Secret
/// `db-creds` and a SealedSecret `db-creds`, and an `oslo-prod` overlay with `namespace:
/// payments` and `nameSuffix: -prod`. `annotations` and `sealed` choose the SealedSecret's scope
/// annotation lines and its value.
fn oslo_repo(annotations: &str, sealed: &str) -> Repo {
    let repo = Repo::new();
    repo.write(
        "base/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: api:1\n        envFrom:\n        - secretRef:\n            name: db-creds\n      imagePullSecrets:\n      - name: registry-made-by-hand\n",
    );
    repo.write(
        "base/db-creds.yaml",
        &sealed_yaml(None, "db-creds", annotations, &[("password", sealed)]),
    );
    repo.write(
        "base/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- deployment.yaml\n- db-creds.yaml\n",
    );
    repo.write(
        "overlays/oslo-prod/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../../base\nnamespace: payments\nnameSuffix: -prod\n",
    );
    repo
}

/// The fix users apply: a `configurations:` file with a `nameReference` for kind SealedSecret,
/// here the very snippet the lint prints.
fn apply_name_reference_fix(repo: &Repo, kustomization: &str, snippet: &str) {
    let dir = Path::new(kustomization).parent().unwrap();
    repo.write(
        dir.join("sealedsecret-names.yaml").to_str().unwrap(),
        &format!("{snippet}\n"),
    );
    let text = fs::read_to_string(repo.path(kustomization)).unwrap();
    repo.write(
        kustomization,
        &format!("{text}configurations:\n- sealedsecret-names.yaml\n"),
    );
}

/// The snippet between the backquotes after "fix: list a file containing".
fn snippet_of(line: &str) -> String {
    let start = line.find("containing `").unwrap() + "containing `".len();
    let rest = &line[start..];
    rest[..rest.find('`').unwrap()].to_string()
}

#[test]
fn issue16_a_value_sealed_for_the_rendered_name_is_proven_right_by_the_key() {
    if !has_kubectl() {
        return;
    }
    // Sealed strict for the name it has after the suffix: exactly what a user must do.
    let repo = oslo_repo("", &seal(Scope::Strict, "payments", "db-creds-prod"));
    let fix = repo.lint(&["--exclude", "keys"]);
    let reference = fix
        .lines()
        .into_iter()
        .find(|l| l.contains("renamed-sealed-secret-reference"))
        .unwrap()
        .to_string();
    apply_name_reference_fix(
        &repo,
        "overlays/oslo-prod/kustomization.yaml",
        &snippet_of(&reference),
    );
    // Without the key the file's metadata.name is all the lint has, and it says it guesses.
    let line = repo
        .lint(&["--exclude", "keys"])
        .assert_only("overlay-breaks-scope");
    assert!(line.starts_with("overlays/oslo-prod/kustomization.yaml:6: error overlay-breaks-scope: strict SealedSecret \"db-creds\" defined at base/db-creds.yaml:1 is renamed to \"payments/db-creds-prod\""), "{line}");
    assert!(line.contains("a guess from the file"), "{line}");
    assert!(line.contains("--recovery-private-key"), "{line}");
    // With the key, the trial decryption is the truth: every value opens, nothing to report.
    let run = repo.lint(&[
        "--exclude",
        "keys",
        "--recovery-private-key",
        "keys/tls.key",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "", "{run:?}");

    // Sealed for the name in the file instead: the key proves the overlay broke it, and says
    // under which name the value does open.
    repo.write(
        "base/db-creds.yaml",
        &sealed_yaml(
            None,
            "db-creds",
            "",
            &[("password", &seal(Scope::Strict, "payments", "db-creds"))],
        ),
    );
    let line = repo
        .lint(&[
            "--exclude",
            "keys",
            "--recovery-private-key",
            "keys/tls.key",
        ])
        .assert_only("overlay-breaks-scope");
    assert!(
        line.starts_with("overlays/oslo-prod/kustomization.yaml:6: error overlay-breaks-scope:"),
        "{line}"
    );
    assert!(
        line.contains("opens under the strict label \"payments/db-creds\""),
        "{line}"
    );

    // Sealed for a name no file mentions: not the overlay's fault, a plain cannot-decrypt at
    // the value, which says no trial opened it.
    repo.write(
        "base/db-creds.yaml",
        &sealed_yaml(
            None,
            "db-creds",
            "",
            &[("password", &seal(Scope::Strict, "payments", "elsewhere"))],
        ),
    );
    let line = repo
        .lint(&[
            "--exclude",
            "keys",
            "--recovery-private-key",
            "keys/tls.key",
        ])
        .assert_only("cannot-decrypt");
    assert!(line.starts_with("base/db-creds.yaml:10: error cannot-decrypt: SealedSecret \"payments/db-creds-prod\" (as rendered by overlays/oslo-prod/kustomization.yaml): 1 value does not open with the recovery keys under its strict label \"payments/db-creds-prod\": item \"password\" opens under none of the names"), "{line}");

    // Sealed cluster-wide but not annotated so: the trial finds the scope.
    repo.write(
        "base/db-creds.yaml",
        &sealed_yaml(
            None,
            "db-creds",
            "",
            &[("password", &seal(Scope::ClusterWide, "", ""))],
        ),
    );
    let line = repo
        .lint(&[
            "--exclude",
            "keys",
            "--recovery-private-key",
            "keys/tls.key",
        ])
        .assert_only("cannot-decrypt");
    assert!(
        line.contains("item \"password\" opens under the cluster-wide label \"\""),
        "{line}"
    );
}

/// The reference finding of issue 16, checked in `format`; returns the report.
fn lint_oslo_references(repo: &Repo, format: &str) -> Run {
    let run = repo.lint(&["--exclude", "keys", "--format", format]);
    assert_eq!(run.code, 1, "{run:?}");
    run
}

#[test]
fn issue16_a_suffix_that_breaks_a_reference_to_a_sealed_secret_fails_in_every_format() {
    if !has_kubectl() {
        return;
    }
    // Namespace-wide, so the rename keeps it openable; the reference is what breaks.
    let repo = oslo_repo(
        "    sealedsecrets.bitnami.com/namespace-wide: \"true\"\n",
        &seal(Scope::NamespaceWide, "payments", ""),
    );
    let run = repo.lint(&[
        "--exclude",
        "keys",
        "--recovery-private-key",
        "keys/tls.key",
    ]);
    let line = run.assert_only("renamed-sealed-secret-reference");
    assert!(
        line.starts_with("base/deployment.yaml:13: error renamed-sealed-secret-reference: Deployment \"payments/api-prod\" (as rendered by overlays/oslo-prod/kustomization.yaml) refers to Secret \"db-creds\" at spec.template.spec.containers[app].envFrom[0].secretRef.name, which no object of the render provides: SealedSecret \"db-creds\" defined at base/db-creds.yaml:1 is renamed to \"payments/db-creds-prod\" by overlays/oslo-prod/kustomization.yaml:6 (nameSuffix: -prod)"),
        "{line}"
    );
    assert!(line.contains("fix: list a file containing `nameReference: [{kind: SealedSecret, group: bitnami.com, fieldSpecs: [{kind: Deployment, path: spec/template/spec/containers/envFrom/secretRef/name}]}]` under `configurations:` in overlays/oslo-prod/kustomization.yaml"), "{line}");
    // imagePullSecrets names a Secret made outside Git: not reported, no guesses.
    assert!(!run.stdout.contains("registry-made-by-hand"), "{run:?}");
    assert!(
        run.stdout.contains(
            "    overlays/oslo-prod/kustomization.yaml:6: note: renames it: nameSuffix: -prod"
        ),
        "{run:?}"
    );

    let v: Value = serde_json::from_str(&lint_oslo_references(&repo, "json").stdout).unwrap();
    assert_eq!(v["summary"]["errors"], 1);
    assert_eq!(v["findings"][0]["rule"], "renamed-sealed-secret-reference");
    assert_eq!(v["findings"][0]["file"], "base/deployment.yaml");
    assert_eq!(v["findings"][0]["line"], 13);

    let v: Value = serde_json::from_str(&lint_oslo_references(&repo, "sarif").stdout).unwrap();
    let result = &v["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "renamed-sealed-secret-reference");
    let location = &result["locations"][0]["physicalLocation"];
    assert_eq!(location["artifactLocation"]["uri"], "base/deployment.yaml");
    assert_eq!(location["region"]["startLine"], 13);
    let related = result["relatedLocations"].as_array().unwrap();
    assert!(
        related
            .iter()
            .any(|r| r["physicalLocation"]["artifactLocation"]["uri"]
                == "overlays/oslo-prod/kustomization.yaml"
                && r["physicalLocation"]["region"]["startLine"] == 6),
        "{result}"
    );

    let junit = lint_oslo_references(&repo, "junit").stdout;
    assert!(
        junit.contains("<failure type=\"renamed-sealed-secret-reference\""),
        "{junit}"
    );

    // The fix the message offers makes kustomize rewrite the reference, and the lint passes.
    apply_name_reference_fix(
        &repo,
        "overlays/oslo-prod/kustomization.yaml",
        &snippet_of(&line),
    );
    let rendered = Command::new("kubectl")
        .args(["kustomize", "overlays/oslo-prod"])
        .current_dir(repo.dir.path())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&rendered.stdout)
            .contains("- secretRef:\n            name: db-creds-prod\n"),
        "{rendered:?}"
    );
    let run = repo.lint(&[
        "--exclude",
        "keys",
        "--recovery-private-key",
        "keys/tls.key",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn issue16_references_added_by_a_strategic_merge_patch_and_renamed_by_a_prefix() {
    if !has_kubectl() {
        return;
    }
    let repo = oslo_repo(
        "    sealedsecrets.bitnami.com/namespace-wide: \"true\"\n",
        &seal(Scope::NamespaceWide, "payments", ""),
    );
    // The base Deployment no longer uses the Secret; the overlay's patch adds a volume that
    // does, and a CronJob in the base reads one key of it. The overlay renames by prefix.
    repo.write(
        "base/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: api:1\n",
    );
    repo.write(
        "base/cron.yaml",
        "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: backup\nspec:\n  schedule: \"@daily\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers:\n          - name: dump\n            image: dump:1\n            env:\n            - name: PASSWORD\n              valueFrom:\n                secretKeyRef:\n                  key: password\n                  name: db-creds\n",
    );
    repo.write(
        "base/kustomization.yaml",
        "resources:\n- deployment.yaml\n- cron.yaml\n- db-creds.yaml\n",
    );
    repo.write(
        "overlays/oslo-prod/creds-volume.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  template:\n    spec:\n      volumes:\n      - name: creds\n        projected:\n          sources:\n          - secret:\n              name: db-creds\n",
    );
    repo.write(
        "overlays/oslo-prod/kustomization.yaml",
        "resources:\n- ../../base\nnamespace: payments\nnamePrefix: oslo-\npatchesStrategicMerge:\n- creds-volume.yaml\n",
    );
    let run = repo.lint(&["--exclude", "keys"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.rules(),
        [
            "renamed-sealed-secret-reference",
            "renamed-sealed-secret-reference"
        ],
        "{run:?}"
    );
    let lines = run.lines();
    assert!(lines[0].starts_with("base/cron.yaml:20: error renamed-sealed-secret-reference: CronJob \"payments/oslo-backup\""), "{run:?}");
    assert!(
        lines[0].contains(
            "path: spec/jobTemplate/spec/template/spec/containers/env/valueFrom/secretKeyRef/name"
        ),
        "{run:?}"
    );
    assert!(lines[0].contains("(namePrefix: oslo-)"), "{run:?}");
    assert!(lines[1].starts_with("overlays/oslo-prod/creds-volume.yaml:13: error renamed-sealed-secret-reference: Deployment \"payments/oslo-api\""), "{run:?}");
    assert!(
        lines[1].contains("spec.template.spec.volumes[creds].projected.sources[0].secret.name"),
        "{run:?}"
    );

    // Both snippets in one configurations file fix both references.
    let merged = "nameReference:\n- kind: SealedSecret\n  group: bitnami.com\n  fieldSpecs:\n  - {kind: CronJob, path: spec/jobTemplate/spec/template/spec/containers/env/valueFrom/secretKeyRef/name}\n  - {kind: Deployment, path: spec/template/spec/volumes/projected/sources/secret/name}";
    apply_name_reference_fix(&repo, "overlays/oslo-prod/kustomization.yaml", merged);
    let run = repo.lint(&["--exclude", "keys"]);
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn issue16_untraceable_references_point_at_the_renaming_kustomization() {
    if !has_kubectl() {
        return;
    }
    let repo = oslo_repo(
        "    sealedsecrets.bitnami.com/namespace-wide: \"true\"\n",
        &seal(Scope::NamespaceWide, "payments", ""),
    );
    // A Pod inside a List: its lines cannot be looked up by key, so the finding goes to the
    // nameSuffix line, in SARIF too.
    repo.write(
        "base/deployment.yaml",
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: debug\n  spec:\n    containers:\n    - name: sh\n      image: busybox\n    volumes:\n    - name: creds\n      secret:\n        secretName: db-creds\n",
    );
    let line = repo
        .lint(&["--exclude", "keys"])
        .assert_only("renamed-sealed-secret-reference");
    assert!(line.starts_with("overlays/oslo-prod/kustomization.yaml:6: error renamed-sealed-secret-reference: Pod \"payments/debug-prod\""), "{line}");
    assert!(
        line.contains("path: spec/volumes/secret/secretName"),
        "{line}"
    );
    let run = repo.lint(&["--exclude", "keys", "--format", "sarif"]);
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    let location = &v["runs"][0]["results"][0]["locations"][0]["physicalLocation"];
    assert_eq!(
        location["artifactLocation"]["uri"],
        "overlays/oslo-prod/kustomization.yaml"
    );
    assert_eq!(location["region"]["startLine"], 6);
}

#[test]
fn issue16_proven_scope_findings_in_json_and_sarif() {
    if !has_kubectl() {
        return;
    }
    let repo = oslo_repo("", &seal(Scope::Strict, "payments", "db-creds"));
    repo.write(
        "overlays/oslo-prod/sealedsecret-names.yaml",
        "nameReference: [{kind: SealedSecret, group: bitnami.com, fieldSpecs: [{kind: Deployment, path: spec/template/spec/containers/envFrom/secretRef/name}]}]\n",
    );
    repo.write(
        "overlays/oslo-prod/kustomization.yaml",
        "resources:\n- ../../base\nnamespace: payments\nnameSuffix: -prod\nconfigurations:\n- sealedsecret-names.yaml\n",
    );
    let key = [
        "--exclude",
        "keys",
        "--recovery-private-key",
        "keys/tls.key",
    ];
    let run = repo.lint(&[&key[..], &["--format", "json"]].concat());
    assert_eq!(run.code, 1, "{run:?}");
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["summary"]["errors"], 1, "{v}");
    let finding = &v["findings"][0];
    assert_eq!(finding["rule"], "overlay-breaks-scope");
    assert_eq!(finding["file"], "overlays/oslo-prod/kustomization.yaml");
    assert_eq!(finding["line"], 4);
    assert!(
        finding["message"]
            .as_str()
            .unwrap()
            .contains("the recovery keys prove it"),
        "{finding}"
    );
    let run = repo.lint(&[&key[..], &["--format", "sarif"]].concat());
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    let result = &v["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "overlay-breaks-scope");
    let related = &result["relatedLocations"][0]["physicalLocation"];
    assert_eq!(related["artifactLocation"]["uri"], "base/db-creds.yaml");
    assert_eq!(related["region"]["startLine"], 1);
    let run = repo.lint(&[&key[..], &["--format", "junit"]].concat());
    assert!(
        run.stdout
            .contains("<failure type=\"overlay-breaks-scope\""),
        "{run:?}"
    );
}
