//! The objects the suites look at: the names of the SealedSecret CRD and the sealing-key
//! label, and pure readers of what kubectl prints (YAML, Secret data, PEM bodies). Nothing here
//! runs a process.

use std::{fs, path::Path};

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use serde_json::Value;

/// The name of the SealedSecret CRD.
pub const SEALED_SECRET_CRD: &str = "sealedsecrets.bitnami.com";
/// The label that marks sealing-key Secrets.
pub const KEY_LABEL: &str = "sealedsecrets.bitnami.com/sealed-secrets-key";
/// The label selector for active sealing keys.
pub const ACTIVE_KEY_SELECTOR: &str = "sealedsecrets.bitnami.com/sealed-secrets-key=active";

/// Decodes every `data` entry of a Secret (missing `data` is an empty map).
pub fn secret_data(secret: &Value) -> Result<std::collections::BTreeMap<String, Vec<u8>>, String> {
    let mut out = std::collections::BTreeMap::new();
    if let Some(map) = secret["data"].as_object() {
        for (k, v) in map {
            let text = v.as_str().unwrap_or_default();
            let bytes = BASE64
                .decode(text)
                .map_err(|e| format!("data[{k}] is not base64: {e}"))?;
            out.insert(k.clone(), bytes);
        }
    }
    Ok(out)
}

/// The base64 body of the first PEM block in `pem` (headers and whitespace dropped), for
/// comparing certificates regardless of line wrapping.
pub fn pem_body(pem: &str) -> String {
    pem.lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect()
}

/// Parses a YAML file with one object (leading `---` allowed) into JSON.
pub fn read_yaml(path: &Path) -> Value {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse_yaml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Parses YAML text with one object (leading `---` allowed) into JSON.
pub fn parse_yaml(text: &str) -> Result<Value, String> {
    let docs: Vec<Option<Value>> =
        serde_saphyr::from_multiple(text).map_err(|e| format!("invalid YAML: {e}"))?;
    let mut docs = docs.into_iter().flatten().filter(|d| !d.is_null());
    let first = docs.next().ok_or("no YAML document")?;
    if docs.next().is_some() {
        return Err("more than one YAML document".into());
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_bodies_ignore_wrapping() {
        let a = "-----BEGIN CERTIFICATE-----\nAAAA\nBBBB\n-----END CERTIFICATE-----\n";
        let b = "-----BEGIN CERTIFICATE-----\r\nAAAABBBB\r\n-----END CERTIFICATE-----";
        assert_eq!(pem_body(a), "AAAABBBB");
        assert_eq!(pem_body(a), pem_body(b));
    }

    #[test]
    fn yaml_with_leading_separator() {
        let v = parse_yaml("---\napiVersion: v1\nkind: Secret\ndata:\n  a: \"\"\n").unwrap();
        assert_eq!(v["kind"], "Secret");
        assert_eq!(v["data"]["a"], "");
        assert!(parse_yaml("a: 1\n---\nb: 2\n").is_err());
    }
}
