//! AES-256-GCM for every value the fleet table holds: the item's key (`pk`) is the associated
//! data, so a ciphertext copied into another item does not open there.
//!
//! Keys come from the secret's `token_store_keys`: a list of base64 32-byte keys, the first of
//! which seals and any of which opens, so that a key can be rotated in without a flag day.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The format version in the first byte of every sealed value.
const VERSION: u8 = 1;

/// Why `token_store_keys` cannot be used. Never quotes a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The secret has no `token_store_keys`, or an empty list.
    #[error("token_store_keys is missing or empty")]
    Missing,
    /// A key is not base64 of exactly 32 bytes.
    #[error("token_store_keys[{0}] is not base64 of 32 bytes")]
    Invalid(usize),
}

/// A value that does not open with any key: tampered with, moved to another item, or sealed
/// with a key no longer listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a stored value does not decrypt with any of token_store_keys")]
pub struct Unopenable;

/// The table's keys. `Debug` shows how many, never a key.
pub struct Sealer {
    keys: Vec<LessSafeKey>,
    random: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer({} keys, [redacted])", self.keys.len())
    }
}

impl Sealer {
    /// Keys from their base64 forms, the sealing key first.
    pub fn from_base64<S: AsRef<str>>(keys: &[S]) -> Result<Self, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::Missing);
        }
        let keys = keys
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let bytes = STANDARD
                    .decode(text.as_ref().trim())
                    .map_err(|_| KeyError::Invalid(i))?;
                let key =
                    UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| KeyError::Invalid(i))?;
                Ok(LessSafeKey::new(key))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            keys,
            random: SystemRandom::new(),
        })
    }

    /// `plaintext` sealed for the item `pk`: version, random nonce, ciphertext and tag.
    pub fn seal(&self, pk: &str, plaintext: &[u8]) -> Result<Vec<u8>, Unopenable> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).map_err(|_| Unopenable)?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + 16);
        sealed.push(VERSION);
        sealed.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        self.keys[0]
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(pk.as_bytes()),
                &mut body,
            )
            .map_err(|_| Unopenable)?;
        sealed.extend_from_slice(&body);
        Ok(sealed)
    }

    /// The plaintext of `sealed`, if it was sealed for `pk` with one of the keys.
    pub fn open(&self, pk: &str, sealed: &[u8]) -> Result<Vec<u8>, Unopenable> {
        let (&version, rest) = sealed.split_first().ok_or(Unopenable)?;
        if version != VERSION || rest.len() < NONCE_LEN {
            return Err(Unopenable);
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| Unopenable)?;
        self.keys
            .iter()
            .find_map(|key| {
                let mut buffer = body.to_vec();
                key.open_in_place(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(pk.as_bytes()),
                    &mut buffer,
                )
                .ok()
                .map(|plain| plain.to_vec())
            })
            .ok_or(Unopenable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "Hx4dHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=";

    #[test]
    fn a_value_opens_only_for_its_own_item() {
        let sealer = Sealer::from_base64(&[K1]).expect("keys");
        let sealed = sealer.seal("idp#a#github", b"gho_secret").expect("sealed");
        assert!(!sealed.windows(10).any(|w| w == b"gho_secret"));
        assert_eq!(
            sealer.open("idp#a#github", &sealed).expect("opens"),
            b"gho_secret"
        );
        assert_eq!(sealer.open("idp#b#github", &sealed), Err(Unopenable));
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(sealer.open("idp#a#github", &tampered), Err(Unopenable));
    }

    #[test]
    fn the_first_key_seals_and_any_key_opens() {
        let old = Sealer::from_base64(&[K1]).expect("keys");
        let sealed_with_old = old.seal("pk", b"v").expect("sealed");
        let rotated = Sealer::from_base64(&[K2, K1]).expect("keys");
        assert_eq!(rotated.open("pk", &sealed_with_old).expect("opens"), b"v");
        let sealed_with_new = rotated.seal("pk", b"w").expect("sealed");
        assert_eq!(old.open("pk", &sealed_with_new), Err(Unopenable));
    }

    #[test]
    fn unusable_keys_are_named_by_position_only() {
        assert_eq!(
            Sealer::from_base64::<&str>(&[]).err(),
            Some(KeyError::Missing)
        );
        let error = Sealer::from_base64(&[K1, "c2hvcnQ="]).expect_err("refused");
        assert_eq!(error, KeyError::Invalid(1));
        assert!(!error.to_string().contains("c2hvcnQ"));
        assert!(!format!("{:?}", Sealer::from_base64(&[K1]).expect("keys")).contains(K1));
    }
}
