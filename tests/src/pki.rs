//! The test cluster's PKI, made fresh for each cluster with rcgen, and the admin kubeconfig
//! that embeds it.

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};

/// The test cluster's keys and certificates, all PEM. Keys are ECDSA P-256 in PKCS#8
/// (`PRIVATE KEY`), which kube-apiserver, kubectl and kube-rs all accept.
#[derive(Clone)]
pub struct Pki {
    /// The CA certificate (trusted for serving and client certificates).
    pub ca_cert: String,
    /// The apiserver's serving certificate: SANs 127.0.0.1 and localhost, serverAuth.
    pub serving_cert: String,
    /// Its key.
    pub serving_key: String,
    /// The service-account token verification key (`PUBLIC KEY`).
    pub sa_public_key: String,
    /// The service-account token signing key.
    pub sa_private_key: String,
    /// The admin client certificate: CN `sealed-secrets-e2e-admin`, O `system:masters`.
    pub admin_cert: String,
    /// Its key.
    pub admin_key: String,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pki { .. }")
    }
}

impl Pki {
    /// Makes a fresh CA, serving certificate, service-account key pair and admin certificate.
    pub fn generate() -> Result<Pki, String> {
        use rcgen::{
            BasicConstraints, CertificateParams, DistinguishedName, DnType,
            ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
            PKCS_ECDSA_P256_SHA256, date_time_ymd,
        };
        let err = |what: &str| {
            let what = what.to_string();
            move |e: rcgen::Error| format!("rcgen ({what}): {e}")
        };
        let new_key =
            |what: &str| KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(err(what));
        let params =
            |sans: Vec<String>, cn: &str, org: Option<&str>| -> Result<CertificateParams, String> {
                let mut params = CertificateParams::new(sans).map_err(err(cn))?;
                let mut dn = DistinguishedName::new();
                dn.push(DnType::CommonName, cn);
                if let Some(org) = org {
                    dn.push(DnType::OrganizationName, org);
                }
                params.distinguished_name = dn;
                params.not_before = date_time_ymd(2020, 1, 1);
                params.not_after = date_time_ymd(2099, 12, 31);
                Ok(params)
            };

        let ca_key = new_key("ca")?;
        let mut ca_params = params(Vec::new(), "sealed-secrets-e2e-ca", None)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(err("ca"))?;
        let issuer = Issuer::from_params(&ca_params, &ca_key);

        let serving_key = new_key("serving")?;
        let mut serving = params(
            vec!["127.0.0.1".into(), "localhost".into()],
            "kube-apiserver",
            None,
        )?;
        serving.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        serving.use_authority_key_identifier_extension = true;
        let serving_cert = serving
            .signed_by(&serving_key, &issuer)
            .map_err(err("serving"))?;

        let admin_key = new_key("admin")?;
        let mut admin = params(
            Vec::new(),
            "sealed-secrets-e2e-admin",
            Some("system:masters"),
        )?;
        admin.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        admin.use_authority_key_identifier_extension = true;
        let admin_cert = admin.signed_by(&admin_key, &issuer).map_err(err("admin"))?;

        let sa_key = new_key("service-account")?;

        Ok(Pki {
            ca_cert: ca_cert.pem(),
            serving_cert: serving_cert.pem(),
            serving_key: serving_key.serialize_pem(),
            sa_public_key: sa_key.public_key_pem(),
            sa_private_key: sa_key.serialize_pem(),
            admin_cert: admin_cert.pem(),
            admin_key: admin_key.serialize_pem(),
        })
    }

    /// An admin kubeconfig for `server` with everything embedded.
    pub fn kubeconfig(&self, server: &str) -> String {
        let b64 = |s: &str| BASE64.encode(s.as_bytes());
        format!(
            "apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - name: e2e\n  \
               cluster:\n    \
                 server: {server}\n    \
                 certificate-authority-data: {ca}\n\
             users:\n\
             - name: e2e-admin\n  \
               user:\n    \
                 client-certificate-data: {cert}\n    \
                 client-key-data: {key}\n\
             contexts:\n\
             - name: e2e\n  \
               context:\n    \
                 cluster: e2e\n    \
                 user: e2e-admin\n    \
                 namespace: default\n\
             current-context: e2e\n",
            ca = b64(&self.ca_cert),
            cert = b64(&self.admin_cert),
            key = b64(&self.admin_key),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::{
        fs,
        process::{Command, Stdio},
        time::Duration,
    };

    use super::*;
    use crate::{
        http::{http_agent, http_get},
        names::free_port,
        objects::parse_yaml,
        process::kill_child,
        wait::wait_for,
    };

    /// The PKI is what the apiserver, kubectl and kube-rs need: a CA that signs a serving
    /// certificate for 127.0.0.1/localhost and a system:masters client certificate.
    #[test]
    fn pki_chains_and_tls_works_with_client_certificates() {
        let pki = Pki::generate().unwrap();
        assert!(pki.ca_cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(pki.sa_public_key.starts_with("-----BEGIN PUBLIC KEY-----"));
        assert!(
            pki.sa_private_key
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        assert!(pki.admin_key.starts_with("-----BEGIN PRIVATE KEY-----"));
        let kubeconfig = pki.kubeconfig("https://127.0.0.1:1");
        let parsed = parse_yaml(&kubeconfig).unwrap();
        assert_eq!(
            parsed["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:1"
        );
        assert_eq!(parsed["current-context"], "e2e");
        let ca = BASE64
            .decode(
                parsed["clusters"][0]["cluster"]["certificate-authority-data"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(ca, pki.ca_cert.as_bytes());
        // The agent accepts the material.
        http_agent(
            Duration::from_secs(1),
            Some((&pki.ca_cert, &pki.admin_cert, &pki.admin_key)),
        )
        .unwrap();
    }

    /// The admin agent trusts the CA, checks the 127.0.0.1 SAN and presents the client
    /// certificate, against `openssl s_server` demanding one (skipped without openssl).
    #[test]
    fn admin_agent_does_mutual_tls() {
        if Command::new("openssl").arg("version").output().is_err() {
            return;
        }
        let pki = Pki::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| {
            let path = dir.path().join(name);
            fs::write(&path, text).unwrap();
            path
        };
        let (ca, cert, key) = (
            file("ca.crt", &pki.ca_cert),
            file("s.crt", &pki.serving_cert),
            file("s.key", &pki.serving_key),
        );
        let port = free_port();
        let mut server = Command::new("openssl")
            .args([
                "s_server",
                "-quiet",
                "-www",
                "-Verify",
                "1",
                "-verify_return_error",
            ])
            .arg("-accept")
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .arg("-CAfile")
            .arg(&ca)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("https://127.0.0.1:{port}/readyz");
        let with_cert = http_agent(
            Duration::from_secs(5),
            Some((&pki.ca_cert, &pki.admin_cert, &pki.admin_key)),
        )
        .unwrap();
        let reply = wait_for("openssl s_server", Duration::from_secs(10), || {
            http_get(&with_cert, &url)
        });
        kill_child(&mut server);
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
}
