//! Reporter protection at rest: the complainant's identity sealed with AES-256-GCM (RustCrypto's
//! `aes-gcm`), the complaint id as associated data (a sealed identity cannot be moved to another
//! row), a key id on each row so keys rotate (new rows take the active key, old rows open with
//! theirs); and an HMAC-SHA256 fingerprint of who complains, so the same complainant's filings
//! merge and a citizen finds their own without the identity being stored in clear.

use std::collections::BTreeMap;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::domain::{Identity, Sealed};

pub struct Vault {
    active: String,
    keys: BTreeMap<String, Aes256Gcm>,
    fingerprint_key: Vec<u8>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys.
        f.debug_struct("Vault")
            .field("active", &self.active)
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn decode_key(b64: &str, what: &str) -> Result<Vec<u8>, String> {
    let k = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| format!("{what} must be base64"))?;
    if k.len() != 32 {
        return Err(format!(
            "{what} must be 32 bytes (base64 of 32 random bytes)"
        ));
    }
    Ok(k)
}

/// The associated data of a sealed text: the complaint's id and what it is, so that an
/// identity and a text never open as each other.
fn text_aad(id: Uuid) -> Vec<u8> {
    let mut aad = id.as_bytes().to_vec();
    aad.extend_from_slice(b"/description");
    aad
}

impl Vault {
    /// Keys by id (base64 of 32 bytes each), the id new rows are sealed with, and the
    /// fingerprint key (base64 of 32 bytes).
    pub fn new(
        keys: &BTreeMap<String, String>,
        active: &str,
        fingerprint_key: &str,
    ) -> Result<Vault, String> {
        let mut ciphers = BTreeMap::new();
        for (id, b64) in keys {
            let k = decode_key(b64, &format!("domain.keys.{id}"))?;
            let c = Aes256Gcm::new_from_slice(&k).map_err(|e| e.to_string())?;
            ciphers.insert(id.clone(), c);
        }
        if !ciphers.contains_key(active) {
            return Err(format!(
                "domain.active_key {active:?} is not among domain.keys"
            ));
        }
        Ok(Vault {
            active: active.to_string(),
            keys: ciphers,
            fingerprint_key: decode_key(fingerprint_key, "domain.fingerprint_key")?,
        })
    }

    pub fn active_key(&self) -> &str {
        &self.active
    }

    /// Seals `identity` for the complaint `id` with the active key.
    pub fn seal(&self, id: Uuid, identity: &Identity) -> anyhow::Result<Sealed> {
        self.seal_bytes(&serde_json::to_vec(identity)?, id.as_bytes())
    }

    /// Seals the complainant's own words (the filed description) for the complaint `id`: the
    /// row keeps them masked in clear, the complainant and inspectors read them unsealed.
    pub fn seal_text(&self, id: Uuid, text: &str) -> anyhow::Result<Sealed> {
        self.seal_bytes(text.as_bytes(), &text_aad(id))
    }

    /// Opens the words sealed with [`Vault::seal_text`].
    pub fn open_text(&self, id: Uuid, s: &Sealed) -> anyhow::Result<String> {
        let plain = self.open_bytes(s, &text_aad(id))?;
        Ok(String::from_utf8(plain)?)
    }

    fn seal_bytes(&self, plain: &[u8], aad: &[u8]) -> anyhow::Result<Sealed> {
        let cipher = &self.keys[&self.active];
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(&nonce, Payload { msg: plain, aad })
            .map_err(|_| anyhow::anyhow!("sealing failed"))?;
        Ok(Sealed {
            key_id: self.active.clone(),
            nonce: nonce.to_vec(),
            cipher: sealed,
        })
    }

    /// Opens the identity sealed for complaint `id`, with the key it names.
    pub fn open(&self, id: Uuid, s: &Sealed) -> anyhow::Result<Identity> {
        Ok(serde_json::from_slice(&self.open_bytes(s, id.as_bytes())?)?)
    }

    fn open_bytes(&self, s: &Sealed, aad: &[u8]) -> anyhow::Result<Vec<u8>> {
        let cipher = self
            .keys
            .get(&s.key_id)
            .ok_or_else(|| anyhow::anyhow!("key {:?} is not configured", s.key_id))?;
        let nonce: [u8; 12] = s
            .nonce
            .as_slice()
            .try_into()
            .map_err(|_| anyhow::anyhow!("a sealed value with a bad nonce"))?;
        cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &s.cipher,
                    aad,
                },
            )
            .map_err(|_| anyhow::anyhow!("the sealed value does not open (key or row mismatch)"))
    }

    /// HMAC-SHA256 of `what` (hex): equal inputs give equal fingerprints, and nothing is
    /// learned of the input without the key.
    pub fn fingerprint(&self, what: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.fingerprint_key)
            .expect("HMAC takes any key length");
        mac.update(what.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    const K2: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

    fn vault(active: &str) -> Vault {
        let keys = BTreeMap::from([
            ("k1".to_string(), K1.to_string()),
            ("k2".to_string(), K2.to_string()),
        ]);
        Vault::new(&keys, active, K2).unwrap()
    }

    fn identity() -> Identity {
        Identity {
            name: "张三".into(),
            phone: "13812345678".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_sealed_identity_opens_with_its_key_only_for_its_row() {
        let v = vault("k1");
        let id = Uuid::now_v7();
        let s = v.seal(id, &identity()).unwrap();
        assert_eq!(s.key_id, "k1");
        let text = String::from_utf8_lossy(&s.cipher);
        assert!(!text.contains("13812345678") && !text.contains("张三"));
        assert_eq!(v.open(id, &s).unwrap(), identity());
        assert!(
            v.open(Uuid::now_v7(), &s).is_err(),
            "bound to its complaint"
        );
        // Rotation: the new active key seals new rows; the old rows still open.
        let rotated = vault("k2");
        assert_eq!(rotated.open(id, &s).unwrap(), identity());
        assert_eq!(rotated.seal(id, &identity()).unwrap().key_id, "k2");
        let s2 = v.seal(id, &identity()).unwrap();
        assert_ne!(s.nonce, s2.nonce, "a fresh nonce each time");
    }

    #[test]
    fn a_sealed_text_opens_only_as_its_complaints_text() {
        let v = vault("k1");
        let id = Uuid::now_v7();
        let s = v.seal_text(id, "我是张三, 电话13812345678").unwrap();
        assert!(!String::from_utf8_lossy(&s.cipher).contains("13812345678"));
        assert_eq!(v.open_text(id, &s).unwrap(), "我是张三, 电话13812345678");
        assert!(v.open_text(Uuid::now_v7(), &s).is_err());
        let identity = v.seal(id, &identity()).unwrap();
        assert!(
            v.open_text(id, &identity).is_err(),
            "an identity never opens as a text"
        );
        assert!(v.open(id, &s).is_err(), "nor a text as an identity");
    }

    #[test]
    fn fingerprints_are_stable_and_keyed() {
        let v = vault("k1");
        assert_eq!(v.fingerprint("phone:138"), v.fingerprint("phone:138"));
        assert_ne!(v.fingerprint("phone:138"), v.fingerprint("phone:139"));
        assert_eq!(v.fingerprint("x").len(), 64);
        assert!(Vault::new(&BTreeMap::new(), "k1", K1).is_err());
        let short = BTreeMap::from([("k1".to_string(), "c2hvcnQ=".to_string())]);
        assert!(Vault::new(&short, "k1", K1)
            .unwrap_err()
            .contains("32 bytes"));
        assert!(!format!("{v:?}").contains(K1));
    }
}
