//! The kustomization graph: which kustomization includes which directory and file, and which
//! of them rename or move objects.
//!
//! Why: a finding about a rendered object is only useful if it names the file a person edits.
//! The graph maps a rendered object back to the base file that defines it and to the overlays
//! on the way (`namePrefix`, `nameSuffix`, `namespace`), and tells which kustomizations are
//! bases of others: those are linted through their overlays only, because a base without a
//! namespace is normal and only becomes a problem if the overlay gives none either.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Result, anyhow};
use serde_json::Value;

use sealed_secrets_core::documents::parse_local_documents;

use super::{docs::Document, walk::kustomization_file};
use crate::io::describe_io_error;

/// Fields whose entries name other kustomizations (or resource files).
const INCLUDE_FIELDS: &[&str] = &["resources", "bases", "components"];

/// One kustomization file, read.
#[derive(Debug)]
pub struct Kustomization {
    /// The kustomization file (canonical).
    pub file: PathBuf,
    /// Its text and parsed value, for key lines (`None` when it does not parse).
    pub doc: Option<Document>,
    /// Kustomization directories it includes (canonical).
    pub dirs: Vec<PathBuf>,
    /// Local files it refers to anywhere: resources, patches, generators... (canonical).
    pub files: BTreeSet<PathBuf>,
    /// The files among them that are resources (whole objects, not patches).
    pub resources: BTreeSet<PathBuf>,
}

impl Kustomization {
    /// A top-level string field such as `namePrefix`.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.doc.as_ref()?.value.get(key)?.as_str()
    }

    /// Line of a top-level key.
    pub fn line_of(&self, key: &str) -> Option<usize> {
        self.doc.as_ref().map(|d| d.key_line(&[key]))
    }

    /// Names of its `secretGenerator` entries.
    pub fn secret_generators(&self) -> Vec<&str> {
        self.doc
            .as_ref()
            .and_then(|d| d.value.get("secretGenerator"))
            .and_then(Value::as_array)
            .map(|entries| {
                entries
                    .iter()
                    .filter_map(|e| e.get("name").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Every kustomization reachable from the walked ones.
#[derive(Debug, Default)]
pub struct Graph {
    /// By canonical directory.
    pub nodes: BTreeMap<PathBuf, Kustomization>,
}

impl Graph {
    /// Loads the kustomizations in `dirs` (canonical) and everything they include.
    pub fn load(dirs: &[PathBuf]) -> Result<Self> {
        let mut graph = Self::default();
        let mut pending: Vec<PathBuf> = dirs.to_vec();
        while let Some(dir) = pending.pop() {
            if graph.nodes.contains_key(&dir) {
                continue;
            }
            let Some(file) = kustomization_file(&dir) else {
                continue;
            };
            let node = read_kustomization(&dir, &file)?;
            pending.extend(node.dirs.iter().cloned());
            graph.nodes.insert(dir, node);
        }
        Ok(graph)
    }

    /// The walked kustomizations that no other kustomization includes: those get rendered.
    pub fn roots(&self, walked: &[PathBuf]) -> Vec<PathBuf> {
        let included: BTreeSet<&PathBuf> =
            self.nodes.values().flat_map(|k| k.dirs.iter()).collect();
        walked
            .iter()
            .filter(|dir| self.nodes.contains_key(*dir) && !included.contains(dir))
            .cloned()
            .collect()
    }

    /// Every file some kustomization refers to: not linted on its own.
    pub fn owned_files(&self) -> BTreeSet<PathBuf> {
        self.nodes
            .values()
            .flat_map(|k| k.files.iter().cloned())
            .collect()
    }

    /// Whether some kustomization includes `file` as a resource (not as a patch).
    pub fn is_resource(&self, file: &Path) -> bool {
        self.nodes.values().any(|k| k.resources.contains(file))
    }

    /// The kustomizations `root` includes, itself first, each once.
    pub fn closure(&self, root: &Path) -> Vec<&Kustomization> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        let mut pending = vec![root.to_path_buf()];
        while let Some(dir) = pending.pop() {
            if !seen.insert(dir.clone()) {
                continue;
            }
            if let Some(node) = self.nodes.get(&dir) {
                out.push(node);
                pending.extend(node.dirs.iter().rev().cloned());
            }
        }
        out
    }

    /// The include path from `root` down to the kustomization that refers to `file`.
    pub fn chain_to_file(&self, root: &Path, file: &Path) -> Option<Vec<&Kustomization>> {
        let mut path = Vec::new();
        let mut seen = BTreeSet::new();
        self.search(root, file, &mut path, &mut seen)
            .then_some(path)
    }

    fn search<'a>(
        &'a self,
        dir: &Path,
        file: &Path,
        path: &mut Vec<&'a Kustomization>,
        seen: &mut BTreeSet<PathBuf>,
    ) -> bool {
        let Some(node) = self.nodes.get(dir) else {
            return false;
        };
        if !seen.insert(dir.to_path_buf()) {
            return false;
        }
        path.push(node);
        if node.files.contains(file) {
            return true;
        }
        for child in &node.dirs {
            if self.search(child, file, path, seen) {
                return true;
            }
        }
        path.pop();
        false
    }
}

pub fn read_kustomization(dir: &Path, file: &Path) -> Result<Kustomization> {
    let bytes = fs::read(file).map_err(|e| anyhow!(describe_io_error("read", file, &e)))?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let doc = parse_local_documents(text.as_bytes())
        .ok()
        .and_then(|docs| docs.into_iter().next())
        .filter(Value::is_object)
        .map(|value| Document {
            value,
            first_line: 1,
            text,
        });
    let mut node = Kustomization {
        file: file.to_path_buf(),
        doc: None,
        dirs: Vec::new(),
        files: BTreeSet::new(),
        resources: BTreeSet::new(),
    };
    if let Some(Document {
        value: Value::Object(map),
        ..
    }) = &doc
    {
        for (key, value) in map {
            let include = INCLUDE_FIELDS.contains(&key.as_str());
            collect_refs(dir, value, include, &mut node);
        }
    }
    node.doc = doc;
    Ok(node)
}

/// Records every string under `value` that names a local file (or, in include fields, a
/// kustomization directory).
fn collect_refs(dir: &Path, value: &Value, include: bool, node: &mut Kustomization) {
    match value {
        Value::String(s) => {
            if s.is_empty() || s.len() > 4096 || s.contains('\n') || s.contains("://") {
                return;
            }
            // Generators accept `key=path`; the path part is what exists on disk.
            let candidate = s.rsplit_once('=').map_or(s.as_str(), |(_, p)| p);
            let Ok(path) = fs::canonicalize(dir.join(candidate)) else {
                return;
            };
            if path.is_file() {
                if include {
                    node.resources.insert(path.clone());
                }
                node.files.insert(path);
            } else if include && path.is_dir() && kustomization_file(&path).is_some() {
                node.dirs.push(path);
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|v| collect_refs(dir, v, include, node)),
        Value::Object(map) => map
            .values()
            .for_each(|v| collect_refs(dir, v, include, node)),
        _ => {}
    }
}
