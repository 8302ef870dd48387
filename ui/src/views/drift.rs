//! The drift page's model: what a server-side-apply dry run of the GitSync's applied revision
//! would change, per object, each changed field with the field managers that wrote it (from
//! `managedFields`). Pure: it reads the engine's diff report.
//!
//! A Secret's changed fields show their paths only: the engine already hides Secret values, and
//! this view drops even the placeholder, so nothing about a value (not its length) reaches the
//! page.

use sealed_secrets_sync::{
    audit::FieldManagerRecord,
    engine::{Action, SyncReport},
};

/// One object that differs from Git.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftRow {
    /// `Kind/namespace/name`.
    pub object: String,
    /// `changed`, `missing` or `extra` (in the inventory, left Git: prune would delete it).
    pub change: &'static str,
    /// Where it comes from in Git (file and document).
    pub origin: String,
    /// Changed fields.
    pub fields: Vec<Field>,
    /// Managers (other than the reconcile core) owning some changed field.
    pub managers: Vec<FieldManagerRecord>,
}

impl DriftRow {
    /// CSS class of its badge.
    pub fn class(&self) -> &'static str {
        if self.change == "changed" {
            "bad"
        } else {
            "unknown"
        }
    }
}

/// One changed field.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// `spec.replicas`.
    pub path: String,
    /// `live → Git` values, empty for a Secret.
    pub values: String,
    /// Names of the managers that own this path.
    pub managers: Vec<String>,
}

/// Splits an engine diff line (`path: live → desired`) into its path and values.
fn split_line(line: &str) -> (&str, &str) {
    match line.split_once(": ") {
        Some((path, values)) => (path, values),
        None => (line, ""),
    }
}

/// Whether a manager's path (`metadata.labels["app"]`, `spec.ports[0].port`) covers a diff
/// path (`metadata.labels.app`, `spec.ports`): equal once brackets become dots, or one inside
/// the other.
fn covers(manager_path: &str, diff_path: &str) -> bool {
    let norm = |p: &str| {
        p.replace("[\"", ".")
            .replace("\"]", "")
            .replace('[', ".")
            .replace(']', "")
    };
    let (m, d) = (norm(manager_path), norm(diff_path));
    m == d || d.starts_with(&format!("{m}.")) || m.starts_with(&format!("{d}."))
}

/// The rows of a diff report: changed, missing and to-be-pruned objects, in the report's order.
pub fn rows(report: &SyncReport) -> Vec<DriftRow> {
    let mut rows = Vec::new();
    for object in &report.objects {
        let secret = object.key.kind == "Secret" && object.key.group.is_empty();
        let managers = object
            .drift
            .as_ref()
            .map(|d| d.managers.clone())
            .unwrap_or_default();
        let (change, lines) = match &object.action {
            Action::WouldChange(lines) | Action::Drifted(lines) => ("changed", lines.as_slice()),
            Action::WouldCreate | Action::Missing => ("missing", [].as_slice()),
            _ => continue,
        };
        let fields = lines
            .iter()
            .map(|line| {
                let (path, values) = split_line(line);
                Field {
                    path: path.to_string(),
                    values: if secret {
                        String::new()
                    } else {
                        values.to_string()
                    },
                    managers: managers
                        .iter()
                        .filter(|m| m.paths.iter().any(|p| covers(p, path)))
                        .map(|m| m.manager.clone())
                        .collect(),
                }
            })
            .collect();
        rows.push(DriftRow {
            object: object.key.to_string(),
            change,
            origin: object.origin.to_string(),
            fields,
            managers,
        });
    }
    for key in &report.pruned {
        rows.push(DriftRow {
            object: key.to_string(),
            change: "extra",
            origin: String::new(),
            fields: Vec::new(),
            managers: Vec::new(),
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealed_secrets_sync::{
        audit::{DriftChange, DriftFinding},
        engine::ObjectReport,
        health::Health,
        manifest::{ObjectKey, Origin},
    };

    fn key(kind: &str, name: &str) -> ObjectKey {
        ObjectKey {
            group: if kind == "Deployment" {
                "apps".into()
            } else {
                String::new()
            },
            kind: kind.into(),
            namespace: "shop".into(),
            name: name.into(),
        }
    }

    fn report(key: ObjectKey, action: Action, managers: Vec<FieldManagerRecord>) -> ObjectReport {
        ObjectReport {
            key,
            api_version: "v1".into(),
            origin: Origin {
                file: "app.yaml".into(),
                line: 1,
            },
            action,
            drift: Some(DriftFinding {
                change: DriftChange::Changed,
                paths: Vec::new(),
                managers,
                resource_version: None,
            }),
        }
    }

    fn manager(name: &str, paths: &[&str]) -> FieldManagerRecord {
        FieldManagerRecord {
            manager: name.into(),
            operation: "Update".into(),
            time: "2026-12-07T10:00:00Z".into(),
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn fields_carry_their_managers_and_secrets_only_paths() {
        let report = SyncReport {
            objects: vec![
                report(
                    key("Deployment", "web"),
                    Action::WouldChange(vec![
                        "spec.replicas: 5 → 2".into(),
                        "metadata.labels.tier: \"x\" → \"web\"".into(),
                    ]),
                    vec![
                        manager("kubectl-edit", &["spec.replicas"]),
                        manager("helm", &["metadata.labels[\"tier\"]"]),
                    ],
                ),
                report(
                    key("Secret", "db"),
                    Action::WouldChange(vec!["data.password: (hidden) → (hidden)".into()]),
                    vec![manager("kubectl-edit", &["data.password"])],
                ),
                report(key("ConfigMap", "cfg"), Action::Unchanged, vec![]),
                report(key("ConfigMap", "new"), Action::WouldCreate, vec![]),
            ],
            pruned: vec![key("ConfigMap", "old")],
            kept: vec![],
            inventory: vec![],
            health: Health::Healthy,
        };
        let rows = rows(&report);
        let objects: Vec<(&str, &str)> =
            rows.iter().map(|r| (r.object.as_str(), r.change)).collect();
        assert_eq!(
            objects,
            [
                ("Deployment.apps/shop/web", "changed"),
                ("Secret/shop/db", "changed"),
                ("ConfigMap/shop/new", "missing"),
                ("ConfigMap/shop/old", "extra"),
            ]
        );
        let web = &rows[0];
        assert_eq!(web.fields[0].path, "spec.replicas");
        assert_eq!(web.fields[0].values, "5 → 2");
        assert_eq!(web.fields[0].managers, ["kubectl-edit"]);
        assert_eq!(web.fields[1].managers, ["helm"]);
        let secret = &rows[1];
        assert_eq!(secret.fields[0].path, "data.password");
        assert_eq!(
            secret.fields[0].values, "",
            "no value, not even a placeholder"
        );
        assert_eq!(secret.fields[0].managers, ["kubectl-edit"]);
    }

    #[test]
    fn manager_paths_cover_nested_diff_paths() {
        assert!(covers("spec.ports[0].port", "spec.ports"));
        assert!(covers("spec.template", "spec.template.spec.containers"));
        assert!(covers(
            "metadata.labels[\"a.b/c\"]",
            "metadata.labels.a.b/c"
        ));
        assert!(!covers("spec.replicas", "spec.selector"));
        assert!(!covers("spec.rep", "spec.replicas"));
    }
}
