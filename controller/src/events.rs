//! Kubernetes Events about SealedSecrets, written as core/v1 Events like upstream's client-go
//! recorder (component `sealed-secrets`).
//!
//! kube-runtime's recorder writes `events.k8s.io/v1` Events, which needs a different RBAC rule;
//! upstream's ClusterRole grants core `events` create/patch, so a drop-in replacement writes
//! those. Messages are built by the reconciler from error texts that never contain secret data.

use k8s_openapi::{
    api::core::v1::{Event, EventSource, ObjectReference},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time},
};
use kube::{Api, Client, api::PostParams};
use sealed_secrets_core::sealed_secret::{API_VERSION, KIND, SealedSecret};

/// Event reason of a successful unseal.
pub const REASON_UNSEALED: &str = "Unsealed";
/// Event reason of a decryption failure.
pub const REASON_UNSEAL_FAILED: &str = "ErrUnsealFailed";
/// Event reason of a failed Secret write.
pub const REASON_UPDATE_FAILED: &str = "ErrUpdateFailed";
/// Upstream's message for a successful unseal.
pub const MESSAGE_UNSEALED: &str = "SealedSecret unsealed successfully";
/// Recorder component, as upstream.
pub const COMPONENT: &str = "sealed-secrets";

/// Normal or Warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Normal.
    Normal,
    /// Warning.
    Warning,
}

/// Builds the Event object (pure, for tests).
pub fn build_event(
    sealed: &SealedSecret,
    type_: EventType,
    reason: &str,
    message: &str,
    now: jiff::Timestamp,
) -> Event {
    let namespace = sealed
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let name = sealed.metadata.name.clone().unwrap_or_default();
    Event {
        metadata: ObjectMeta {
            // client-go names events `<object>.<unix nanos in hex>`.
            name: Some(format!("{name}.{:x}", now.as_nanosecond())),
            namespace: Some(namespace.clone()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some(API_VERSION.into()),
            kind: Some(KIND.into()),
            name: Some(name),
            namespace: Some(namespace),
            uid: sealed.metadata.uid.clone(),
            resource_version: sealed.metadata.resource_version.clone(),
            ..ObjectReference::default()
        },
        reason: Some(reason.into()),
        message: Some(truncate(message, 1024)),
        type_: Some(match type_ {
            EventType::Normal => "Normal".into(),
            EventType::Warning => "Warning".into(),
        }),
        source: Some(EventSource {
            component: Some(COMPONENT.into()),
            host: None,
        }),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: None::<MicroTime>,
        count: Some(1),
        reporting_component: Some(COMPONENT.into()),
        reporting_instance: Some(COMPONENT.into()),
        ..Event::default()
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// Publishes Events; failures are logged, never fatal (as client-go's recorder).
#[derive(Clone)]
pub struct EventPublisher {
    client: Client,
}

impl EventPublisher {
    /// A publisher using `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// Records one event about `sealed`.
    pub async fn publish(
        &self,
        sealed: &SealedSecret,
        type_: EventType,
        reason: &str,
        message: &str,
    ) {
        let event = build_event(sealed, type_, reason, message, jiff::Timestamp::now());
        let namespace = event.metadata.namespace.clone().unwrap_or_default();
        tracing::info!(
            namespace = %namespace,
            name = sealed.metadata.name.as_deref().unwrap_or_default(),
            r#type = ?type_,
            reason,
            message,
            "event"
        );
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        if let Err(err) = api.create(&PostParams::default(), &event).await {
            tracing::warn!(error = %err, reason, "cannot record event");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_reference_the_sealed_secret_like_upstream() {
        let mut sealed = SealedSecret::new("db", Default::default());
        sealed.metadata.namespace = Some("shop".into());
        sealed.metadata.uid = Some("u1".into());
        let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let event = build_event(
            &sealed,
            EventType::Warning,
            REASON_UNSEAL_FAILED,
            "Failed to unseal: x",
            now,
        );
        assert_eq!(event.involved_object.kind.as_deref(), Some("SealedSecret"));
        assert_eq!(event.involved_object.uid.as_deref(), Some("u1"));
        assert_eq!(event.type_.as_deref(), Some("Warning"));
        assert_eq!(
            event.source.unwrap().component.as_deref(),
            Some("sealed-secrets")
        );
        assert!(event.metadata.name.unwrap().starts_with("db."));
        assert_eq!(truncate("héllo", 2), "h");
    }
}
