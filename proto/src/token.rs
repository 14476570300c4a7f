//! Access tokens: short-lived HS256 JWTs that the API issues and connect verifies on upgrade.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

use crate::ErrorCode;

/// What an access token says.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user id, as a decimal string (JWT subjects are strings).
    sub: String,
    /// Issued at, seconds since the Unix epoch.
    iat: u64,
    /// Expires at, seconds since the Unix epoch.
    exp: u64,
    /// Always "access": keeps other tokens signed with the same key from passing as one.
    typ: String,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// The token's lifetime is over.
    #[error("the access token has expired")]
    Expired,
    /// Bad signature, malformed, or not an access token.
    #[error("the access token is not valid")]
    Invalid,
}

impl TokenError {
    /// The stable code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            TokenError::Expired => ErrorCode::TokenExpired,
            TokenError::Invalid => ErrorCode::InvalidToken,
        }
    }
}

/// Signs and verifies access tokens with one shared secret.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys(..)")
    }
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

impl TokenKeys {
    /// Keys from the shared secret.
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// An access token for `user_id` valid for `lifetime_seconds`.
    pub fn issue(&self, user_id: i64, lifetime_seconds: u64) -> Result<String, TokenError> {
        let iat = now_seconds();
        let claims = Claims {
            sub: user_id.to_string(),
            iat,
            exp: iat + lifetime_seconds,
            typ: "access".into(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|_| TokenError::Invalid)
    }

    /// The user id in a valid, unexpired access token.
    pub fn verify(&self, token: &str) -> Result<i64, TokenError> {
        let data =
            decode::<Claims>(token, &self.decoding, &self.validation).map_err(
                |error| match error.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                    _ => TokenError::Invalid,
                },
            )?;
        if data.claims.typ != "access" {
            return Err(TokenError::Invalid);
        }
        data.claims.sub.parse().map_err(|_| TokenError::Invalid)
    }

    /// A token that expired `seconds_ago` (for tests of expiry handling).
    pub fn issue_expired(&self, user_id: i64, seconds_ago: u64) -> Result<String, TokenError> {
        let now = now_seconds();
        let claims = Claims {
            sub: user_id.to_string(),
            iat: now.saturating_sub(seconds_ago + 60),
            exp: now.saturating_sub(seconds_ago),
            typ: "access".into(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|_| TokenError::Invalid)
    }
}

/// The credentials of an `Authorization` header value in the `Bearer` scheme. The scheme is
/// matched without regard to case (RFC 9110 §11.1), so `bearer` and `BEARER` work too.
pub fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, credentials) = authorization.split_once(' ')?;
    let credentials = credentials.trim_start_matches(' ');
    (scheme.eq_ignore_ascii_case("bearer") && !credentials.is_empty()).then_some(credentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_read_in_any_case() {
        for header in ["Bearer abc", "bearer abc", "BEARER  abc"] {
            assert_eq!(bearer(header), Some("abc"), "{header}");
        }
        for header in ["Basic abc", "Bearer", "Bearer ", "Bearerabc", ""] {
            assert_eq!(bearer(header), None, "{header}");
        }
    }

    #[test]
    fn issues_verifies_and_refuses() {
        let keys = TokenKeys::new(b"secret");
        let token = keys.issue(42, 60).unwrap();
        assert_eq!(keys.verify(&token), Ok(42));
        assert_eq!(
            TokenKeys::new(b"other").verify(&token),
            Err(TokenError::Invalid)
        );
        assert_eq!(keys.verify("garbage"), Err(TokenError::Invalid));
        let expired = keys.issue_expired(42, 5).unwrap();
        assert_eq!(keys.verify(&expired), Err(TokenError::Expired));
    }
}
