//! Lease-based leader election (`coordination.k8s.io/v1`), for running several replicas.
//!
//! Only the leader reconciles and generates keys; every replica serves the HTTP API from the
//! shared key set. The algorithm is client-go's: the holder renews the Lease every
//! `RENEW_INTERVAL`; anyone may take it once `renewTime + leaseDurationSeconds` has passed;
//! writes carry the resourceVersion they read, so two candidates can never both win. A leader
//! that cannot renew before its lease runs out exits the process (as controller-runtime does),
//! so a partitioned replica never keeps writing.

use std::time::Duration;

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
};
use kube::{Api, Client, api::PostParams};
use tokio::sync::watch;

/// How long a lease is valid without renewal.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How often the holder renews, and candidates retry.
pub const RENEW_INTERVAL: Duration = Duration::from_secs(2);

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

/// Decides from the current lease (pure).
pub fn decide(lease: Option<&LeaseSpec>, identity: &str, now: jiff::Timestamp) -> LeaseDecision {
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
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0);
    match renewed {
        Some(renewed) if renewed.as_second() + duration > now.as_second() => LeaseDecision::Wait,
        _ => LeaseDecision::TakeOver,
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
) -> Result<bool, kube::Error> {
    let now = jiff::Timestamp::now();
    let current = api.get_opt(name).await?;
    let spec = current.as_ref().and_then(|l| l.spec.as_ref());
    match decide(spec, identity, now) {
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

/// Campaigns forever; `leader` turns true once the lease is ours. Exits the process when an
/// established leader loses the lease.
pub async fn run(
    client: Client,
    namespace: String,
    name: String,
    identity: String,
    leader: watch::Sender<bool>,
) {
    let api: Api<Lease> = Api::namespaced(client, &namespace);
    let mut last_renewal: Option<tokio::time::Instant> = None;
    loop {
        let result = try_acquire_or_renew(&api, &name, &identity).await;
        let is_leader = *leader.borrow();
        match result {
            Ok(true) => {
                if !is_leader {
                    tracing::info!(%identity, lease = %name, "became leader");
                    let _ = leader.send(true);
                }
                last_renewal = Some(tokio::time::Instant::now());
            }
            Ok(false) if is_leader => {
                tracing::error!(%identity, lease = %name, "lost the leader lease; exiting");
                std::process::exit(1);
            }
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(error = %err, lease = %name, "leader election request failed");
                if is_leader
                    && last_renewal.is_some_and(|t| t.elapsed() >= LEASE_DURATION - RENEW_INTERVAL)
                {
                    tracing::error!(%identity, "cannot renew the leader lease in time; exiting");
                    std::process::exit(1);
                }
            }
        }
        tokio::time::sleep(RENEW_INTERVAL).await;
    }
}

/// Gives the lease up on shutdown so another replica takes over at once.
pub async fn release(client: Client, namespace: &str, name: &str, identity: &str) {
    let api: Api<Lease> = Api::namespaced(client, namespace);
    if let Ok(Some(mut lease)) = api.get_opt(name).await
        && let Some(spec) = lease.spec.as_mut()
        && spec.holder_identity.as_deref() == Some(identity)
    {
        spec.holder_identity = None;
        let _ = api.replace(name, &PostParams::default(), &lease).await;
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
        let now: jiff::Timestamp = "2026-01-01T00:00:30Z".parse().unwrap();
        assert_eq!(decide(None, "a", now), LeaseDecision::Create);
        assert_eq!(
            decide(Some(&spec("a", "2026-01-01T00:00:00Z")), "a", now),
            LeaseDecision::Renew
        );
        assert_eq!(
            decide(Some(&spec("b", "2026-01-01T00:00:20Z")), "a", now),
            LeaseDecision::Wait
        );
        assert_eq!(
            decide(Some(&spec("b", "2026-01-01T00:00:10Z")), "a", now),
            LeaseDecision::TakeOver
        );
        assert_eq!(
            decide(Some(&spec("", "2026-01-01T00:00:29Z")), "a", now),
            LeaseDecision::TakeOver
        );
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
}
