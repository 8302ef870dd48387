//! Trial decryption: with `--recovery-private-key`, whether a SealedSecret opens under the name
//! and namespace it is rendered with is a fact, not a guess.
//!
//! Why: without keys the lint can only compare the name written in the file with the rendered
//! name, and the file's name need not be the one the values were sealed for (a base may carry
//! the short name while its values were sealed for the name an overlay's suffix produces, which
//! is exactly right). With keys, each value is opened under its rendered label, and that result
//! decides. A value that does not open is tried under the other identities it plausibly was
//! sealed for (the names and namespaces in the file, in `spec.template.metadata` and in the
//! render, under every scope), so the error can say where it does open. Plaintexts are dropped
//! (zeroized) as soon as a trial succeeds; only labels reach messages.

use std::fmt;

use serde_json::Value;

use sealed_secrets_core::{crypto::Decrypter, keys::PrivateKey, scope::Scope};

use super::{
    check::{Place, Sealed, identity, name_of, namespace_of, scope_of},
    findings::{self as rules, Finding},
};

/// A scope with the name and namespace its label binds (ignored where the scope ignores them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The scope.
    pub scope: Scope,
    /// Namespace (empty for cluster-wide).
    pub namespace: String,
    /// Name (empty unless strict).
    pub name: String,
}

impl Identity {
    /// An identity, with the parts its scope does not bind cleared.
    pub fn new(scope: Scope, namespace: &str, name: &str) -> Self {
        let (namespace, name) = match scope {
            Scope::Strict => (namespace, name),
            Scope::NamespaceWide => (namespace, ""),
            Scope::ClusterWide => ("", ""),
        };
        Self {
            scope,
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// The identity the controller opens `value` under: its annotations' scope, its name and
    /// namespace.
    pub fn of(value: &Value) -> Self {
        Self::new(
            scope_of(value),
            namespace_of(value).unwrap_or(""),
            name_of(value),
        )
    }

    /// The OAEP label.
    pub fn label(&self) -> Vec<u8> {
        self.scope.label(&self.namespace, &self.name)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} label \"{}\"",
            self.scope,
            String::from_utf8_lossy(&self.label())
        )
    }
}

/// A value that does not open under its rendered identity.
#[derive(Debug)]
pub struct Unopened {
    /// What the value is (`item "password"`).
    pub item: String,
    /// Its key path, for its line.
    pub path: Vec<String>,
    /// The first other identity it opens under, if a trial found one.
    pub opens_under: Option<Identity>,
}

/// The identities worth trying for `rendered`, whose definition as written is `written`:
/// every name and namespace either carries (metadata and `spec.template.metadata`), under every
/// scope, the written scope first. The rendered identity itself is left out.
pub fn candidates(rendered: &Value, written: Option<&Value>) -> Vec<Identity> {
    let sources: Vec<&Value> = written.into_iter().chain([rendered]).collect();
    let mut names: Vec<&str> = Vec::new();
    let mut namespaces: Vec<&str> = Vec::new();
    for value in &sources {
        let template = value
            .get("spec")
            .and_then(|s| s.get("template"))
            .filter(|t| t.is_object());
        for meta in [Some(*value), template].into_iter().flatten() {
            if let Some(name) = meta.get("metadata").map(|m| name_of_meta(m, "name")) {
                names.push(name);
            }
            if let Some(ns) = meta.get("metadata").map(|m| name_of_meta(m, "namespace")) {
                namespaces.push(ns);
            }
        }
    }
    names.retain(|n| !n.is_empty());
    namespaces.retain(|n| !n.is_empty());
    let first_scope = written.map_or_else(|| scope_of(rendered), scope_of);
    let mut scopes = vec![first_scope];
    scopes.extend(
        [Scope::Strict, Scope::NamespaceWide, Scope::ClusterWide]
            .into_iter()
            .filter(|s| *s != first_scope),
    );
    let own = Identity::of(rendered);
    let mut out: Vec<Identity> = Vec::new();
    for scope in scopes {
        for ns in namespaces.iter().copied().chain([""]) {
            for name in &names {
                // A namespace-wide label without a namespace is the cluster-wide one.
                if scope == Scope::NamespaceWide && ns.is_empty() {
                    continue;
                }
                let id = Identity::new(scope, ns, name);
                if id.label() != own.label() && !out.iter().any(|o| o.label() == id.label()) {
                    out.push(id);
                }
            }
        }
    }
    out
}

fn name_of_meta<'a>(meta: &'a Value, key: &str) -> &'a str {
    meta.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Opens every value under `rendered`; for those that do not open, tries `candidates` in order.
/// Returns only the values that do not open under `rendered`.
pub fn trial(
    keys: &[PrivateKey],
    sealed: &[Sealed],
    rendered: &Identity,
    candidates: &[Identity],
) -> Vec<Unopened> {
    let label = rendered.label();
    sealed
        .iter()
        .filter(|item| keys.decrypt(&item.bytes, &label).is_err())
        .map(|item| Unopened {
            item: item.item.clone(),
            path: item.path.clone(),
            opens_under: candidates
                .iter()
                .find(|c| keys.decrypt(&item.bytes, &c.label()).is_ok())
                .cloned(),
        })
        .collect()
}

/// What the values that do not open open under instead, grouped: `item "a" opens under strict
/// label "shop/db"; items "b", "c" open under none of the names, namespaces and scopes tried`.
pub fn describe(unopened: &[Unopened]) -> String {
    let mut groups: Vec<(Option<&Identity>, Vec<&str>)> = Vec::new();
    for u in unopened {
        let key = u.opens_under.as_ref();
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, items)) => items.push(&u.item),
            None => groups.push((key, vec![&u.item])),
        }
    }
    groups
        .into_iter()
        .map(|(id, items)| {
            let many = items.len() > 1;
            let what = items.join(", ");
            let verb = if many { "open" } else { "opens" };
            match id {
                Some(id) => format!("{what} {verb} under the {id}"),
                None => format!(
                    "{what} {verb} under none of the names, namespaces and scopes tried (sealed \
                     for another key or name?)"
                ),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `cannot-decrypt`: one finding per object, at its first value that does not open, saying
/// where the values open instead when a trial found it.
pub fn cannot_decrypt(
    value: &Value,
    unopened: &[Unopened],
    place: Place<'_>,
    via: &str,
) -> Finding {
    let at = |u: &Unopened| {
        let path: Vec<&str> = u.path.iter().map(String::as_str).collect();
        place.at(&path)
    };
    let (count, verb) = match unopened.len() {
        1 => ("1 value".to_string(), "does"),
        n => (format!("{n} values"), "do"),
    };
    let mut finding = Finding::new(
        rules::CANNOT_DECRYPT,
        unopened.first().map_or_else(|| place.at(&[]), at),
        format!(
            "SealedSecret \"{}\"{via}: {count} {verb} not open with the recovery keys under its \
             {}: {}",
            identity(value),
            Identity::of(value),
            describe(unopened)
        ),
    );
    for u in unopened.iter().skip(1) {
        finding = finding.with_related(at(u), format!("{} does not open either", u.item));
    }
    finding
}

#[cfg(test)]
mod tests {
    use sealed_secrets_core::{
        crypto::{SystemRandom, hybrid_encrypt},
        keys::generate_key_pair,
    };

    use super::*;

    fn sealed_for(key: &PrivateKey, id: &Identity, item: &str) -> Sealed {
        Sealed {
            item: format!("item \"{item}\""),
            bytes: hybrid_encrypt(&key.public_key(), b"v", &id.label(), &mut SystemRandom).unwrap(),
            path: vec!["spec".into(), "encryptedData".into(), item.into()],
        }
    }

    #[test]
    fn values_are_judged_by_the_rendered_label_and_tried_under_the_written_ones() {
        let pair = generate_key_pair(
            2048,
            "",
            jiff::Timestamp::now(),
            jiff::SignedDuration::from_hours(1),
        )
        .unwrap();
        let keys = vec![pair.key];
        let written: Value = serde_json::json!({
            "metadata": {"name": "db"},
            "spec": {"template": {"metadata": {"name": "db", "namespace": "shop"}}}
        });
        let rendered: Value = serde_json::json!({
            "metadata": {"name": "db-prod", "namespace": "payments"},
            "spec": {"template": {"metadata": {"name": "db", "namespace": "shop"}}}
        });
        let own = Identity::of(&rendered);
        assert_eq!(own.to_string(), "strict label \"payments/db-prod\"");
        let tried = candidates(&rendered, Some(&written));
        assert!(!tried.iter().any(|t| t.label() == own.label()));
        assert_eq!(tried[0], Identity::new(Scope::Strict, "shop", "db"));
        let items = [
            sealed_for(&keys[0], &own, "fine"),
            sealed_for(&keys[0], &Identity::new(Scope::Strict, "shop", "db"), "old"),
            sealed_for(&keys[0], &Identity::new(Scope::ClusterWide, "", ""), "wide"),
            sealed_for(&keys[0], &Identity::new(Scope::Strict, "x", "y"), "lost"),
        ];
        let unopened = trial(&keys, &items, &own, &tried);
        let names: Vec<&str> = unopened.iter().map(|u| u.item.as_str()).collect();
        assert_eq!(names, ["item \"old\"", "item \"wide\"", "item \"lost\""]);
        assert_eq!(
            describe(&unopened),
            "item \"old\" opens under the strict label \"shop/db\"; item \"wide\" opens under \
             the cluster-wide label \"\"; item \"lost\" opens under none of the names, \
             namespaces and scopes tried (sealed for another key or name?)"
        );
        assert!(trial(&keys, &items[..1], &own, &tried).is_empty());
    }
}
