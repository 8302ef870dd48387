//! Churn soak, on a real control plane: SealedSecrets applied in one version or another,
//! deleted, re-created under the same name, their Secrets deleted, garbage collection running
//! behind, and the API server SIGKILLed in the middle. When the churn stops, every Secret must
//! converge: a SealedSecret's Secret holds its current version's data and names its current
//! uid as owner, and no Secret of a deleted SealedSecret remains.
//!
//! Sized for CI by default (100 names, 60 s of churn, one API server crash); the long run of
//! `bench/churn.sh` sets `SEALED_SECRETS_CHURN_NAMES`, `SEALED_SECRETS_CHURN_SECONDS`,
//! `SEALED_SECRETS_CHURN_RESTARTS` and `SEALED_SECRETS_CHURN_SEED`. The random seed is printed
//! at the start and in every failure, so a failing run can be replayed.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use sealed_secrets_e2e::{
    Assets, Binaries, Cluster, Controller, SEALED_SECRET_CRD,
    api::{apply_object, delete_object, list_by_name, seal_all, sealed_secrets_path, secrets_path},
    create_namespace, private_cluster,
    sealing::sealing_cert,
    secret_data, unique_name, wait_for,
};

/// How long after the churn every object must have converged.
const CONVERGE: Duration = Duration::from_secs(30);
/// Changes per batch, and the pause between batches (the figures).
const BATCH: usize = 12;
const BATCH_PAUSE: Duration = Duration::from_millis(400);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// splitmix64: a fixed seed gives the same sequence of changes on every machine.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The plaintext of version `version` of `name`.
fn value_of(name: &str, version: usize) -> String {
    format!("{name}-version-{version}")
}

/// Seals both versions of every name in one kubeseal run.
fn seal_versions(
    cluster: &Cluster,
    cert: &std::path::Path,
    namespace: &str,
    names: &[String],
) -> Vec<[Value; 2]> {
    let secrets: Vec<Value> = names
        .iter()
        .flat_map(|name| {
            (0..2).map(move |version| {
                json!({
                    "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                    "metadata": {"name": name, "namespace": namespace},
                    "stringData": {"value": value_of(name, version)},
                })
            })
        })
        .collect();
    seal_all(cluster, cert, &secrets)
        .chunks(2)
        .map(|pair| [pair[0].clone(), pair[1].clone()])
        .collect()
}

/// Objects of one kind by name.
type ByName = BTreeMap<String, Value>;

/// The churn's side of the API.
struct Churner<'a> {
    cluster: &'a Cluster,
    namespace: &'a str,
}

impl Churner<'_> {
    fn apply(&self, name: &str, sealed: &Value) {
        apply_object(
            self.cluster,
            &sealed_secrets_path(self.namespace, Some(name)),
            sealed,
        );
    }

    fn delete_sealed(&self, name: &str) {
        delete_object(
            self.cluster,
            &sealed_secrets_path(self.namespace, Some(name)),
        );
    }

    fn delete_secret(&self, name: &str) {
        delete_object(self.cluster, &secrets_path(self.namespace, Some(name)));
    }

    /// (Secrets, SealedSecrets) by name.
    fn list(&self) -> Result<(ByName, ByName), String> {
        Ok((
            list_by_name(self.cluster, &secrets_path(self.namespace, None))?,
            list_by_name(self.cluster, &sealed_secrets_path(self.namespace, None))?,
        ))
    }
}

/// What is wrong with `name` now, given the version it should have (`None`: deleted).
/// `gc` says whether garbage collection runs (without it, a deleted SealedSecret's Secret is
/// nobody's to remove).
fn wrong(
    name: &str,
    expected: Option<usize>,
    sealed: &BTreeMap<String, Value>,
    secrets: &BTreeMap<String, Value>,
    gc: bool,
) -> Option<String> {
    let secret = secrets.get(name);
    let Some(version) = expected else {
        return match (sealed.get(name), secret) {
            (Some(_), _) => Some(format!("{name}: deleted, but the SealedSecret exists")),
            (None, Some(secret)) if gc => Some(format!(
                "{name}: SealedSecret deleted, its Secret remains (owner {})",
                secret["metadata"]["ownerReferences"]
            )),
            _ => None,
        };
    };
    let Some(object) = sealed.get(name) else {
        return Some(format!(
            "{name}: version {version} applied, no SealedSecret"
        ));
    };
    let status = sealed_secrets_e2e::sealing::synced_condition(object);
    let Some(secret) = secret else {
        return Some(format!("{name}: no Secret; status {status:?}"));
    };
    let owner = &secret["metadata"]["ownerReferences"][0]["uid"];
    if owner != &object["metadata"]["uid"] {
        return Some(format!(
            "{name}: Secret owned by {owner}, SealedSecret uid {}; status {status:?}",
            object["metadata"]["uid"]
        ));
    }
    let data = match secret_data(secret) {
        Ok(data) => data,
        Err(err) => return Some(format!("{name}: {err}")),
    };
    let want = value_of(name, version);
    if data.get("value").map(Vec::as_slice) != Some(want.as_bytes()) {
        return Some(format!(
            "{name}: Secret holds {:?}, want {want:?}; status {status:?}",
            data.get("value")
                .map(|v| String::from_utf8_lossy(v).into_owned())
        ));
    }
    None
}

/// A field of `/proc/<pid>/status` in MB (Linux), for the summary.
fn proc_status_mb(pid: Option<u32>, field: &str) -> String {
    let Some(pid) = pid else {
        return "?".into();
    };
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with(field))?;
            let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!("{:.1} MB", kb / 1024.0))
        })
        .unwrap_or_else(|| "?".into())
}

fn metric_lines(controller: &Controller, prefix: &str) -> Vec<String> {
    controller
        .get_metrics("/metrics")
        .map(|reply| {
            reply
                .text()
                .lines()
                .filter(|l| l.starts_with(prefix))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_secret_converges_after_churn_and_an_api_server_crash() {
    let Some(mut cluster) = private_cluster(
        Assets::from_env(),
        &[("bitnami.com_sealedsecrets.yaml", SEALED_SECRET_CRD)],
    ) else {
        return;
    };
    let names_count: usize = env_or("SEALED_SECRETS_CHURN_NAMES", 100);
    let churn_for = Duration::from_secs(env_or("SEALED_SECRETS_CHURN_SECONDS", 60));
    let restarts: u32 = env_or("SEALED_SECRETS_CHURN_RESTARTS", 1);
    let seed: u64 = env_or("SEALED_SECRETS_CHURN_SEED", 20_261_206);
    eprintln!(
        "churn: seed {seed}, {names_count} names, {} s, {restarts} API server crash(es)",
        churn_for.as_secs()
    );
    let gc = Assets::from_env().is_ok_and(|assets| cluster.start_garbage_collector(&assets));

    let namespace = unique_name("churn");
    let key_namespace = unique_name("churn-keys");
    create_namespace(&cluster, &namespace);
    create_namespace(&cluster, &key_namespace);
    let mut controller = Controller::start(&cluster, &key_namespace, &[]);
    let dir = tempfile::tempdir().expect("temporary folder");
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, sealing_cert(&controller)).expect("cannot write cert.pem");
    let _ = Binaries::get();

    let names: Vec<String> = (0..names_count).map(|i| format!("s{i}")).collect();
    let versions = seal_versions(&cluster, &cert, &namespace, &names);
    let churner = Churner {
        cluster: &cluster,
        namespace: &namespace,
    };
    // Garbage collection works before the churn (it starts a few seconds after the process).
    if gc {
        churner.apply(&names[0], &versions[0][0]);
        wait_for("the first Secret", Duration::from_secs(60), || {
            let (secrets, _) = churner.list()?;
            secrets
                .contains_key(&names[0])
                .then_some(())
                .ok_or_else(|| "not yet".to_string())
        });
        churner.delete_sealed(&names[0]);
        wait_for(
            "garbage collection of the first Secret",
            Duration::from_secs(60),
            || {
                let (secrets, sealed) = churner.list()?;
                (!secrets.contains_key(&names[0]) && !sealed.contains_key(&names[0]))
                    .then_some(())
                    .ok_or_else(|| "Secret still there".to_string())
            },
        );
    }

    // Every name at version 0.
    let mut expected: Vec<Option<usize>> = vec![Some(0); names_count];
    for (name, pair) in names.iter().zip(&versions) {
        churner.apply(name, &pair[0]);
    }
    wait_for(
        "every Secret at version 0",
        Duration::from_secs(120),
        || {
            let (secrets, sealed) = churner.list()?;
            let wrong: Vec<String> = names
                .iter()
                .zip(&expected)
                .filter_map(|(name, v)| wrong(name, *v, &sealed, &secrets, gc))
                .collect();
            if wrong.is_empty() {
                Ok(())
            } else {
                Err(format!("{} not yet: {}", wrong.len(), wrong[0]))
            }
        },
    );

    let rss_before = proc_status_mb(controller.pid(), "VmRSS:");
    // The churn.
    let mut random = Random(seed);
    let started = Instant::now();
    let crash_at: Vec<Duration> = (1..=restarts)
        .map(|k| churn_for.mul_f64(f64::from(k) / f64::from(restarts + 1)))
        .collect();
    let mut crashes = 0usize;
    let (mut applies, mut sealed_deletes, mut secret_deletes) = (0usize, 0usize, 0usize);
    while started.elapsed() < churn_for {
        if crashes < crash_at.len() && started.elapsed() >= crash_at[crashes] {
            let down = Instant::now();
            cluster.kill_apiserver();
            cluster.start_apiserver();
            crashes += 1;
            eprintln!(
                "churn: API server SIGKILLed at {:.0} s, ready again after {:.1} s",
                started.elapsed().as_secs_f64(),
                down.elapsed().as_secs_f64()
            );
        }
        let churner = Churner {
            cluster: &cluster,
            namespace: &namespace,
        };
        for _ in 0..BATCH {
            let i = random.below(names_count);
            match random.below(10) {
                0..=5 => {
                    let version = match expected[i] {
                        Some(v) => 1 - v,
                        None => random.below(2),
                    };
                    churner.apply(&names[i], &versions[i][version]);
                    expected[i] = Some(version);
                    applies += 1;
                }
                6 | 7 => {
                    churner.delete_sealed(&names[i]);
                    expected[i] = None;
                    sealed_deletes += 1;
                }
                _ => {
                    churner.delete_secret(&names[i]);
                    secret_deletes += 1;
                }
            }
        }
        std::thread::sleep(BATCH_PAUSE);
    }
    let churn_secs = started.elapsed().as_secs_f64();

    // Convergence.
    let churner = Churner {
        cluster: &cluster,
        namespace: &namespace,
    };
    let converge_started = Instant::now();
    let mut last_wrong: Vec<String>;
    let converged = loop {
        match churner.list() {
            Ok((secrets, sealed)) => {
                last_wrong = names
                    .iter()
                    .zip(&expected)
                    .filter_map(|(name, v)| wrong(name, *v, &sealed, &secrets, gc))
                    .collect();
                if last_wrong.is_empty() {
                    break Some(converge_started.elapsed());
                }
            }
            Err(err) => last_wrong = vec![err],
        }
        if converge_started.elapsed() >= CONVERGE {
            break None;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let alive = controller.is_running();
    let peak = proc_status_mb(controller.pid(), "VmHWM:");
    let log = controller.log();
    let warnings = log.lines().filter(|l| l.contains(" WARN ")).count();
    let errors = log.lines().filter(|l| l.contains(" ERROR ")).count();
    let races = metric_lines(
        &controller,
        "sealed_secrets_controller_reconcile_races_total",
    );
    let unseal_errors = metric_lines(&controller, "sealed_secrets_controller_unseal_errors_total");
    let right = names_count - last_wrong.len().min(names_count);
    eprintln!(
        "churn summary: seed {seed}; {names_count} names; {churn_secs:.0} s of churn \
         ({applies} applies, {sealed_deletes} SealedSecret deletes, {secret_deletes} Secret deletes); \
         {crashes} API server crash(es); {right}/{names_count} right {}; controller {}; \
         garbage collection {}; RSS {rss_before} before the churn, peak {peak}; \
         {warnings} WARN and {errors} ERROR log lines",
        match converged {
            Some(t) => format!("after {:.1} s", t.as_secs_f64()),
            None => format!("after {} s (did not converge)", CONVERGE.as_secs()),
        },
        if alive { "alive" } else { "DEAD" },
        if gc { "running" } else { "absent" },
    );
    eprintln!("churn metrics: {races:?} {unseal_errors:?}");
    for line in log
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .take(20)
    {
        eprintln!("churn log: {line}");
    }
    if gc && !cluster.controller_manager_running() {
        eprintln!(
            "churn: kube-controller-manager exited; its log's tail:\n{}",
            sealed_secrets_e2e::tail(&cluster.controller_manager_log(), 20)
        );
    }
    assert!(alive, "seed {seed}: the controller died");
    assert!(
        converged.is_some(),
        "seed {seed}: {} of {names_count} objects wrong {} s after the churn:\n{}",
        last_wrong.len(),
        CONVERGE.as_secs(),
        last_wrong.join("\n")
    );
}
