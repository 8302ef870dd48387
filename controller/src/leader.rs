//! Lease-based leader election (`coordination.k8s.io/v1`), for running several replicas.
//!
//! Only the leader reconciles and generates keys; every replica serves the HTTP API from the
//! shared key set. The rules are client-go's, chosen so that two replicas never write at once
//! even when clocks disagree, calls hang or a process is frozen:
//!
//! - **Expiry is judged on our own monotonic clock.** A candidate never compares the holder's
//!   `renewTime` with its wall clock (a skewed clock would hand a live lease away). It
//!   remembers when it last saw the Lease *change*, and takes it over only once the Lease has
//!   stayed unchanged for `leaseDurationSeconds` as measured locally.
//! - **The leader's claim ends before anyone may take over.** A renewal counts from the
//!   moment its request was sent; the leader holds for [`RENEW_DEADLINE`] after its last
//!   successful renewal, which is shorter than [`LEASE_DURATION`], the time a candidate waits
//!   after seeing that renewal. Every renewal call is bounded so it ends before the deadline.
//!   [`Leadership::holds`] answers from the same clock, so the reconcilers and the key
//!   renewal stop writing once the deadline passes, even if this task never ran meanwhile (a
//!   frozen process wakes up with an expired claim and steps down without writing).
//! - **Writes are compare-and-swap.** Every update carries the resourceVersion it read, so two
//!   candidates can never both win.
//! - **Shutdown hands over.** On SIGTERM the caller stops the workers, waits for them, stops
//!   this loop (so it cannot re-acquire) and then [`release`]s the Lease: an empty holder,
//!   which any candidate takes at its next poll.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
};
use kube::{Api, Client, api::PostParams};
use tokio::{sync::watch, time::Instant};

/// How long a lease is valid without renewal (what candidates wait).
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How long the leader may go without a successful renewal before it stops writing.
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// How often the leader renews.
pub const RENEW_INTERVAL: Duration = Duration::from_secs(2);
/// How often a candidate looks at the Lease (short, so a released Lease is taken quickly).
pub const CANDIDATE_INTERVAL: Duration = Duration::from_secs(1);
/// Upper bound of one read-and-write round of a candidate.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether this replica may write, shared by everything that writes.
#[derive(Debug, Clone)]
pub struct Leadership {
    inner: Arc<LeadershipState>,
}

#[derive(Debug)]
struct LeadershipState {
    /// Without election every replica leads.
    elected: bool,
    /// Start of the last successful renewal.
    renewed: Mutex<Option<Instant>>,
    /// Set once leadership was lost; never cleared (the process exits).
    lost: AtomicBool,
    /// `true` while leading; turns false once, when leadership is lost.
    leading: watch::Sender<bool>,
}

impl Leadership {
    /// Leadership of a replica that runs alone (`--leader-elect=false`): always held.
    pub fn always() -> Self {
        Self::new(false, true)
    }

    /// Leadership decided by [`run`]: not held until won.
    pub fn elected() -> Self {
        Self::new(true, false)
    }

    fn new(elected: bool, leading: bool) -> Self {
        Self {
            inner: Arc::new(LeadershipState {
                elected,
                renewed: Mutex::new(None),
                lost: AtomicBool::new(false),
                leading: watch::channel(leading).0,
            }),
        }
    }

    /// Whether this replica may write now: it won the Lease and its last renewal started less
    /// than [`RENEW_DEADLINE`] ago.
    pub fn holds(&self) -> bool {
        if !self.inner.elected {
            return true;
        }
        if self.inner.lost.load(Ordering::SeqCst) {
            return false;
        }
        self.inner
            .renewed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|at| at.elapsed() < RENEW_DEADLINE)
    }

    /// A receiver that is `true` while leading.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.inner.leading.subscribe()
    }

    /// Resolves once leadership is won (at once without election).
    pub async fn won(&self) {
        let mut rx = self.subscribe();
        let _ = rx.wait_for(|l| *l).await;
    }

    /// Resolves once leadership is lost (never without election).
    pub async fn lost(&self) {
        let mut rx = self.subscribe();
        if rx.wait_for(|l| *l).await.is_err() {
            return;
        }
        let _ = rx.wait_for(|l| !*l).await;
    }

    fn renewed(&self, started: Instant) {
        *self.inner.renewed.lock().unwrap_or_else(|e| e.into_inner()) = Some(started);
        if !self.inner.lost.load(Ordering::SeqCst) {
            self.inner
                .leading
                .send_if_modified(|l| !std::mem::replace(l, true));
        }
    }

    fn lose(&self) {
        self.inner.lost.store(true, Ordering::SeqCst);
        self.inner.leading.send_replace(false);
    }

    fn is_leading(&self) -> bool {
        *self.inner.leading.borrow()
    }
}

/// What a candidate should do with the lease it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseDecision {
    /// No lease yet: create it with us as holder.
    Create,
    /// We hold it: renew.
    Renew,
    /// Someone else's lease expired (or was released): take it over.
    TakeOver,
    /// Someone else holds a live lease.
    Wait,
}

/// Decides from the current lease and how long it has stayed unchanged as seen on our own
/// monotonic clock (pure; no wall clock involved).
pub fn decide(lease: Option<&LeaseSpec>, identity: &str, unchanged_for: Duration) -> LeaseDecision {
    let Some(spec) = lease else {
        return LeaseDecision::Create;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder == identity {
        return LeaseDecision::Renew;
    }
    if holder.is_empty() {
        return LeaseDecision::TakeOver;
    }
    let seconds = u64::try_from(spec.lease_duration_seconds.unwrap_or(15)).unwrap_or(0);
    if unchanged_for >= Duration::from_secs(seconds) {
        LeaseDecision::TakeOver
    } else {
        LeaseDecision::Wait
    }
}

/// The part of a Lease whose change shows that its holder is alive.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    holder: Option<String>,
    renew_time: Option<String>,
    acquire_time: Option<String>,
    duration: Option<i32>,
    transitions: Option<i32>,
}

impl Record {
    fn of(spec: &LeaseSpec) -> Self {
        let text = |t: &Option<MicroTime>| t.as_ref().map(|t| t.0.to_string());
        Self {
            holder: spec.holder_identity.clone(),
            renew_time: text(&spec.renew_time),
            acquire_time: text(&spec.acquire_time),
            duration: spec.lease_duration_seconds,
            transitions: spec.lease_transitions,
        }
    }
}

/// When we first saw the Lease as it is now (client-go's observed record and time).
#[derive(Debug, Default)]
pub struct Observer {
    last: Option<(Record, Instant)>,
}

impl Observer {
    /// How long `spec` has stayed unchanged, as seen by us (zero when it just changed).
    fn unchanged_for(&mut self, spec: &LeaseSpec, now: Instant) -> Duration {
        let record = Record::of(spec);
        match &self.last {
            Some((seen, since)) if *seen == record => now.saturating_duration_since(*since),
            _ => {
                self.last = Some((record, now));
                Duration::ZERO
            }
        }
    }
}

fn our_spec(
    previous: Option<&LeaseSpec>,
    identity: &str,
    now: jiff::Timestamp,
    acquiring: bool,
) -> LeaseSpec {
    let transitions = previous.and_then(|s| s.lease_transitions).unwrap_or(0);
    LeaseSpec {
        holder_identity: Some(identity.to_string()),
        lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
        acquire_time: if acquiring {
            Some(MicroTime(now))
        } else {
            previous
                .and_then(|s| s.acquire_time.clone())
                .or(Some(MicroTime(now)))
        },
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(if acquiring && previous.is_some() {
            transitions + 1
        } else {
            transitions
        }),
        ..LeaseSpec::default()
    }
}

/// One round: read, decide, write. Returns whether we hold the lease afterwards.
async fn try_acquire_or_renew(
    api: &Api<Lease>,
    name: &str,
    identity: &str,
    observer: &mut Observer,
) -> Result<bool, kube::Error> {
    let current = api.get_opt(name).await?;
    let spec = current.as_ref().and_then(|l| l.spec.as_ref());
    let unchanged_for = spec
        .map(|s| observer.unchanged_for(s, Instant::now()))
        .unwrap_or_default();
    // The wall clock is only written (renewTime is informational for humans and tools).
    let now = jiff::Timestamp::now();
    match decide(spec, identity, unchanged_for) {
        LeaseDecision::Wait => Ok(false),
        LeaseDecision::Create => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.to_string()),
                    ..ObjectMeta::default()
                },
                spec: Some(our_spec(None, identity, now, true)),
            };
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                Err(err) => Err(err),
            }
        }
        decision @ (LeaseDecision::Renew | LeaseDecision::TakeOver) => {
            let mut lease = current.clone().unwrap_or_default();
            lease.spec = Some(our_spec(
                spec,
                identity,
                now,
                decision == LeaseDecision::TakeOver,
            ));
            match api.replace(name, &PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                Err(err) => Err(err),
            }
        }
    }
}

/// The time one round may take: a candidate gets [`CALL_TIMEOUT`]; the leader only what is
/// left before its deadline, so a hanging call can never stretch its claim.
pub fn round_timeout(leading_since_renewal: Option<Duration>) -> Duration {
    match leading_since_renewal {
        Some(elapsed) => RENEW_DEADLINE.saturating_sub(elapsed).min(CALL_TIMEOUT),
        None => CALL_TIMEOUT,
    }
}

/// Campaigns until `stop` turns true or leadership is lost; `leadership` tells the rest of the
/// controller when it may write. Losing is final: the caller stops the workers and exits.
pub async fn run(
    client: Client,
    namespace: String,
    name: String,
    identity: String,
    leadership: Leadership,
    mut stop: watch::Receiver<bool>,
) {
    let api: Api<Lease> = Api::namespaced(client, &namespace);
    let mut observer = Observer::default();
    let mut last_renewal: Option<Instant> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        let leading = leadership.is_leading();
        if leading && !leadership.holds() {
            // The deadline passed without a renewal (a hang, a partition, a frozen process).
            tracing::error!(%identity, lease = %name, "leader lease not renewed in time; stepping down");
            leadership.lose();
            return;
        }
        let started = Instant::now();
        let budget = round_timeout(
            last_renewal
                .filter(|_| leading)
                .map(|t| started.saturating_duration_since(t)),
        );
        let round = tokio::time::timeout(
            budget,
            try_acquire_or_renew(&api, &name, &identity, &mut observer),
        );
        let result = tokio::select! {
            result = round => result,
            _ = stop.wait_for(|s| *s) => return,
        };
        match result {
            Ok(Ok(true)) => {
                if !leading {
                    tracing::info!(%identity, lease = %name, "became leader");
                }
                last_renewal = Some(started);
                leadership.renewed(started);
            }
            Ok(Ok(false)) if leading => {
                tracing::error!(%identity, lease = %name, "lost the leader lease; stepping down");
                leadership.lose();
                return;
            }
            Ok(Ok(false)) => {}
            Ok(Err(err)) => {
                tracing::warn!(error = %err, lease = %name, "leader election request failed");
            }
            Err(_) => {
                tracing::warn!(lease = %name, timeout = ?budget, "leader election request timed out");
            }
        }
        let pause = match last_renewal.filter(|_| leadership.is_leading()) {
            // Never sleep past the deadline: step down the moment it passes.
            Some(renewed) => RENEW_INTERVAL.min(RENEW_DEADLINE.saturating_sub(renewed.elapsed())),
            None => CANDIDATE_INTERVAL,
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Gives the lease up on shutdown so another replica takes over at once. Call it only after
/// [`run`] has stopped, so this replica cannot take the lease back. Bounded by
/// [`CALL_TIMEOUT`].
pub async fn release(client: Client, namespace: &str, name: &str, identity: &str) {
    let api: Api<Lease> = Api::namespaced(client, namespace);
    let attempt = async {
        // Two tries: a renewal still in flight when the loop stopped may have moved the
        // resourceVersion under us.
        for _ in 0..2 {
            let Ok(Some(mut lease)) = api.get_opt(name).await else {
                return;
            };
            let Some(spec) = lease.spec.as_mut() else {
                return;
            };
            if spec.holder_identity.as_deref() != Some(identity) {
                return;
            }
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
            match api.replace(name, &PostParams::default(), &lease).await {
                Ok(_) => {
                    tracing::info!(%identity, lease = %name, "released the leader lease");
                    return;
                }
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot release the leader lease");
                    return;
                }
            }
        }
    };
    if tokio::time::timeout(CALL_TIMEOUT, attempt).await.is_err() {
        tracing::warn!(lease = %name, "releasing the leader lease timed out");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: &str, renewed: &str) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(renewed.parse().unwrap())),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn decisions() {
        let live = Duration::from_secs(3);
        let stale = Duration::from_secs(15);
        assert_eq!(decide(None, "a", live), LeaseDecision::Create);
        assert_eq!(
            decide(Some(&spec("a", "2026-01-01T00:00:00Z")), "a", stale),
            LeaseDecision::Renew
        );
        assert_eq!(
            decide(Some(&spec("b", "2026-01-01T00:00:20Z")), "a", live),
            LeaseDecision::Wait
        );
        assert_eq!(
            decide(Some(&spec("b", "2026-01-01T00:00:10Z")), "a", stale),
            LeaseDecision::TakeOver
        );
        assert_eq!(
            decide(Some(&spec("", "2026-01-01T00:00:29Z")), "a", Duration::ZERO),
            LeaseDecision::TakeOver
        );
    }

    #[test]
    fn a_renew_time_far_in_the_past_does_not_hand_a_live_lease_away() {
        // The holder's clock is an hour behind ours: its renewTime looks ancient, but the
        // Lease keeps changing, so it is alive.
        let mut observer = Observer::default();
        let start = Instant::now();
        let mut at = |renewed: &str, after: u64| {
            let spec = spec("b", renewed);
            let unchanged = observer.unchanged_for(&spec, start + Duration::from_secs(after));
            decide(Some(&spec), "a", unchanged)
        };
        assert_eq!(at("2025-12-31T23:00:00Z", 0), LeaseDecision::Wait);
        assert_eq!(at("2025-12-31T23:00:02Z", 14), LeaseDecision::Wait);
        assert_eq!(at("2025-12-31T23:00:04Z", 28), LeaseDecision::Wait);
        // It stops renewing: taken over only after 15 s of no change on our clock.
        assert_eq!(at("2025-12-31T23:00:04Z", 40), LeaseDecision::Wait);
        assert_eq!(at("2025-12-31T23:00:04Z", 43), LeaseDecision::TakeOver);
    }

    #[test]
    fn a_renew_time_in_the_future_does_not_keep_a_dead_lease() {
        // The holder's clock is an hour ahead: its Lease must still expire 15 s after it
        // stopped changing.
        let mut observer = Observer::default();
        let start = Instant::now();
        let spec = spec("b", "2026-01-01T01:00:00Z");
        let first = observer.unchanged_for(&spec, start);
        assert_eq!(decide(Some(&spec), "a", first), LeaseDecision::Wait);
        let later = observer.unchanged_for(&spec, start + LEASE_DURATION);
        assert_eq!(decide(Some(&spec), "a", later), LeaseDecision::TakeOver);
    }

    #[test]
    fn takeover_counts_transitions() {
        let now: jiff::Timestamp = "2026-01-01T00:00:30Z".parse().unwrap();
        let mut old = spec("b", "2026-01-01T00:00:00Z");
        old.lease_transitions = Some(3);
        let taken = our_spec(Some(&old), "a", now, true);
        assert_eq!(taken.lease_transitions, Some(4));
        assert_eq!(taken.holder_identity.as_deref(), Some("a"));
        let renewed = our_spec(Some(&taken), "a", now, false);
        assert_eq!(renewed.lease_transitions, Some(4));
    }

    #[test]
    fn a_leaders_round_ends_before_its_deadline() {
        assert_eq!(round_timeout(None), CALL_TIMEOUT);
        assert_eq!(round_timeout(Some(Duration::ZERO)), CALL_TIMEOUT);
        assert_eq!(
            round_timeout(Some(Duration::from_secs(8))),
            Duration::from_secs(2)
        );
        assert_eq!(round_timeout(Some(Duration::from_secs(11))), Duration::ZERO);
        // The deadline is shorter than what a candidate waits.
        const { assert!(RENEW_DEADLINE.as_secs() + 2 < LEASE_DURATION.as_secs()) };
    }

    #[tokio::test(start_paused = true)]
    async fn leadership_expires_with_the_deadline_and_loss_is_final() {
        let leadership = Leadership::elected();
        assert!(!leadership.holds());
        leadership.renewed(Instant::now());
        assert!(leadership.holds());
        assert!(*leadership.subscribe().borrow());
        tokio::time::advance(RENEW_DEADLINE).await;
        assert!(!leadership.holds(), "past the deadline without renewal");
        leadership.renewed(Instant::now());
        assert!(leadership.holds());
        leadership.lose();
        assert!(!leadership.holds());
        leadership.renewed(Instant::now());
        assert!(!leadership.holds(), "a lost leadership is not won back");
        assert!(Leadership::always().holds());
    }

    /// A Lease API that answers every call after `hang_after` calls never: the leader must step
    /// down by its deadline, not hang with its claim.
    #[tokio::test(start_paused = true)]
    async fn a_hanging_renewal_steps_down_by_the_deadline() {
        let (service, mut handle) = tower_test::mock::pair::<
            http::Request<kube::client::Body>,
            http::Response<kube::client::Body>,
        >();
        let client = Client::new(service, "keys");
        let leadership = Leadership::elected();
        let (_stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(
            client,
            "keys".into(),
            "lease".into(),
            "me".into(),
            leadership.clone(),
            stop_rx,
        ));
        // First round: no Lease, we create it.
        let (request, send) = handle.next_request().await.expect("GET");
        assert_eq!(request.method(), "GET");
        send.send_response(
            http::Response::builder()
                .status(404)
                .body(kube::client::Body::from(
                    serde_json::to_vec(&serde_json::json!({
                        "kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "reason": "NotFound", "code": 404, "message": "not found"
                    }))
                    .unwrap(),
                ))
                .unwrap(),
        );
        let (request, send) = handle.next_request().await.expect("POST");
        assert_eq!(request.method(), "POST");
        let body = request.into_body().collect_bytes().await.unwrap();
        send.send_response(
            http::Response::builder()
                .status(201)
                .body(kube::client::Body::from(body.to_vec()))
                .unwrap(),
        );
        leadership.won().await;
        let won_at = Instant::now();
        assert!(leadership.holds());
        // From now on the API server accepts requests and never answers.
        let mut pending = Vec::new();
        let lost = tokio::spawn({
            let leadership = leadership.clone();
            async move { leadership.lost().await }
        });
        while !lost.is_finished() {
            tokio::select! {
                request = handle.next_request() => {
                    if let Some(request) = request { pending.push(request); }
                }
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
        assert!(!leadership.holds());
        let stepped_down_after = won_at.elapsed();
        assert!(
            stepped_down_after <= RENEW_DEADLINE + Duration::from_millis(200),
            "stepped down after {stepped_down_after:?}"
        );
        task.await.unwrap();
    }
}
