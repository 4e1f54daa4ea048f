//! AES-256-GCM for every value the fleet table holds: the item's key (`pk`) is the associated
//! data, so a ciphertext copied into another item does not open there.
//!
//! Keys come from one of two places, the first of the keys sealing and any of them opening, so
//! that a key can be rotated in without a flag day:
//!
//! - the keys secret (`TOKEN_STORE_KEYS_SECRET_ID`, which the template generates):
//!   `{"key": "<at least 43 characters>", "previous_keys": ["…"]}`, each text turned into an
//!   AES-256 key with HKDF-SHA256 ([`keys_from_secret`]). Secrets Manager's `GenerateSecretString`
//!   can write it (a random string under one JSON key) and it holds no base64 to get wrong;
//! - the credentials secret's `token_store_keys`, a list of base64 32-byte keys (before the
//!   template made the keys; still read when `TOKEN_STORE_KEYS_SECRET_ID` is unset, and beside
//!   it they still open what they sealed, so that moving to the keys secret loses no item).

use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::secret::SecretReadError;

/// The format version in the first byte of every sealed value.
const VERSION: u8 = 1;

/// Fewest characters of a key in the keys secret: 43 characters of the 62 letters and digits the
/// template's `GenerateSecretString` draws from carry 256 bits (the template makes 64, 381 bits).
pub const MIN_KEY_CHARS: usize = 43;

/// HKDF's salt and info for the keys secret's keys: fixed, so every environment derives the
/// same AES key from the same text; named, so that the key serves nothing else.
const HKDF_SALT: &[u8] = b"auth0-idp-proxy token table";
const HKDF_INFO: &[u8] = b"AES-256-GCM v1";

/// Where a key sits in the keys secret, to say which one is unusable without quoting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySlot {
    /// `key`, the sealing key.
    Key,
    /// `previous_keys` as a whole (not a list).
    PreviousKeys,
    /// `previous_keys[i]`.
    Previous(usize),
}

impl std::fmt::Display for KeySlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Key => f.write_str("\"key\""),
            Self::PreviousKeys => f.write_str("\"previous_keys\""),
            Self::Previous(i) => write!(f, "\"previous_keys\"[{i}]"),
        }
    }
}

/// Why the table's keys cannot be used. Never quotes a key.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyError {
    /// The credentials secret has no `token_store_keys`, or an empty list.
    #[error("token_store_keys is missing or empty")]
    Missing,
    /// A key of `token_store_keys` is not base64 of exactly 32 bytes.
    #[error("token_store_keys[{0}] is not base64 of 32 bytes")]
    Invalid(usize),
    /// The keys secret is not JSON (only a position: a message could quote it).
    #[error(
        "the TOKEN_STORE_KEYS_SECRET_ID secret is not JSON (error at line {line}, column {column})"
    )]
    Malformed {
        /// Line of the JSON error.
        line: usize,
        /// Column of the JSON error.
        column: usize,
    },
    /// The keys secret is JSON but not an object with a `key`.
    #[error("the TOKEN_STORE_KEYS_SECRET_ID secret has no \"key\"")]
    NoKey,
    /// A key of the keys secret is not a string of at least [`MIN_KEY_CHARS`] characters, or
    /// `previous_keys` is not a list.
    #[error(
        "{0} in the TOKEN_STORE_KEYS_SECRET_ID secret is not a string of at least 43 characters (a list of them for \"previous_keys\")"
    )]
    Weak(KeySlot),
    /// The keys secret could not be read.
    #[error("the TOKEN_STORE_KEYS_SECRET_ID secret cannot be read")]
    Unreadable(#[source] Arc<SecretReadError>),
}

/// The keys of the keys secret's JSON `text` (`{"key": "…", "previous_keys": ["…"]}`): `key`
/// seals, it and every one of `previous_keys` open. Each is a text of at least
/// [`MIN_KEY_CHARS`] characters, turned into an AES-256 key with HKDF-SHA256. The error names
/// the key at fault by its place, never by its value.
///
/// The one rule for that secret: the function reads it with this, and a check of a deployment
/// can validate the secret with it too.
pub fn keys_from_secret(text: &str) -> Result<Sealer, KeyError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| KeyError::Malformed {
        line: e.line(),
        column: e.column(),
    })?;
    let key = value.get("key").ok_or(KeyError::NoKey)?;
    let previous = match value.get("previous_keys") {
        None | Some(serde_json::Value::Null) => &[][..],
        Some(serde_json::Value::Array(list)) => list.as_slice(),
        Some(_) => return Err(KeyError::Weak(KeySlot::PreviousKeys)),
    };
    let derive = |slot: KeySlot, text: &serde_json::Value| {
        let text = text
            .as_str()
            .map(str::trim)
            .filter(|t| t.chars().count() >= MIN_KEY_CHARS)
            .ok_or(KeyError::Weak(slot))?;
        derive_key(text.as_bytes()).ok_or(KeyError::Weak(slot))
    };
    let keys = std::iter::once(derive(KeySlot::Key, key))
        .chain(
            previous
                .iter()
                .enumerate()
                .map(|(i, text)| derive(KeySlot::Previous(i), text)),
        )
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Sealer::from_keys(keys))
}

/// The AES-256-GCM key HKDF-SHA256 makes of `material`.
fn derive_key(material: &[u8]) -> Option<LessSafeKey> {
    let prk = Salt::new(HKDF_SHA256, HKDF_SALT).extract(material);
    let okm = prk.expand(&[HKDF_INFO], &AES_256_GCM).ok()?;
    Some(LessSafeKey::new(UnboundKey::from(okm)))
}

/// A value that does not open with any key: tampered with, moved to another item, or sealed
/// with a key no longer listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a stored value does not decrypt with any of the table's keys")]
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
    fn from_keys(keys: Vec<LessSafeKey>) -> Self {
        Self {
            keys,
            random: SystemRandom::new(),
        }
    }

    /// These keys, with `older`'s after them: they open, never seal. For the move from the
    /// credentials secret's `token_store_keys` to the keys secret: values sealed before it still
    /// open until they expire.
    pub fn also_opening(mut self, older: Sealer) -> Self {
        self.keys.extend(older.keys);
        self
    }

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
        Ok(Self::from_keys(keys))
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
        assert!(matches!(
            Sealer::from_base64::<&str>(&[]).err(),
            Some(KeyError::Missing)
        ));
        let error = Sealer::from_base64(&[K1, "c2hvcnQ="]).expect_err("refused");
        assert!(matches!(error, KeyError::Invalid(1)));
        assert!(!error.to_string().contains("c2hvcnQ"));
        assert!(!format!("{:?}", Sealer::from_base64(&[K1]).expect("keys")).contains(K1));
    }

    /// As the template's `GenerateSecretString` makes them: 64 letters and digits.
    const GENERATED: &str = "Qm9Zb3R0bGVkU2VhbGluZ0tleU1hdGVyaWFsMDEyMzQ1Njc4OWFiY2RlZmdoaWpr";
    const OLDER: &str = "b2xkZXJLZXlNYXRlcmlhbFRoYXRTdGlsbE9wZW5zT2xkVmFsdWVzMDEyMzQ1Njc4";

    #[test]
    fn the_generated_secret_gives_keys_and_previous_keys_still_open() {
        let before = keys_from_secret(&format!(r#"{{"key": "{OLDER}"}}"#)).expect("keys");
        let sealed = before.seal("pk", b"v").expect("sealed");
        let rotated = keys_from_secret(&format!(
            r#"{{"key": "{GENERATED}", "previous_keys": ["{OLDER}"]}}"#
        ))
        .expect("keys");
        assert_eq!(rotated.open("pk", &sealed).expect("opens"), b"v");
        let sealed_after = rotated.seal("pk", b"w").expect("sealed");
        assert_eq!(before.open("pk", &sealed_after), Err(Unopenable));
        // The same text gives the same key in every environment.
        let again = keys_from_secret(&format!(r#"{{"key": "{GENERATED}", "previous_keys": []}}"#))
            .expect("keys");
        assert_eq!(again.open("pk", &sealed_after).expect("opens"), b"w");
        // The text is key material for HKDF, not an AES key itself.
        let raw =
            Sealer::from_base64(&[STANDARD.encode(&GENERATED.as_bytes()[..32])]).expect("keys");
        assert_eq!(raw.open("pk", &sealed_after), Err(Unopenable));
    }

    #[test]
    fn token_store_keys_kept_beside_the_keys_secret_open_but_never_seal() {
        let legacy = Sealer::from_base64(&[K1]).expect("keys");
        let sealed_before = legacy.seal("pk", b"v").expect("sealed");
        let moved = keys_from_secret(&format!(r#"{{"key": "{GENERATED}"}}"#))
            .expect("keys")
            .also_opening(Sealer::from_base64(&[K1]).expect("keys"));
        assert_eq!(moved.open("pk", &sealed_before).expect("opens"), b"v");
        let sealed_after = moved.seal("pk", b"w").expect("sealed");
        assert_eq!(legacy.open("pk", &sealed_after), Err(Unopenable));
    }

    #[test]
    fn an_unusable_keys_secret_is_named_by_place_only() {
        let short = "x".repeat(MIN_KEY_CHARS - 1);
        for (text, slot) in [
            (format!(r#"{{"key": "{short}"}}"#), Some(KeySlot::Key)),
            (r#"{"key": 7}"#.to_owned(), Some(KeySlot::Key)),
            (
                format!(r#"{{"key": "{GENERATED}", "previous_keys": ["{OLDER}", "{short}"]}}"#),
                Some(KeySlot::Previous(1)),
            ),
            (
                format!(r#"{{"key": "{GENERATED}", "previous_keys": "{OLDER}"}}"#),
                Some(KeySlot::PreviousKeys),
            ),
            (format!(r#"{{"keys": ["{GENERATED}"]}}"#), None),
            (format!(r#"["{GENERATED}"]"#), None),
        ] {
            let error = keys_from_secret(&text).expect_err(&text);
            match slot {
                Some(slot) => assert!(matches!(error, KeyError::Weak(s) if s == slot), "{text}"),
                None => assert!(matches!(error, KeyError::NoKey), "{text}"),
            }
            let message = error.to_string();
            assert!(message.contains("TOKEN_STORE_KEYS_SECRET_ID"), "{message}");
            assert!(
                !message.contains(GENERATED) && !message.contains("xxxx"),
                "{message}"
            );
        }
        let error = keys_from_secret(&format!(r#"{{"key": "{GENERATED}""#)).expect_err("cut");
        assert!(matches!(error, KeyError::Malformed { .. }));
        assert!(!error.to_string().contains(GENERATED));
        let at_least = "y".repeat(MIN_KEY_CHARS);
        assert!(keys_from_secret(&format!(r#"{{"key": " {at_least} "}}"#)).is_ok());
    }
}
