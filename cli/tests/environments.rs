//! Environments, end to end on a fixture repository with the guides' layout: `base/`,
//! `overlays/staging` and `overlays/production` (with `nameSuffix: -prod` and its own
//! namespace), and two clusters' keys. Runs the real `kubeseal` binary, and the real kubectl to
//! render the overlays (skipped with one line where kubectl is missing).

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use sealed_secrets_core::{
    documents::parse_local_documents,
    keys::{GeneratedKeyPair, generate_key_pair},
    sealed_secret::CERTIFICATE_ANNOTATION,
};
use serde_json::Value;

const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: shop\nstringData:\n  password: canary-7f3a\n";

struct Repo {
    dir: tempfile::TempDir,
    staging: GeneratedKeyPair,
    production: GeneratedKeyPair,
}

fn pair() -> GeneratedKeyPair {
    generate_key_pair(
        2048,
        "",
        jiff::Timestamp::now(),
        jiff::SignedDuration::from_hours(24),
    )
    .unwrap()
}

impl Repo {
    fn new() -> Self {
        let repo = Self {
            dir: tempfile::tempdir().unwrap(),
            staging: pair(),
            production: pair(),
        };
        repo.write("certs/staging.pem", &repo.staging.cert_pem);
        repo.write("certs/production.pem", &repo.production.cert_pem);
        repo.write(
            "keys/staging.pem",
            &repo.staging.key.to_pkcs1_pem().unwrap(),
        );
        repo.write(
            "keys/production.pem",
            &repo.production.key.to_pkcs1_pem().unwrap(),
        );
        repo.write(
            ".sealed-secrets.yaml",
            "version: 1\nenvironments:\n  staging:\n    certificates: certs/staging.pem\n  production:\n    certificates: certs/production.pem\nrules:\n- path: overlays/staging/**\n  environment: staging\n- path: overlays/production/**\n  environment: production\n",
        );
        repo.write("secret.yaml", SECRET);
        repo.write("base/kustomization.yaml", "resources: [deployment.yaml]\n");
        repo.write(
            "base/deployment.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop\nspec:\n  selector: {matchLabels: {app: shop}}\n  template:\n    metadata: {labels: {app: shop}}\n    spec:\n      containers: [{name: shop, image: shop:1}]\n",
        );
        repo.write(
            "overlays/staging/kustomization.yaml",
            "resources: [../../base, sealed-db.yaml]\nnamespace: shop-staging\n",
        );
        repo.write(
            "overlays/production/kustomization.yaml",
            "resources: [../../base, sealed-db.yaml]\nnamespace: shop-prod\nnameSuffix: -prod\n",
        );
        repo
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_kubeseal"))
            .args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("HOME", self.dir.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("KUBECONFIG", self.path("no-kubeconfig"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> (String, String) {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "kubeseal {args:?}: {stderr}\n{stdout}"
        );
        (stdout, stderr)
    }

    fn sealed(&self, rel: &str) -> Value {
        parse_local_documents(&fs::read(self.path(rel)).unwrap())
            .unwrap()
            .remove(0)
    }

    /// `kubectl kustomize` of an overlay, then `kubeseal --recovery-unseal` of its
    /// SealedSecret with `key`: whether the cluster holding `key` opens what it deploys.
    fn opens_rendered(&self, overlay: &str, key: &str) -> bool {
        let render = Command::new("kubectl")
            .args(["kustomize", overlay])
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(
            render.status.success(),
            "{}",
            String::from_utf8_lossy(&render.stderr)
        );
        let docs = parse_local_documents(&render.stdout).unwrap();
        let sealed = docs
            .into_iter()
            .find(|d| d["kind"] == "SealedSecret")
            .expect("the overlay renders the SealedSecret");
        self.write("rendered.json", &sealed.to_string());
        let out = self.run(&[
            "--recovery-unseal",
            "--recovery-private-key",
            key,
            "-f",
            "rendered.json",
        ]);
        let opened = out.status.success();
        if opened {
            let secret = parse_local_documents(&out.stdout).unwrap().remove(0);
            assert_eq!(secret["data"]["password"], "Y2FuYXJ5LTdmM2E=");
        }
        opened
    }
}

fn has_kubectl() -> bool {
    let ok = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("kubectl not found: skipping the environments fixture test");
    }
    ok
}

#[test]
fn sealing_by_path_and_by_env_lint_and_re_encrypt_each_overlay_for_its_own_cluster() {
    if !has_kubectl() {
        return;
    }
    let repo = Repo::new();
    let prod_fp = repo.production.key.fingerprint();
    let staging_fp = repo.staging.key.fingerprint();

    // By path: production, for the overlay's rendered name and namespace.
    let (_, stderr) = repo.ok(&[
        "-f",
        "secret.yaml",
        "-w",
        "overlays/production/sealed-db.yaml",
    ]);
    assert!(stderr.contains("environment \"production\""), "{stderr}");
    assert!(stderr.contains(&prod_fp), "{stderr}");
    assert!(
        stderr.contains("name \"db-prod\" in namespace \"shop-prod\""),
        "{stderr}"
    );
    let sealed = repo.sealed("overlays/production/sealed-db.yaml");
    assert_eq!(
        sealed["metadata"]["name"], "db",
        "the file keeps the written name"
    );
    assert_eq!(
        sealed["metadata"]["annotations"][CERTIFICATE_ANNOTATION],
        prod_fp.as_str()
    );
    assert!(repo.opens_rendered("overlays/production", "keys/production.pem"));
    assert!(!repo.opens_rendered("overlays/production", "keys/staging.pem"));

    // Several environments at once, one file each.
    repo.ok(&[
        "-f",
        "secret.yaml",
        "--env",
        "staging,production",
        "-w",
        "overlays/{env}/sealed-db.yaml",
    ]);
    assert_eq!(
        repo.sealed("overlays/staging/sealed-db.yaml")["metadata"]["annotations"]
            [CERTIFICATE_ANNOTATION],
        staging_fp.as_str()
    );
    assert!(repo.opens_rendered("overlays/staging", "keys/staging.pem"));
    assert!(!repo.opens_rendered("overlays/staging", "keys/production.pem"));
    assert!(repo.opens_rendered("overlays/production", "keys/production.pem"));

    // --env contradicting the path's route is refused, and nothing is written.
    let out = repo.run(&[
        "-f",
        "secret.yaml",
        "--env",
        "staging",
        "-w",
        "overlays/production/x.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("routes to environment \"production\""),
        "{stderr}"
    );
    assert!(!repo.path("overlays/production/x.yaml").exists());

    // Lint is clean; then a file copied from staging into production is reported.
    let lint = repo.run(&["lint", "overlays"]);
    assert!(
        lint.status.success(),
        "{}",
        String::from_utf8_lossy(&lint.stdout)
    );
    fs::copy(
        repo.path("overlays/staging/sealed-db.yaml"),
        repo.path("overlays/production/sealed-db.yaml"),
    )
    .unwrap();
    let lint = repo.run(&["lint", "overlays"]);
    let report = String::from_utf8_lossy(&lint.stdout);
    assert_eq!(lint.status.code(), Some(1), "{report}");
    assert!(
        report.contains("sealed-for-another-environment"),
        "{report}"
    );
    assert!(
        report.contains("environment \"staging\"'s certificate"),
        "{report}"
    );
    assert!(!report.contains("canary-7f3a"));

    // Offline re-encryption per environment refuses the copied file (production's keys do not
    // open it) and leaves it untouched.
    let out = repo.run(&[
        "re-encrypt",
        "--all",
        "overlays",
        "--recovery-private-key",
        "keys/staging.pem,keys/production.pem",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("[production]") && stdout.contains("failed"),
        "{stdout}"
    );

    // Re-seal production properly, move staging to a new key, and re-encrypt everything:
    // each overlay ends up sealed with its own environment's newest certificate.
    repo.ok(&[
        "-f",
        "secret.yaml",
        "-w",
        "overlays/production/sealed-db.yaml",
    ]);
    let renewed = pair();
    let bundle = format!("{}{}", repo.staging.cert_pem, renewed.cert_pem);
    repo.write("certs/staging.pem", &bundle);
    repo.write("keys/staging-new.pem", &renewed.key.to_pkcs1_pem().unwrap());
    let (stdout, _) = repo.ok(&[
        "re-encrypt",
        "--all",
        "overlays",
        "--recovery-private-key",
        "keys/staging.pem,keys/production.pem,keys/staging-new.pem",
    ]);
    assert!(stdout.contains("[staging]"), "{stdout}");
    let staging = repo.sealed("overlays/staging/sealed-db.yaml");
    assert_eq!(
        staging["metadata"]["annotations"][CERTIFICATE_ANNOTATION],
        renewed.key.fingerprint().as_str()
    );
    assert!(repo.opens_rendered("overlays/staging", "keys/staging-new.pem"));
    assert!(!repo.opens_rendered("overlays/staging", "keys/staging.pem"));
    assert!(repo.opens_rendered("overlays/production", "keys/production.pem"));
    assert!(!repo.opens_rendered("overlays/production", "keys/staging-new.pem"));

    // With an explicit --cert (no environments), a file sealed for its overlay's rendered name
    // is still opened under that name: found already sealed with the newest key.
    let (stdout, _) = repo.ok(&[
        "re-encrypt",
        "--all",
        "overlays/production",
        "--cert",
        "certs/production.pem",
        "--recovery-private-key",
        "keys/production.pem",
    ]);
    assert!(
        stdout.contains("unchanged (already sealed with the newest key)"),
        "{stdout}"
    );

    // env list counts what routes where.
    let (json, _) = repo.ok(&["env", "list", "-o", "json"]);
    let rows: Value = serde_json::from_str(&json).unwrap();
    let staging_row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "staging")
        .unwrap();
    assert_eq!(staging_row["sealed_secrets"], 1);
    assert_eq!(staging_row["certificates"].as_array().unwrap().len(), 2);
    let (schema, _) = repo.ok(&["env", "schema"]);
    assert!(schema.contains("\"certificates\""), "{schema}");
    let (table, _) = repo.ok(&["env"]);
    assert!(
        table.contains("ENVIRONMENT") && table.contains(&prod_fp),
        "{table}"
    );
}

#[test]
fn lint_warns_about_unrecorded_certificates_unrouted_files_and_unused_rules() {
    let repo = Repo::new();
    repo.write(
        ".sealed-secrets.yaml",
        "version: 1\nenvironments:\n  staging: {certificates: certs/staging.pem}\nrules:\n- {path: overlays/staging/**, environment: staging}\n- {path: clusters/**, environment: staging}\n",
    );
    // Sealed with --cert: upstream's output, no recorded certificate (in a folder no overlay
    // renames, so the scope is right).
    fs::remove_file(repo.path("overlays/staging/kustomization.yaml")).unwrap();
    repo.ok(&[
        "--cert",
        "certs/staging.pem",
        "-f",
        "secret.yaml",
        "-w",
        "overlays/staging/sealed-db.yaml",
    ]);
    repo.ok(&[
        "--cert",
        "certs/staging.pem",
        "-f",
        "secret.yaml",
        "-w",
        "elsewhere.yaml",
    ]);
    let out = repo.run(&[
        "lint",
        "--format",
        "json",
        "overlays/staging",
        "elsewhere.yaml",
    ]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "warnings only: {report}");
    for rule in [
        "unrecorded-certificate",
        "unrouted-sealed-secret",
        "rule-matches-nothing",
    ] {
        assert!(report.contains(rule), "{rule} missing: {report}");
    }
}

#[test]
fn a_broken_repository_file_is_an_error_naming_file_and_field() {
    let repo = Repo::new();
    repo.write(
        ".sealed-secrets.yaml",
        "version: 1\nenvironments:\n  staging: {certificates: certs/nope.pem}\n",
    );
    let out = repo.run(&["-f", "secret.yaml", "-w", "overlays/staging/x.yaml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(".sealed-secrets.yaml: environments.staging.certificates"),
        "{stderr}"
    );
    assert!(!Path::new(&repo.path("overlays/staging/x.yaml")).exists());
}
