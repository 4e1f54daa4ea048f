//! RSA keys committed for tests and the local demo only (`standin/keys/`), and a builder for
//! tokens signed with them. Never trust these keys anywhere.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value, json};

/// One of the two committed test keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestKey {
    /// `test-key-1`: published by the stand-in tenant by default.
    Primary,
    /// `test-key-2`: not published unless a test rotates it in.
    Secondary,
}

impl TestKey {
    /// The key id in JWT headers and the JWKS.
    pub fn kid(self) -> &'static str {
        match self {
            Self::Primary => "test-key-1",
            Self::Secondary => "test-key-2",
        }
    }

    /// The private key, PKCS#8 PEM.
    pub fn private_pem(self) -> &'static str {
        match self {
            Self::Primary => include_str!("../keys/test-key-1.pem"),
            Self::Secondary => include_str!("../keys/test-key-2.pem"),
        }
    }

    /// The public key, SPKI PEM (what a naive verifier might misuse as an HMAC secret).
    pub fn public_pem(self) -> &'static str {
        match self {
            Self::Primary => include_str!("../keys/test-key-1.pub.pem"),
            Self::Secondary => include_str!("../keys/test-key-2.pub.pem"),
        }
    }

    /// The public key as a JWK.
    pub fn jwk(self) -> Value {
        let text = match self {
            Self::Primary => include_str!("../keys/test-key-1.jwk.json"),
            Self::Secondary => include_str!("../keys/test-key-2.jwk.json"),
        };
        serde_json::from_str(text).unwrap_or_else(|e| panic!("committed JWK is valid JSON: {e}"))
    }
}

/// Builds a caller access token: valid for the given issuer and audience unless told otherwise.
#[derive(Debug, Clone)]
pub struct TokenBuilder {
    header: Header,
    key: TestKey,
    claims: Map<String, Value>,
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl TokenBuilder {
    /// A token for `sub`, issued by `issuer` for `audience`, valid for an hour, signed RS256 with
    /// the primary key.
    pub fn new(issuer: &str, audience: &str, sub: &str) -> Self {
        let now = now();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(TestKey::Primary.kid().to_owned());
        let Value::Object(claims) = json!({
            "iss": issuer,
            "sub": sub,
            "aud": [audience, format!("{issuer}userinfo")],
            "iat": now,
            "exp": now + 3600,
            "scope": "openid profile",
            "azp": "spa-client-id",
        }) else {
            unreachable!("a JSON object literal")
        };
        Self {
            header,
            key: TestKey::Primary,
            claims,
        }
    }

    /// Sets (or replaces) a claim with any JSON value, wrong types included.
    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(name.to_owned(), value.into());
        self
    }

    /// Removes a claim.
    pub fn without(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// Binds the token to a DPoP key (RFC 9449 §6.1): `"cnf": {"jkt": jkt}`, `jkt` being the
    /// key's RFC 7638 thumbprint ([`crate::DpopKey::jkt`]), as Auth0 issues a token asked for
    /// with a DPoP proof. Replaces any `cnf` set before.
    ///
    /// ```
    /// let key = standin::DpopKey::generate();
    /// let token = standin::TokenBuilder::new("http://127.0.0.1:1/", "https://api", "user-1")
    ///     .bound_to(&key.jkt())
    ///     .sign();
    /// # let _ = token;
    /// ```
    pub fn bound_to(self, jkt: &str) -> Self {
        self.claim("cnf", json!({ "jkt": jkt }))
    }

    /// Signs with `key`, naming it in `kid`.
    pub fn key(mut self, key: TestKey) -> Self {
        self.key = key;
        self.header.kid = Some(key.kid().to_owned());
        self
    }

    /// Signs with another algorithm of the RSA family (RS384, PS256, …).
    pub fn alg(mut self, alg: Algorithm) -> Self {
        self.header.alg = alg;
        self
    }

    /// Sets the header's `crit` (RFC 7515 §4.1.11): extensions the verifier must understand.
    pub fn crit(mut self, names: &[&str]) -> Self {
        self.header.crit = Some(names.iter().map(|n| (*n).to_owned()).collect());
        self
    }

    /// Sets the header's `kid` (or removes it), whatever key signs.
    pub fn kid(mut self, kid: Option<&str>) -> Self {
        self.header.kid = kid.map(str::to_owned);
        self
    }

    /// The signed token.
    pub fn sign(&self) -> String {
        let key = EncodingKey::from_rsa_pem(self.key.private_pem().as_bytes())
            .unwrap_or_else(|e| panic!("committed test key is valid PEM: {e}"));
        jsonwebtoken::encode(&self.header, &self.claims, &key)
            .unwrap_or_else(|e| panic!("signing a test token: {e}"))
    }

    /// The token signed HS256 with the primary key's *public* PEM as the HMAC secret: the
    /// classic algorithm-confusion attack.
    pub fn sign_hs256_with_public_key(&self) -> String {
        let mut header = self.header.clone();
        header.alg = Algorithm::HS256;
        let key = EncodingKey::from_secret(self.key.public_pem().as_bytes());
        jsonwebtoken::encode(&header, &self.claims, &key)
            .unwrap_or_else(|e| panic!("signing a test token: {e}"))
    }

    /// The token with `"alg": "none"` and an empty signature.
    pub fn unsigned(&self) -> String {
        use base64::Engine;
        let b64 =
            |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let header = json!({"alg": "none", "typ": "JWT", "kid": self.header.kid});
        format!(
            "{}.{}.",
            b64(&header),
            b64(&Value::Object(self.claims.clone()))
        )
    }
}
