//! A restart costs nothing and blocks nothing, on a real control plane: with a few hundred
//! SealedSecrets already unsealed, the controller is stopped, three things change while it is
//! away (a Secret edited by hand, a SealedSecret changed, a SealedSecret created), it starts
//! again and another SealedSecret is created at once. Then:
//!
//! - no Secret of an unchanged SealedSecret is rewritten (same resourceVersion) and none of
//!   them is decrypted (`decryptions_total` counts exactly the objects that changed);
//! - the hand edit is put back, the changed and the new SealedSecrets are unsealed;
//! - what changed while the controller was away is handled before the backlog of unchanged
//!   objects ends (its log says so, and `backlog_objects` returns to 0).
//!
//! Sized for CI: `SEALED_SECRETS_RESTART_OBJECTS` (default 300) SealedSecrets of three items.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use sealed_secrets_e2e::{
    Assets, Cluster, Controller, SEALED_SECRET_CRD,
    api::{apply_object, list_by_name, seal_all, sealed_secrets_path, secrets_path},
    create_namespace, private_cluster,
    sealing::{lease_holder, sealing_cert, wait_for_cert},
    secret_data, unique_name,
};

/// One test at a time: each runs a control plane of its own and the figures they print should
/// not be skewed by the other.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn object_count() -> usize {
    std::env::var("SEALED_SECRETS_RESTART_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// What each test starts from.
struct Setup {
    cluster: Cluster,
    _serial: std::sync::MutexGuard<'static, ()>,
    count: usize,
    namespace: String,
    key_namespace: String,
}

/// A cluster of the test's own with the CRD, the serial lock, and an app and a key namespace
/// named after `prefix`; `None` (skipped, with the one line) without the control plane.
fn setup(prefix: &str) -> Option<Setup> {
    let cluster = private_cluster(
        Assets::from_env(),
        &[("bitnami.com_sealedsecrets.yaml", SEALED_SECRET_CRD)],
    )?;
    let _serial = serial();
    let namespace = unique_name(prefix);
    let key_namespace = unique_name(&format!("{prefix}-keys"));
    create_namespace(&cluster, &namespace);
    create_namespace(&cluster, &key_namespace);
    Some(Setup {
        cluster,
        _serial,
        count: object_count(),
        namespace,
        key_namespace,
    })
}

/// Applies the first `names.len()` of `sealed` under `names` and waits (through `controller`'s
/// log on failure) until every one is unsealed and Synced; returns the Secrets by name.
fn apply_and_wait(
    cluster: &Cluster,
    controller: &Controller,
    namespace: &str,
    names: &[String],
    sealed: &[Value],
) -> BTreeMap<String, Value> {
    let started = Instant::now();
    for (name, object) in names.iter().zip(sealed) {
        apply_object(cluster, &sealed_secrets_path(namespace, Some(name)), object);
    }
    let (secrets_at, sealed_at) = (
        secrets_path(namespace, None),
        sealed_secrets_path(namespace, None),
    );
    let secrets = controller.wait_for(
        "every Secret unsealed",
        wait_scaled(180, names.len() / 20),
        || {
            let secrets = list_by_name(cluster, &secrets_at)?;
            let objects = list_by_name(cluster, &sealed_at)?;
            let missing = names
                .iter()
                .filter(|n| {
                    let unsealed = secrets.get(*n).is_some_and(|s| holds(s, n, "v1"));
                    let synced = objects
                        .get(*n)
                        .is_some_and(|o| sealed_secrets_e2e::sealing::check_synced(o).is_ok());
                    !(unsealed && synced)
                })
                .count();
            if missing == 0 {
                Ok(secrets)
            } else {
                Err(format!("{missing} not unsealed and synced yet"))
            }
        },
    );
    eprintln!(
        "restart: {} SealedSecrets of 3 items unsealed in {:.1} s (CPU {:?} s, peak RSS {:?} MB)",
        names.len(),
        started.elapsed().as_secs_f64(),
        cpu_seconds(controller.pid()),
        peak_rss_mb(controller.pid()),
    );
    secrets
}

fn items(name: &str, tag: &str) -> Value {
    json!({
        "username": format!("{name}-user"),
        "password": format!("{name}-{tag}-password"),
        "token": format!("{name}-{tag}-token"),
    })
}

fn secret(namespace: &str, name: &str, tag: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": items(name, tag),
    })
}

/// Whether `secret` holds the items of `name` at `tag`.
fn holds(secret: &Value, name: &str, tag: &str) -> bool {
    let Ok(data) = secret_data(secret) else {
        return false;
    };
    let want = items(name, tag);
    want.as_object().is_some_and(|items| {
        items
            .iter()
            .all(|(k, v)| data.get(k).map(Vec::as_slice) == v.as_str().map(str::as_bytes))
            && data.len() == items.len()
    })
}

fn metric(controller: &Controller, name: &str) -> Option<f64> {
    let text = controller.get_metrics("/metrics").ok()?.text();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

/// The larger of `base` and `scaled` seconds: waits grow with the number of objects.
fn wait_scaled(base: usize, scaled: usize) -> Duration {
    Duration::from_secs(base.max(scaled) as u64)
}

/// CPU seconds (user + system) the process `pid` has used so far (Linux).
fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (per_second > 0).then(|| ticks / per_second as f64)
}

/// Peak resident memory of `pid` in MB (Linux).
fn peak_rss_mb(pid: Option<u32>) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<f64>().ok()? / 1024.0)
}

/// How long after `since` the Secret `name` holds its `v1` items, polling that one Secret
/// every 20 ms (listing every Secret would measure the listing); panics after 90 s.
fn time_until_unsealed(cluster: &Cluster, namespace: &str, name: &str, since: Instant) -> Duration {
    let path = secrets_path(namespace, Some(name));
    loop {
        if let Ok(reply) = cluster.get(&path)
            && reply.status == 200
            && serde_json::from_slice::<Value>(&reply.body).is_ok_and(|s| holds(&s, name, "v1"))
        {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(90),
            "Secret {namespace}/{name} not unsealed after 90 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The index of the first log line containing all of `parts`.
fn log_position(log: &str, parts: &[&str]) -> Option<usize> {
    log.lines()
        .position(|l| parts.iter().all(|p| l.contains(p)))
}

#[test]
fn a_restart_rewrites_and_decrypts_nothing_unchanged_and_serves_changes_first() {
    let Some(Setup {
        cluster,
        _serial,
        count,
        namespace,
        key_namespace,
    }) = setup("restart")
    else {
        return;
    };
    let mut first = Controller::start(&cluster, &key_namespace, &[]);
    let dir = tempfile::tempdir().expect("temporary folder");
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, sealing_cert(&first)).expect("cannot write cert.pem");

    let names: Vec<String> = (0..count).map(|i| format!("s{i}")).collect();
    let mut plain: Vec<Value> = names.iter().map(|n| secret(&namespace, n, "v1")).collect();
    plain.push(secret(&namespace, "s1", "v2"));
    plain.push(secret(&namespace, "while-away", "v1"));
    plain.push(secret(&namespace, "after-start", "v1"));
    let sealed = seal_all(&cluster, &cert, &plain);
    let before = apply_and_wait(&cluster, &first, &namespace, &names, &sealed);
    let secrets_at = secrets_path(&namespace, None);
    first.stop();

    // While the controller is away.
    let edited = &names[0];
    let mut hand_edit = before[edited].clone();
    hand_edit["data"]["password"] = Value::from("aGFuZC1lZGl0ZWQ="); // "hand-edited"
    if let Some(meta) = hand_edit["metadata"].as_object_mut() {
        meta.remove("managedFields");
    }
    let reply = cluster
        .request(
            "PUT",
            &secrets_path(&namespace, Some(edited)),
            "application/json",
            hand_edit.to_string().as_bytes(),
        )
        .expect("PUT Secret");
    assert_eq!(reply.status, 200, "hand edit: {}", reply.text());
    apply_object(
        &cluster,
        &sealed_secrets_path(&namespace, Some("s1")),
        &sealed[count],
    );
    apply_object(
        &cluster,
        &sealed_secrets_path(&namespace, Some("while-away")),
        &sealed[count + 1],
    );
    let after_edit = list_by_name(&cluster, &secrets_at).expect("list Secrets");

    let second = Controller::start(&cluster, &key_namespace, &[]);
    let ready = Instant::now();
    apply_object(
        &cluster,
        &sealed_secrets_path(&namespace, Some("after-start")),
        &sealed[count + 2],
    );
    let fresh_after = time_until_unsealed(&cluster, &namespace, "after-start", ready);
    let secrets = second.wait_for(
        "the changes made while away to be handled",
        wait_scaled(60, count / 100),
        || {
            let secrets = list_by_name(&cluster, &secrets_at)?;
            let ok = |name: &str, tag: &str| secrets.get(name).is_some_and(|s| holds(s, name, tag));
            if ok(edited, "v1") && ok("s1", "v2") && ok("while-away", "v1") {
                Ok(secrets)
            } else {
                Err("not yet".into())
            }
        },
    );
    let backlog_done =
        second.wait_for("the backlog to drain", wait_scaled(60, count / 100), || {
            (metric(&second, "sealed_secrets_controller_backlog_objects") == Some(0.0)
                && second.log().contains("backlog done"))
            .then(|| ready.elapsed())
            .ok_or_else(|| "backlog not done".to_string())
        });
    // Idle once the backlog is done: the CPU and memory a restart cost.
    let restart_cpu = cpu_seconds(second.pid());
    let restart_peak = peak_rss_mb(second.pid());
    let log = second.log();
    let decryptions = metric(&second, "sealed_secrets_controller_decryptions_total");
    let verified = metric(
        &second,
        "sealed_secrets_controller_unchanged_verified_total",
    );
    let rewritten: Vec<&String> = names
        .iter()
        .filter(|n| *n != edited && n.as_str() != "s1")
        .filter(|n| {
            secrets[*n]["metadata"]["resourceVersion"]
                != after_edit[*n]["metadata"]["resourceVersion"]
        })
        .collect();
    eprintln!(
        "restart summary: {count} SealedSecrets; new SealedSecret unsealed {:.2} s after the \
         controller was ready; backlog drained after {:.2} s; CPU until then {}; peak RSS {}; \
         {} Secrets rewritten; decryptions {decryptions:?}, verified unchanged {verified:?}",
        fresh_after.as_secs_f64(),
        backlog_done.as_secs_f64(),
        restart_cpu.map_or("?".into(), |c| format!("{c:.2} s")),
        restart_peak.map_or("?".into(), |m| format!("{m:.1} MB")),
        rewritten.len(),
    );
    assert!(
        rewritten.is_empty(),
        "Secrets of unchanged SealedSecrets rewritten: {rewritten:?}"
    );
    // The hand-edited Secret, the changed, the created-while-away and the created-after-start
    // SealedSecrets: four decryptions, nothing else.
    // (A write that loses a race is decrypted again on its retry: a little slack for that.)
    assert!(
        decryptions.is_some_and(|d| (4.0..=6.0).contains(&d)),
        "decryptions: {decryptions:?}"
    );
    assert!(
        verified.is_some_and(|v| v >= (count - 2) as f64),
        "verified unchanged: {verified:?}"
    );
    let done = log_position(&log, &["backlog done"]).expect("a backlog-done line");
    for changed in ["name=s1", "name=while-away"] {
        let handled = log_position(&log, &["Updating", changed])
            .unwrap_or_else(|| panic!("no pass of {changed}"));
        assert!(
            handled < done,
            "{changed} changed while away waited for the backlog:\n{log}"
        );
    }
    assert!(log.contains("backlog started"), "progress is logged");
}

#[test]
fn a_standby_takes_over_warm_and_serves_a_new_sealed_secret_first() {
    let Some(Setup {
        cluster,
        _serial,
        count,
        namespace,
        key_namespace,
    }) = setup("failover")
    else {
        return;
    };
    let replica = |id: &str| {
        Controller::start_named(
            &cluster,
            id,
            &key_namespace,
            &["--leader-elect=true", &format!("--leader-elect-id={id}")],
        )
    };
    let mut replicas = [replica("replica-a"), replica("replica-b")];
    let holder = replicas[0].wait_for("a leader", Duration::from_secs(60), || {
        let holder = lease_holder(&cluster, &key_namespace)?;
        replicas
            .iter()
            .position(|r| r.name() == holder)
            .ok_or_else(|| format!("holder {holder:?}"))
    });
    let cert_pem = sealing_cert(&replicas[holder]);
    wait_for_cert(&replicas[1 - holder], &cert_pem);
    let dir = tempfile::tempdir().expect("temporary folder");
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, &cert_pem).expect("cannot write cert.pem");

    let names: Vec<String> = (0..count).map(|i| format!("s{i}")).collect();
    let mut plain: Vec<Value> = names.iter().map(|n| secret(&namespace, n, "v1")).collect();
    plain.push(secret(&namespace, "after-failover", "v1"));
    let sealed = seal_all(&cluster, &cert, &plain);
    let before = apply_and_wait(&cluster, &replicas[holder], &namespace, &names, &sealed);

    let survivor = 1 - holder;
    let survivor_name = replicas[survivor].name().to_string();
    replicas[holder].kill();
    let killed = Instant::now();
    let killed_at = jiff::Timestamp::now();
    apply_object(
        &cluster,
        &sealed_secrets_path(&namespace, Some("after-failover")),
        &sealed[count],
    );
    let survivor_ref = &replicas[survivor];
    let secrets_at = secrets_path(&namespace, None);
    let unsealed = time_until_unsealed(&cluster, &namespace, "after-failover", killed);
    let took_over = log_time_after(&survivor_ref.log(), "became leader");
    let backlog_done = survivor_ref.wait_for(
        "the survivor's backlog to drain",
        wait_scaled(60, count / 100),
        || {
            (metric(survivor_ref, "sealed_secrets_controller_backlog_objects") == Some(0.0)
                && survivor_ref.log().contains("backlog done"))
            .then(|| killed.elapsed())
            .ok_or_else(|| "backlog not done".to_string())
        },
    );
    let log = survivor_ref.log();
    let decryptions = metric(survivor_ref, "sealed_secrets_controller_decryptions_total");
    let after = list_by_name(&cluster, &secrets_at).expect("list Secrets");
    let rewritten = names
        .iter()
        .filter(|n| {
            after[*n]["metadata"]["resourceVersion"] != before[*n]["metadata"]["resourceVersion"]
        })
        .count();
    eprintln!(
        "failover summary: {count} SealedSecrets; leader SIGKILLed; the new SealedSecret unsealed \
         {:.2} s after the kill{}; backlog drained {:.2} s after the kill; {rewritten} Secrets \
         rewritten; decryptions {decryptions:?}; survivor CPU {:?} s, peak RSS {:?} MB",
        unsealed.as_secs_f64(),
        took_over
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map_or(String::new(), |t| format!(
                ", {:.2} s after the survivor took the Lease over ({:.2} s after the kill)",
                unsealed.as_secs_f64() - t.duration_since(killed_at).as_secs_f64(),
                t.duration_since(killed_at).as_secs_f64()
            )),
        backlog_done.as_secs_f64(),
        cpu_seconds(survivor_ref.pid()),
        peak_rss_mb(survivor_ref.pid()),
    );
    for line in log.lines().filter(|l| {
        l.contains("became leader")
            || l.contains("after-failover")
            || l.contains("backlog started")
            || l.contains("backlog done")
    }) {
        eprintln!("failover log: {line}");
    }
    assert!(
        lease_holder(&cluster, &key_namespace).is_ok_and(|h| h == survivor_name),
        "the survivor holds the Lease"
    );
    assert_eq!(rewritten, 0, "Secrets rewritten by the takeover");
    assert!(
        decryptions.is_some_and(|d| (1.0..=2.0).contains(&d)),
        "only the new SealedSecret is decrypted: {decryptions:?}"
    );
    let done = log_position(&log, &["backlog done"]).expect("a backlog-done line");
    let handled = log_position(&log, &["Updating", "name=after-failover"]).expect("its pass");
    assert!(
        handled < done,
        "the new SealedSecret waited for the backlog:\n{log}"
    );
}

/// The timestamp of the first log line containing `text`.
fn log_time_after(log: &str, text: &str) -> Option<String> {
    log.lines()
        .find(|l| l.contains(text))
        .and_then(|l| l.split_whitespace().next())
        .map(str::to_string)
}
