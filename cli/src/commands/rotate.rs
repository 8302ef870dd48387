//! `--re-encrypt` (and the deprecated `--rotate`) through the controller: every SealedSecret of
//! the input is posted to `/v1/rotate` through the API server's service proxy, and the answers
//! are written like the offline form writes (`-w`, else `-f` in place, else stdout; see
//! [`super::reencrypt::Output`]).
//!
//! The answer is upstream's: JSON without `apiVersion`/`kind` (put back here), with
//! `creationTimestamp`, `deletionTimestamp` and `generation` cleared as upstream kubeseal does.
//! One deliberate difference (docs/decisions.md): an upstream controller replaces the template's
//! metadata with the outer metadata, dropping template labels and annotations; kubeseal puts the
//! input template's labels and annotations back, with the scope annotations following the
//! answer's outer metadata (the scope the values were sealed for).

use std::collections::BTreeMap;

use anyhow::{Result, anyhow, bail};
use sealed_secrets_core::{
    scope::Scope,
    sealed_secret::{
        API_VERSION, CERTIFICATE_ANNOTATION, KIND, LAST_APPLIED_ANNOTATIONS, SealedSecret,
        renamed_to_sealed_for,
    },
};
use serde_json::Value;

use crate::{
    args::Args,
    cluster::Controller,
    commands::{
        reencrypt::{Output, read_sealed_input},
        validate::{rate_limited, sealed_documents},
    },
};

/// Makes the template's labels and annotations those of the input's template again, the scope
/// annotations set to the (re-encrypted) object's own scope, and drops `managedFields` from the
/// template (an upstream controller copies the outer ones in).
pub fn restore_template_metadata(input: &SealedSecret, rotated: &mut SealedSecret) {
    let original = &input.spec.template.metadata;
    let scope = Scope::from_annotations(rotated.metadata.annotations.as_ref());
    let target = &mut rotated.spec.template.metadata;
    target.labels = original.labels.clone().filter(|l| !l.is_empty());
    let mut annotations: BTreeMap<String, String> =
        original.annotations.clone().unwrap_or_default();
    for key in LAST_APPLIED_ANNOTATIONS {
        annotations.remove(*key);
    }
    scope.write_annotations(&mut annotations);
    target.annotations = (!annotations.is_empty()).then_some(annotations);
    target.managed_fields = None;
}

/// Turns the controller's answer into the SealedSecret to write.
pub(crate) fn rotated_object(input: &SealedSecret, body: &[u8]) -> Result<Value> {
    let mut value: Value = serde_json::from_slice(body)
        .map_err(|e| anyhow!("the controller's answer is not JSON: {e}"))?;
    let object = value
        .as_object_mut()
        .ok_or_else(|| anyhow!("the controller's answer is not a JSON object"))?;
    object.insert("apiVersion".into(), Value::String(API_VERSION.into()));
    object.insert("kind".into(), Value::String(KIND.into()));
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in ["creationTimestamp", "deletionTimestamp", "generation"] {
            meta.remove(field);
        }
    }
    let mut rotated = SealedSecret::from_value(value)
        .map_err(|e| anyhow!("the controller's answer is not a SealedSecret: {e}"))?;
    rotated.status = None;
    restore_template_metadata(input, &mut rotated);
    Ok(rotated.to_upstream_value())
}

/// Puts the name and namespace written in the input back on the re-encrypted object.
fn keep_written_identity(input: &Value, rotated: &mut Value) {
    for pointer in ["/metadata", "/spec/template/metadata"] {
        let Some(target) = rotated.pointer_mut(pointer).and_then(Value::as_object_mut) else {
            continue;
        };
        for field in ["name", "namespace"] {
            match input.pointer(&format!("{pointer}/{field}")) {
                Some(value) => {
                    target.insert(field.into(), value.clone());
                }
                None if pointer == "/metadata" => {
                    target.remove(field);
                }
                None => {}
            }
        }
    }
}

/// Records the certificate the object is now sealed with.
fn record_certificate(rotated: &mut Value, fingerprint: &str) {
    if let Some(meta) = rotated.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(map) = annotations.as_object_mut() {
            map.insert(CERTIFICATE_ANNOTATION.into(), Value::from(fingerprint));
        }
    }
}

/// Runs the mode.
pub fn run(args: &Args) -> Result<()> {
    let controller = Controller::connect(args, "cannot re-encrypt secret")?;
    let routed = args
        .sealed_secret_file
        .as_deref()
        .or(args.secret_file.as_deref());
    let checked = crate::env::guard::check_online(args, routed, Some(&controller))?;
    let (source, bytes) = read_sealed_input(args)?;
    let output = Output::plan(args, &bytes)?;
    let docs = sealed_documents(&source, &bytes)?;
    let mut out = Vec::with_capacity(docs.len());
    for (doc, sealed) in docs {
        let name = sealed.metadata.name.as_deref().unwrap_or("");
        let body = serde_json::to_vec(&renamed_to_sealed_for(&doc).unwrap_or_else(|| doc.clone()))?;
        let reply = controller
            .post("/v1/rotate", body)
            .map_err(|e| anyhow!("cannot re-encrypt secret: {e}"))?;
        match reply.status {
            200..=299 => {
                let mut rotated = rotated_object(&sealed, &reply.body)
                    .map_err(|e| anyhow!("cannot re-encrypt secret {name:?}: {e}"))?;
                keep_written_identity(&doc, &mut rotated);
                if let Some((_, fingerprint)) = &checked {
                    record_certificate(&mut rotated, fingerprint);
                }
                out.push(rotated);
            }
            409 => bail!("unable to rotate secret: {name}"),
            429 => bail!(rate_limited("cannot re-encrypt secret", &reply)),
            500 if reply.body.iter().all(u8::is_ascii_whitespace) => bail!(
                "cannot re-encrypt secret: {}; the controller could not open or re-seal {name:?} \
                 (no key of the controller opens it, or it is malformed; the controller's log \
                 says which)",
                controller.failure(&reply, "post", "create")
            ),
            _ => bail!(
                "cannot re-encrypt secret: {}",
                controller.failure(&reply, "post", "create")
            ),
        }
    }
    output.write(&out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealed_secrets_core::sealed_secret::SEALED_FOR_ANNOTATION;
    use serde_json::json;

    fn sealed(value: Value) -> SealedSecret {
        SealedSecret::from_value(value).unwrap()
    }

    #[test]
    fn upstream_answer_gets_type_meta_and_template_labels_back() {
        let input = sealed(json!({
            "apiVersion": API_VERSION, "kind": KIND,
            "metadata": {"name": "db", "namespace": "shop",
                         "annotations": {"sealedsecrets.bitnami.com/namespace-wide": "true"}},
            "spec": {"template": {"metadata": {
                "name": "db", "namespace": "shop",
                "labels": {"app": "shop"},
                "annotations": {"team": "a", "sealedsecrets.bitnami.com/cluster-wide": "true"}}},
                "encryptedData": {"k": "old"}}
        }));
        // What an upstream controller answers: the template metadata is a copy of the outer one.
        let answer = json!({
            "metadata": {"name": "db", "namespace": "shop", "creationTimestamp": null,
                         "generation": 3,
                         "annotations": {"sealedsecrets.bitnami.com/namespace-wide": "true"}},
            "spec": {"template": {"metadata": {
                "name": "db", "namespace": "shop", "creationTimestamp": null,
                "managedFields": [{"manager": "kubectl"}],
                "annotations": {"sealedsecrets.bitnami.com/namespace-wide": "true"}}},
                "encryptedData": {"k": "new"}}
        });
        let out = rotated_object(&input, answer.to_string().as_bytes()).unwrap();
        assert_eq!(out["apiVersion"], API_VERSION);
        assert_eq!(out["kind"], KIND);
        assert!(out["metadata"].get("creationTimestamp").is_none());
        assert!(out["metadata"].get("generation").is_none());
        assert_eq!(out["spec"]["encryptedData"]["k"], "new");
        let template = &out["spec"]["template"]["metadata"];
        assert_eq!(template["labels"], json!({"app": "shop"}));
        assert_eq!(
            template["annotations"],
            json!({"team": "a", "sealedsecrets.bitnami.com/namespace-wide": "true"})
        );
        assert!(template.get("managedFields").is_none());
    }

    #[test]
    fn files_sealed_for_a_rendered_name_rotate_under_it_and_keep_their_written_name() {
        let doc = json!({
            "apiVersion": API_VERSION, "kind": KIND,
            "metadata": {"name": "db", "namespace": "shop",
                         "annotations": {SEALED_FOR_ANNOTATION: "prod/db-prod"}},
            "spec": {"template": {"metadata": {"name": "db", "namespace": "shop"}},
                     "encryptedData": {"k": "v"}}
        });
        let sent = renamed_to_sealed_for(&doc).unwrap();
        assert_eq!(sent["metadata"]["name"], "db-prod");
        assert_eq!(sent["metadata"]["namespace"], "prod");
        let mut answer = sent.clone();
        answer["spec"]["template"]["metadata"] = json!({"name": "db-prod", "namespace": "prod"});
        keep_written_identity(&doc, &mut answer);
        record_certificate(&mut answer, "SHA256:new");
        assert_eq!(answer["metadata"]["name"], "db");
        assert_eq!(answer["metadata"]["namespace"], "shop");
        assert_eq!(answer["spec"]["template"]["metadata"]["name"], "db");
        assert_eq!(
            answer["metadata"]["annotations"][CERTIFICATE_ANNOTATION],
            "SHA256:new"
        );
    }

    #[test]
    fn our_controllers_answer_is_unchanged() {
        let value = json!({
            "apiVersion": API_VERSION, "kind": KIND,
            "metadata": {"name": "db", "namespace": "shop"},
            "spec": {"template": {"metadata": {"name": "db", "namespace": "shop",
                "labels": {"app": "shop"}}, "type": "Opaque"},
                "encryptedData": {"k": "v"}}
        });
        let input = sealed(value.clone());
        let out = rotated_object(&input, value.to_string().as_bytes()).unwrap();
        assert_eq!(out, input.to_upstream_value());
    }
}
