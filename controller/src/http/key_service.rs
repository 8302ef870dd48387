//! The port between the HTTP API and the keys: what the handlers need, owned by the HTTP layer
//! so that the key ring (the domain) never depends on the transport. The wiring
//! ([`crate::app`]) implements it for [`crate::keyring::KeyRing`].

use sealed_secrets_core::{crypto::Decrypter, keys::PublicKey};

/// What the API needs from the controller's key registry.
pub trait KeyService: Send + Sync + 'static {
    /// PEM `CERTIFICATE` of the newest (sealing) key, or `None` before any key exists.
    fn sealing_cert_pem(&self) -> Option<String>;
    /// Public key of the newest (sealing) key.
    fn sealing_public_key(&self) -> Option<PublicKey>;
    /// Trial decryption over every registered key.
    fn decrypter(&self) -> Box<dyn Decrypter + '_>;
}
