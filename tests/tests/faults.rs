//! Faults survived, on a real control plane: the controller under API server restarts, watch
//! gaps that force a relist, keys that arrive late, a SIGKILL during key renewal, a leader
//! frozen past its lease and a SIGTERM handover.
//!
//! Each test starts its own etcd + kube-apiserver (it restarts or compacts them) and the tests
//! run one at a time, so the timings they print are not skewed by each other. Every wait is
//! bounded. Without `KUBEBUILDER_ASSETS` (or envtest's default folder) each test prints the one
//! skip line and passes.

use std::{
    collections::BTreeMap,
    path::Path,
    sync::Mutex,
    thread,
    time::{Duration, Instant},
};

use sealed_secrets_core::keys::{GeneratedKeyPair, generate_key_pair};
use sealed_secrets_e2e::{
    Assets, Cluster, Controller, SEALED_SECRET_CRD, apply_yaml, create_namespace, get_object,
    key_secrets, kubectl_ok, private_cluster,
    sealing::{
        WAIT, as_strs, key_name, key_secret_json, lease_holder, restrict_to, sample_data, seal,
        sealing_cert, tempdir, wait_for_keys, wait_unsealed, write_cert,
    },
    unique_name, wait_for,
};

/// One fault test at a time: they restart servers and measure takeovers.
static SERIAL: Mutex<()> = Mutex::new(());

/// A cluster of this test's own, with the SealedSecret CRD; `None` (skipped) without assets.
fn own_cluster() -> Option<Cluster> {
    private_cluster(
        Assets::from_env(),
        &[("bitnami.com_sealedsecrets.yaml", SEALED_SECRET_CRD)],
    )
}

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fresh 2048-bit sealing key pair (the size keeps the suite fast; the code path is the same).
fn key_pair() -> GeneratedKeyPair {
    generate_key_pair(
        2048,
        "",
        jiff::Timestamp::now(),
        jiff::SignedDuration::from_hours(24),
    )
    .expect("key generation")
}

fn key_secret(namespace: &str, name: &str, pair: &GeneratedKeyPair) -> String {
    key_secret_json(namespace, name, pair).to_string()
}

fn cert_file(dir: &Path, name: &str, cert_pem: &str) -> std::path::PathBuf {
    let sub = dir.join(name);
    std::fs::create_dir_all(&sub).expect("cannot create a folder");
    write_cert(&sub, cert_pem)
}

fn secret_exists(cluster: &Cluster, namespace: &str, name: &str) -> Result<bool, String> {
    Ok(get_object(cluster, "secrets", namespace, name)?.is_some())
}

fn delete(cluster: &Cluster, kind: &str, namespace: &str, name: &str) {
    kubectl_ok(
        cluster,
        &["delete", kind, name, "-n", namespace, "--wait=false"],
    );
}

/// Seals `data` for `namespace/name` with the key behind `cert` and applies it.
fn apply_sealed(
    cluster: &Cluster,
    cert: &Path,
    namespace: &str,
    name: &str,
    data: &BTreeMap<String, Vec<u8>>,
) {
    apply_yaml(cluster, &seal(cluster, cert, namespace, name, data, "yaml"));
}

/// The controller's `condition_info` series for `name`, if any.
fn has_condition_series(controller: &Controller, name: &str) -> Result<bool, String> {
    let reply = controller.get_metrics("/metrics")?;
    let text = reply.text();
    Ok(text
        .lines()
        .any(|l| l.contains("condition_info{") && l.contains(&format!("name=\"{name}\""))))
}

/// POST a SealedSecret to `/v1/verify`: whether the controller's keys open it.
fn verifies(controller: &Controller, sealed_yaml: &str) -> bool {
    let value: serde_json::Value =
        serde_saphyr::from_str(sealed_yaml).expect("kubeseal printed YAML");
    let body = value.to_string();
    for _ in 0..10 {
        let reply = controller
            .post("/v1/verify", "application/json", body.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        match reply.status {
            200 => return true,
            429 | 503 => thread::sleep(Duration::from_secs(1)),
            _ => return false,
        }
    }
    panic!("/v1/verify kept refusing to answer");
}

/// Two replicas with leader election on fresh namespaces: `a` leads (it started first and
/// holds the Lease), `b` stands by; `cert` is the sealing certificate, in `dir`.
struct Pair {
    keys: String,
    app: String,
    a: Controller,
    b: Controller,
    cert: std::path::PathBuf,
    dir: tempfile::TempDir,
}

fn leader_and_standby(cluster: &Cluster) -> Pair {
    let keys = create_namespace(cluster, &unique_name("keys"));
    let app = create_namespace(cluster, &unique_name("app"));
    let mut args = restrict_to(&[&app]);
    args.extend([
        "--leader-elect=true".to_string(),
        "--key-size=2048".to_string(),
    ]);
    let start = |id: &str| {
        let mut all = args.clone();
        all.push(format!("--leader-elect-id={id}"));
        Controller::start_named(cluster, id, &keys, &as_strs(&all))
    };
    let a = start("replica-a");
    wait_for("replica-a to lead", WAIT, || {
        match lease_holder(cluster, &keys)?.as_str() {
            "replica-a" => Ok(()),
            other => Err(format!("holder {other}")),
        }
    });
    let b = start("replica-b");
    wait_for_keys(cluster, &keys, 1);
    let dir = tempdir();
    let cert = write_cert(dir.path(), &sealing_cert(&b));
    Pair {
        keys,
        app,
        a,
        b,
        cert,
        dir,
    }
}

// ---------------------------------------------------------------------------------------------

#[test]
fn the_controller_keeps_working_across_an_api_server_restart() {
    let _serial = serial();
    let Some(mut cluster) = own_cluster() else {
        return;
    };
    let keys = create_namespace(&cluster, &unique_name("keys"));
    let app = create_namespace(&cluster, &unique_name("app"));
    let controller = Controller::start(&cluster, &keys, &as_strs(&restrict_to(&[&app])));
    let dir = tempdir();
    let cert = write_cert(dir.path(), &sealing_cert(&controller));
    let before = sample_data("before");
    apply_sealed(&cluster, &cert, &app, "before", &before);
    wait_unsealed(&cluster, &app, "before", &before);

    // Down for a few seconds, with the same etcd: every connection of the controller breaks.
    cluster.stop_apiserver();
    thread::sleep(Duration::from_secs(3));
    cluster.start_apiserver();

    let after = sample_data("after");
    apply_sealed(&cluster, &cert, &app, "after", &after);
    wait_unsealed(&cluster, &app, "after", &after);
    // And the watch on Secrets came back too: a deleted Secret is re-created.
    delete(&cluster, "secret", &app, "before");
    wait_unsealed(&cluster, &app, "before", &before);
    drop(controller);
}

#[test]
fn a_relist_after_a_watch_gap_handles_what_changed_meanwhile() {
    let _serial = serial();
    let Some(mut cluster) = own_cluster() else {
        return;
    };
    let keys = create_namespace(&cluster, &unique_name("keys"));
    let app = create_namespace(&cluster, &unique_name("app"));
    let mut args = restrict_to(&[&app]);
    args.push("--old-gc-behavior=true".into());
    let mut controller = Controller::start(&cluster, &keys, &as_strs(&args));
    let dir = tempdir();
    let cert = write_cert(dir.path(), &sealing_cert(&controller));

    // Key A: present before the gap, deleted during it.
    let key_a = key_pair();
    apply_yaml(&cluster, &key_secret(&keys, "extra-key-a", &key_a));
    let cert_a = cert_file(dir.path(), "a", &key_a.cert_pem);
    let probe_a = seal(
        &cluster,
        &cert_a,
        &app,
        "probe-a",
        &sample_data("a"),
        "yaml",
    );
    controller.wait_for("key A to be in use", WAIT, || {
        if verifies(&controller, &probe_a) {
            Ok(())
        } else {
            Err("key A does not open its probe yet".to_string())
        }
    });

    let (lost, gone, kept) = (
        sample_data("lost"),
        sample_data("gone"),
        sample_data("kept"),
    );
    apply_sealed(&cluster, &cert, &app, "lost", &lost);
    apply_sealed(&cluster, &cert, &app, "gone", &gone);
    apply_sealed(&cluster, &cert, &app, "kept", &kept);
    for (name, data) in [("lost", &lost), ("gone", &gone), ("kept", &kept)] {
        wait_unsealed(&cluster, &app, name, data);
    }
    controller.wait_for("the metric series of `gone`", WAIT, || {
        has_condition_series(&controller, "gone")?
            .then_some(())
            .ok_or_else(|| "no series yet".to_string())
    });

    // The gap: the controller is frozen while the API server restarts, things change, and
    // etcd forgets the history, so no watch can resume where it stopped.
    controller.signal(libc::SIGSTOP);
    cluster.restart_apiserver();
    delete(&cluster, "secret", &app, "lost");
    delete(&cluster, "sealedsecret", &app, "gone");
    delete(&cluster, "secret", &keys, "extra-key-a");
    let key_b = key_pair();
    apply_yaml(&cluster, &key_secret(&keys, "extra-key-b", &key_b));
    let cert_b = cert_file(dir.path(), "b", &key_b.cert_pem);
    let late = sample_data("late");
    apply_sealed(&cluster, &cert_b, &app, "late", &late);
    wait_for(
        "the Secret of `lost` to be gone",
        WAIT,
        || match secret_exists(&cluster, &app, "lost")? {
            false => Ok(()),
            true => Err("still there".to_string()),
        },
    );
    let revision = cluster.compact_etcd().unwrap_or_else(|e| panic!("{e}"));
    eprintln!("faults: etcd compacted to revision {revision}; thawing the controller");
    let thawed = Instant::now();
    controller.signal(libc::SIGCONT);

    // Deleted Secret: re-created. Deleted SealedSecret: its Secret goes (--old-gc-behavior)
    // and its metric series too. Key added: used. Key deleted: no longer used.
    wait_unsealed(&cluster, &app, "lost", &lost);
    eprintln!(
        "faults: Secret deleted during the gap re-created {:?} after the thaw",
        thawed.elapsed()
    );
    controller.wait_for("the Secret of the deleted SealedSecret to go", WAIT, || {
        match secret_exists(&cluster, &app, "gone")? {
            false => Ok(()),
            true => Err("Secret `gone` still exists".to_string()),
        }
    });
    controller.wait_for(
        "the metric series of `gone` to go",
        WAIT,
        || match has_condition_series(&controller, "gone")? {
            false => Ok(()),
            true => Err("series still exported".to_string()),
        },
    );
    wait_unsealed(&cluster, &app, "late", &late);
    controller.wait_for("key A to be dropped", WAIT, || {
        if verifies(&controller, &probe_a) {
            Err("key A still opens its probe".to_string())
        } else {
            Ok(())
        }
    });
    wait_unsealed(&cluster, &app, "kept", &kept);
    assert!(
        controller
            .log()
            .contains("Secrets deleted while the watch was down"),
        "the relist gap was not what re-created the Secret:\n{}",
        controller.log()
    );
}

#[test]
fn a_key_that_arrives_late_unseals_what_waited_for_it() {
    let _serial = serial();
    let Some(cluster) = own_cluster() else {
        return;
    };
    let keys = create_namespace(&cluster, &unique_name("keys"));
    let app = create_namespace(&cluster, &unique_name("app"));
    let controller = Controller::start(&cluster, &keys, &as_strs(&restrict_to(&[&app])));
    wait_for_keys(&cluster, &keys, 1);
    let dir = tempdir();
    let late_key = key_pair();
    let cert = cert_file(dir.path(), "late", &late_key.cert_pem);
    let data = sample_data("late-key");
    apply_sealed(&cluster, &cert, &app, "waits", &data);
    controller.wait_for("the SealedSecret to fail for want of a key", WAIT, || {
        let sealed = get_object(&cluster, "sealedsecrets.bitnami.com", &app, "waits")?
            .ok_or("no SealedSecret")?;
        let message = sealed["status"]["conditions"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if message.contains("no key could decrypt") {
            Ok(())
        } else {
            Err(format!("status {}", sealed["status"]))
        }
    });
    // Longer than every quick retry (5 retries, backoff ceilings 0.1 + 0.2 + ... + 1.6 s).
    thread::sleep(Duration::from_secs(8));
    assert!(!secret_exists(&cluster, &app, "waits").unwrap_or_else(|e| panic!("{e}")));

    apply_yaml(&cluster, &key_secret(&keys, "late-key", &late_key));
    let added = Instant::now();
    let within = Duration::from_secs(10);
    wait_for(
        "the late key to unseal the waiting SealedSecret",
        within,
        || {
            secret_exists(&cluster, &app, "waits")?
                .then_some(())
                .ok_or_else(|| "no Secret yet".to_string())
        },
    );
    eprintln!(
        "faults: late key unsealed its SealedSecret {:?} after it was added",
        added.elapsed()
    );
    wait_unsealed(&cluster, &app, "waits", &data);
    drop(controller);
}

#[test]
fn sigkill_during_key_renewal_leaves_exactly_one_new_key() {
    let _serial = serial();
    let Some(cluster) = own_cluster() else {
        return;
    };
    let keys = create_namespace(&cluster, &unique_name("keys"));
    let app = create_namespace(&cluster, &unique_name("app"));
    // Renewal is due 25 s after the first key; 4096-bit generation takes long enough to be
    // killed in the middle of it.
    let period = 25u64;
    let mut args = restrict_to(&[&app]);
    args.extend([
        format!("--key-renew-period={period}s"),
        "--key-size=4096".to_string(),
    ]);
    let mut first = Controller::start_named(&cluster, "first", &keys, &as_strs(&args));
    let initial = wait_for_keys(&cluster, &keys, 1);
    assert_eq!(initial.len(), 1);
    let initial_name = key_name(&initial[0]);
    let generating = |c: &Controller| c.log().matches("generating a new sealing key").count();
    first.wait_for(
        "the renewal to start",
        Duration::from_secs(period + 60),
        || {
            if generating(&first) >= 2 {
                Ok(())
            } else {
                Err("renewal not started".to_string())
            }
        },
    );
    first.kill();
    let after_kill = key_secrets(&cluster, &keys).unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "faults: killed during renewal; {} key Secret(s) at that moment",
        after_kill.len()
    );

    let second = Controller::start_named(&cluster, "second", &keys, &as_strs(&args));
    let renewed = wait_for_keys(&cluster, &keys, 2);
    // Settle, still well before the next renewal would be due.
    thread::sleep(Duration::from_secs(6));
    let settled = key_secrets(&cluster, &keys).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<String> = settled.iter().map(key_name).collect();
    assert_eq!(
        settled.len(),
        2,
        "exactly one new key after the kill: {names:?}\n{}",
        second.log()
    );
    assert!(names.contains(&initial_name));
    assert!(renewed.len() <= 2);
    drop(second);
}

#[test]
fn a_frozen_leader_is_replaced_and_writes_nothing_after_it_thaws() {
    let _serial = serial();
    let Some(cluster) = own_cluster() else {
        return;
    };
    let Pair {
        keys,
        app,
        mut a,
        b,
        cert,
        dir: _dir,
    } = leader_and_standby(&cluster);

    a.signal(libc::SIGSTOP);
    let frozen = Instant::now();
    let takeover = wait_for("replica-b to take over", WAIT, || {
        match lease_holder(&cluster, &keys)?.as_str() {
            "replica-b" => Ok(frozen.elapsed()),
            other => Err(format!("holder {other}")),
        }
    });
    eprintln!("faults: takeover {takeover:?} after the leader froze (lease 15 s + renew 2 s)");
    assert!(
        takeover >= Duration::from_secs(12),
        "took a live lease: {takeover:?}"
    );

    let data = sample_data("after-takeover");
    apply_sealed(&cluster, &cert, &app, "after-takeover", &data);
    wait_unsealed(&cluster, &app, "after-takeover", &data);

    // Thawed: replica-a must step down without writing anything.
    let log_before = a.log().len();
    a.signal(libc::SIGCONT);
    wait_for("the thawed replica to step down", WAIT, || {
        if a.log()[log_before..].contains("stepping down") || a.exit_status().is_some() {
            Ok(())
        } else {
            Err("still running as leader".to_string())
        }
    });
    let more = sample_data("while-thawed");
    apply_sealed(&cluster, &cert, &app, "while-thawed", &more);
    wait_unsealed(&cluster, &app, "while-thawed", &more);
    thread::sleep(Duration::from_secs(2));
    let after = &a.log()[log_before..];
    assert!(
        !after.contains("Updating") && !after.contains("New key written"),
        "the thawed replica wrote:\n{after}"
    );
    assert_eq!(lease_holder(&cluster, &keys).as_deref(), Ok("replica-b"));
    assert_eq!(key_secrets(&cluster, &keys).map(|k| k.len()), Ok(1));
    drop(b);
}

#[test]
fn sigterm_hands_the_lease_over() {
    let _serial = serial();
    let Some(cluster) = own_cluster() else {
        return;
    };
    let Pair {
        keys,
        app,
        mut a,
        b,
        cert,
        dir: _dir,
    } = leader_and_standby(&cluster);
    thread::sleep(Duration::from_secs(2));

    let terminated = Instant::now();
    a.signal(libc::SIGTERM);
    let handover = wait_for(
        "replica-b to take over after SIGTERM",
        WAIT,
        || match lease_holder(&cluster, &keys)?.as_str() {
            "replica-b" => Ok(terminated.elapsed()),
            other => Err(format!("holder {other}")),
        },
    );
    eprintln!("faults: SIGTERM handover took {handover:?}");
    assert!(
        handover < Duration::from_secs(10),
        "the lease was not released: {handover:?}"
    );
    wait_for("replica-a to exit", Duration::from_secs(15), || {
        a.exit_status().ok_or_else(|| "still running".to_string())
    });
    assert!(a.log().contains("released the leader lease"), "{}", a.log());
    let data = sample_data("handed-over");
    apply_sealed(&cluster, &cert, &app, "handed-over", &data);
    wait_unsealed(&cluster, &app, "handed-over", &data);
    // Nobody took it back.
    assert_eq!(lease_holder(&cluster, &keys).as_deref(), Ok("replica-b"));
    drop(b);
}
