//! A GitSync's resource tree: its inventory's objects, each with the objects that name it in
//! `ownerReferences` below it (Deployment → ReplicaSet → Pod, SealedSecret → Secret), with the
//! health of every node. Pure: the live objects come in as JSON values.

use std::collections::{BTreeMap, HashMap, HashSet};

use sealed_secrets_sync::{health, manifest::ObjectKey, resource::InventoryEntry};
use serde_json::Value;

/// How deep children are followed (Deployment → ReplicaSet → Pod is two levels).
const MAX_DEPTH: usize = 4;

/// Top-level objects per page.
pub const PER_PAGE: usize = 100;

/// One object of the tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Kind.
    pub kind: String,
    /// apiVersion.
    pub api_version: String,
    /// Namespace (empty for cluster-scoped objects).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Health.
    pub health: NodeHealth,
    /// Objects that name this one as their owner.
    pub children: Vec<Node>,
}

/// Health of one node, ready to show.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeHealth {
    /// `Healthy`, `Progressing`, `Degraded` or `Missing`.
    pub label: &'static str,
    /// Why, when not healthy.
    pub reason: String,
}

impl NodeHealth {
    /// Whether the node needs no attention.
    pub fn is_healthy(&self) -> bool {
        self.label == "Healthy"
    }

    /// CSS class of its badge.
    pub fn class(&self) -> &'static str {
        match self.label {
            "Healthy" => "ok",
            "Progressing" => "unknown",
            _ => "bad",
        }
    }
}

impl Node {
    /// Whether this node or one below it is not healthy.
    pub fn has_problem(&self) -> bool {
        !self.health.is_healthy() || self.children.iter().any(Node::has_problem)
    }

    /// This node and every node below it.
    pub fn count(&self) -> usize {
        1 + self.children.iter().map(Node::count).sum::<usize>()
    }

    /// `Kind/namespace/name`.
    pub fn id(&self) -> String {
        if self.namespace.is_empty() {
            format!("{}/{}", self.kind, self.name)
        } else {
            format!("{}/{}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// The apiVersion of an inventory entry: Flux's `v` holds the version alone.
pub fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() || version.contains('/') {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// Health of a live object: [`health::assess`], plus what it does not know: a SealedSecret's
/// `Synced` condition and a Pod's phase.
pub fn node_health(object: &Value) -> NodeHealth {
    let kind = object["kind"].as_str().unwrap_or("");
    let condition = |type_: &str| {
        object["status"]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == type_))
    };
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    match kind {
        "SealedSecret" => match condition("Synced") {
            Some(c) if c["status"] == "False" => NodeHealth {
                label: "Degraded",
                reason: format!("SealedSecret: {}", text(&c["message"])),
            },
            Some(c) if c["status"] == "True" => healthy(),
            _ => NodeHealth {
                label: "Progressing",
                reason: "SealedSecret: not unsealed yet".into(),
            },
        },
        "Pod" if object["apiVersion"] == "v1" => match object["status"]["phase"].as_str() {
            Some("Failed") => NodeHealth {
                label: "Degraded",
                reason: format!("Pod: failed: {}", text(&object["status"]["message"])),
            },
            Some("Succeeded") => healthy(),
            Some("Running") if condition("Ready").is_some_and(|c| c["status"] == "True") => {
                healthy()
            }
            phase => NodeHealth {
                label: "Progressing",
                reason: format!("Pod: {}", phase.unwrap_or("Pending").to_lowercase()),
            },
        },
        _ => match health::assess(object) {
            health::Health::Healthy => healthy(),
            health::Health::Progressing { reason } => NodeHealth {
                label: "Progressing",
                reason,
            },
            health::Health::Degraded { reason } => NodeHealth {
                label: "Degraded",
                reason,
            },
        },
    }
}

fn healthy() -> NodeHealth {
    NodeHealth {
        label: "Healthy",
        reason: String::new(),
    }
}

fn key_of(object: &Value) -> Option<ObjectKey> {
    let api_version = object["apiVersion"].as_str()?;
    Some(ObjectKey {
        group: sealed_secrets_sync::manifest::split_api_version(api_version)
            .0
            .to_string(),
        kind: object["kind"].as_str()?.to_string(),
        namespace: object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        name: object["metadata"]["name"].as_str()?.to_string(),
    })
}

/// The tree of an inventory. `live` holds the inventory's objects that exist (any order, others
/// are ignored); `others` the objects that may be their descendants (ReplicaSets, Pods,
/// Secrets...). An inventory entry without a live object is a `Missing` node.
pub fn build(entries: &[InventoryEntry], live: &[Value], others: &[Value]) -> Vec<Node> {
    let by_key: HashMap<ObjectKey, &Value> =
        live.iter().filter_map(|o| Some((key_of(o)?, o))).collect();
    let mut by_owner: HashMap<&str, Vec<&Value>> = HashMap::new();
    for object in live.iter().chain(others) {
        for owner in object["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(uid) = owner["uid"].as_str() {
                by_owner.entry(uid).or_default().push(object);
            }
        }
    }
    let mut seen = HashSet::new();
    let mut nodes: Vec<Node> = entries
        .iter()
        .filter_map(|entry| {
            let key = ObjectKey::from_id(&entry.id)?;
            Some(match by_key.get(&key) {
                Some(object) => node(object, &by_owner, &mut seen, 0),
                None => Node {
                    kind: key.kind.clone(),
                    api_version: api_version(&key.group, &entry.v),
                    namespace: key.namespace.clone(),
                    name: key.name.clone(),
                    health: NodeHealth {
                        label: "Missing",
                        reason: "in the inventory, not in the cluster".into(),
                    },
                    children: Vec::new(),
                },
            })
        })
        .collect();
    nodes.sort_by(|a, b| {
        (a.kind.as_str(), a.namespace.as_str(), a.name.as_str()).cmp(&(
            b.kind.as_str(),
            b.namespace.as_str(),
            b.name.as_str(),
        ))
    });
    nodes
}

fn node<'a>(
    object: &'a Value,
    by_owner: &HashMap<&str, Vec<&'a Value>>,
    seen: &mut HashSet<&'a str>,
    depth: usize,
) -> Node {
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let uid = object["metadata"]["uid"].as_str();
    let fresh = uid.is_none_or(|uid| seen.insert(uid));
    let mut children: Vec<Node> = match (uid, fresh && depth < MAX_DEPTH) {
        (Some(uid), true) => by_owner
            .get(uid)
            .into_iter()
            .flatten()
            .map(|child| node(child, by_owner, seen, depth + 1))
            .collect(),
        _ => Vec::new(),
    };
    children.sort_by(|a, b| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));
    Node {
        kind: text(&object["kind"]),
        api_version: text(&object["apiVersion"]),
        namespace: text(&object["metadata"]["namespace"]),
        name: text(&object["metadata"]["name"]),
        health: node_health(object),
        children,
    }
}

/// What the tree page asks for.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct TreeQuery {
    /// Only nodes with a problem (themselves or below).
    pub problems: bool,
    /// Only this kind (empty: all).
    pub kind: String,
    /// 1-based page.
    pub page: usize,
}

/// One page of the tree, grouped by kind.
#[derive(Debug, Clone, PartialEq)]
pub struct TreePage {
    /// Kind → its nodes on this page, kinds in order.
    pub groups: Vec<(String, Vec<Node>)>,
    /// This page (1-based) and how many there are.
    pub page: usize,
    /// Number of pages.
    pub pages: usize,
    /// Top-level nodes that passed the filter.
    pub shown: usize,
    /// Kinds of the whole tree with their counts, for the kind filter.
    pub kinds: Vec<(String, usize)>,
    /// Top-level nodes by health label, over the whole tree.
    pub summary: Vec<(&'static str, usize)>,
}

/// Filters, pages and groups `nodes` (sorted by kind, as [`build`] returns them).
pub fn page(nodes: Vec<Node>, query: &TreeQuery) -> TreePage {
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut summary: BTreeMap<&'static str, usize> = BTreeMap::new();
    for node in &nodes {
        *kinds.entry(node.kind.clone()).or_default() += 1;
        *summary.entry(node.health.label).or_default() += 1;
    }
    let kept: Vec<Node> = nodes
        .into_iter()
        .filter(|n| !query.problems || n.has_problem())
        .filter(|n| query.kind.is_empty() || n.kind == query.kind)
        .collect();
    let shown = kept.len();
    let (slice, page, pages) = super::paginate(kept, query.page, PER_PAGE);
    let mut groups: Vec<(String, Vec<Node>)> = Vec::new();
    for node in slice {
        match groups.last_mut() {
            Some((kind, group)) if *kind == node.kind => group.push(node),
            _ => groups.push((node.kind.clone(), vec![node])),
        }
    }
    let order = ["Degraded", "Missing", "Progressing", "Healthy"];
    TreePage {
        groups,
        page,
        pages,
        shown,
        kinds: kinds.into_iter().collect(),
        summary: order
            .iter()
            .filter_map(|label| summary.get(label).map(|n| (*label, *n)))
            .collect(),
    }
}

/// The uids of the live objects and their descendants (whose events the timeline shows).
pub fn uids(live: &[Value], others: &[Value]) -> HashSet<String> {
    live.iter()
        .chain(others)
        .filter_map(|o| o["metadata"]["uid"].as_str().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(id: &str, v: &str) -> InventoryEntry {
        InventoryEntry {
            id: id.into(),
            v: v.into(),
        }
    }

    fn object(api: &str, kind: &str, name: &str, uid: &str, owner: Option<&str>) -> Value {
        let mut o = json!({
            "apiVersion": api, "kind": kind,
            "metadata": {"name": name, "namespace": "shop", "uid": uid}
        });
        if let Some(owner) = owner {
            o["metadata"]["ownerReferences"] = json!([{"uid": owner, "kind": "X", "name": "x"}]);
        }
        o
    }

    fn degraded_deployment() -> Value {
        let mut d = object("apps/v1", "Deployment", "web", "d1", None);
        d["metadata"]["generation"] = json!(1);
        d["spec"] = json!({"replicas": 1});
        d["status"] = json!({"observedGeneration": 1, "conditions": [{
            "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
            "message": "ReplicaSet \"web-1\" has timed out progressing."
        }]});
        d
    }

    #[test]
    fn owners_nest_their_children_and_missing_objects_show() {
        let entries = vec![
            entry("shop_web_apps_Deployment", "v1"),
            entry("shop_db_bitnami.com_SealedSecret", "v1alpha1"),
            entry("shop_gone__ConfigMap", "v1"),
        ];
        let mut sealed = object("bitnami.com/v1alpha1", "SealedSecret", "db", "s1", None);
        sealed["status"] = json!({"conditions": [{"type": "Synced", "status": "False",
            "message": "no key could decrypt secret (password)"}]});
        let live = vec![degraded_deployment(), sealed];
        let others = vec![
            object("apps/v1", "ReplicaSet", "web-1", "r1", Some("d1")),
            object("v1", "Pod", "web-1-a", "p1", Some("r1")),
            object("v1", "Secret", "db", "x1", Some("s1")),
            object("v1", "Pod", "unrelated", "p9", Some("zzz")),
        ];
        let tree = build(&entries, &live, &others);
        let ids: Vec<String> = tree.iter().map(Node::id).collect();
        assert_eq!(
            ids,
            [
                "ConfigMap/shop/gone",
                "Deployment/shop/web",
                "SealedSecret/shop/db"
            ]
        );
        assert_eq!(tree[0].health.label, "Missing");
        assert_eq!(api_version("apps", "v1"), "apps/v1");
        assert_eq!(api_version("", "v1"), "v1");
        assert_eq!(api_version("apps", "apps/v1"), "apps/v1");
        let web = &tree[1];
        assert_eq!(web.health.label, "Degraded", "{:?}", web.health);
        assert_eq!(web.children[0].id(), "ReplicaSet/shop/web-1");
        assert_eq!(web.children[0].children[0].id(), "Pod/shop/web-1-a");
        assert_eq!(web.children[0].children[0].health.label, "Progressing");
        assert_eq!(web.count(), 3);
        let db = &tree[2];
        assert_eq!(db.health.label, "Degraded");
        assert!(db.health.reason.contains("no key could decrypt"));
        assert_eq!(db.children[0].id(), "Secret/shop/db");
        assert!(db.children[0].health.is_healthy());
    }

    #[test]
    fn an_ownership_cycle_ends() {
        let entries = vec![entry("shop_a__ConfigMap", "v1")];
        let live = vec![object("v1", "ConfigMap", "a", "u1", Some("u2"))];
        let others = vec![object("v1", "ConfigMap", "b", "u2", Some("u1"))];
        let tree = build(&entries, &live, &others);
        assert!(tree[0].count() <= 3, "{:?}", tree[0]);
    }

    #[test]
    fn problems_only_kinds_and_pages() {
        let mut entries = Vec::new();
        let mut live = Vec::new();
        for i in 0..250 {
            entries.push(entry(&format!("shop_c{i:03}__ConfigMap"), "v1"));
            live.push(object(
                "v1",
                "ConfigMap",
                &format!("c{i:03}"),
                &format!("c{i}"),
                None,
            ));
        }
        entries.push(entry("shop_web_apps_Deployment", "v1"));
        live.push(degraded_deployment());
        let tree = build(&entries, &live, &[]);
        let all = page(tree.clone(), &TreeQuery::default());
        assert_eq!((all.page, all.pages, all.shown), (1, 3, 251));
        assert_eq!(all.groups.len(), 1, "the first page holds ConfigMaps only");
        assert_eq!(all.groups[0].1.len(), 100);
        assert_eq!(
            all.kinds,
            [
                ("ConfigMap".to_string(), 250),
                ("Deployment".to_string(), 1)
            ]
        );
        assert_eq!(all.summary, [("Degraded", 1), ("Healthy", 250)]);
        let last = page(
            tree.clone(),
            &TreeQuery {
                page: 3,
                ..TreeQuery::default()
            },
        );
        assert_eq!(last.groups.len(), 2);
        let problems = page(
            tree.clone(),
            &TreeQuery {
                problems: true,
                ..TreeQuery::default()
            },
        );
        assert_eq!((problems.shown, problems.pages), (1, 1));
        assert_eq!(problems.groups[0].0, "Deployment");
        let kind = page(
            tree,
            &TreeQuery {
                kind: "ConfigMap".into(),
                page: 2,
                ..TreeQuery::default()
            },
        );
        assert_eq!((kind.shown, kind.page), (250, 2));
    }

    #[test]
    fn pods_and_sealed_secrets_have_health() {
        let pod = |phase: &str, ready: &str| {
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                   "status": {"phase": phase, "conditions": [{"type": "Ready", "status": ready}]}})
        };
        assert_eq!(node_health(&pod("Running", "True")).label, "Healthy");
        assert_eq!(node_health(&pod("Running", "False")).label, "Progressing");
        assert_eq!(node_health(&pod("Failed", "False")).label, "Degraded");
        assert_eq!(node_health(&pod("Succeeded", "False")).label, "Healthy");
        let sealed = json!({"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
                            "metadata": {"name": "s"}});
        assert_eq!(node_health(&sealed).label, "Progressing");
    }
}
