//! Register, log in, refresh; the bearer-token extractor; username and password rules.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use natter_infra::store::{RefreshToken, User};
use natter_infra::{InfraError, now_millis};
use natter_proto::ErrorCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::problem::{JsonBody, Problem};
use crate::state::ApiState;

/// Passwords too common to accept whatever their length.
const COMMON_PASSWORDS: [&str; 12] = [
    "password",
    "password1",
    "12345678",
    "123456789",
    "1234567890",
    "qwertyui",
    "qwerty123",
    "iloveyou",
    "sunshine",
    "abcdefgh",
    "letmein1",
    "11111111",
];

/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest accepted password, in characters (hashing cost is bounded too).
pub const MAX_PASSWORD_CHARS: usize = 128;

/// A user as the API shows them.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserView {
    /// The id, as a string (JavaScript loses precision above 2^53).
    #[schema(example = "7265418613035008")]
    pub id: String,
    /// Login name.
    pub username: String,
    /// Display name.
    pub nickname: String,
    /// Avatar upload id.
    pub avatar: Option<String>,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        UserView {
            id: user.id.to_string(),
            username: user.username.clone(),
            nickname: user.nickname.clone(),
            avatar: user.avatar.clone(),
        }
    }
}

/// Username and password.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// Login name: 3 to 32 letters, digits, `_`, `.` or `-`, starting with a letter or digit;
    /// compared in lower case.
    #[schema(example = "alice")]
    pub username: String,
    /// Password: 8 to 128 characters, at least 4 different ones, not a common password and not
    /// containing the username.
    #[schema(example = "correct horse battery")]
    pub password: String,
}

/// A refresh token to trade.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from the last login or refresh.
    pub refresh_token: String,
}

/// Tokens and who they are for.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Session {
    /// The user.
    pub user: UserView,
    /// Short-lived bearer token for REST and WebSocket.
    pub access_token: String,
    /// Long-lived, single-use token for `/auth/refresh`.
    pub refresh_token: String,
    /// Always "Bearer".
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

/// A lower-case username of 3 to 32 letters, digits, `_`, `.` or `-`, starting with a letter or
/// digit.
pub fn normalise_username(username: &str) -> Result<String, Problem> {
    // Lower case, since names are found without regard to case; not trimmed, since "alice "
    // is not a spelling of "alice" but a name with a character no name may have.
    let username = username.to_lowercase();
    let allowed = username
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'));
    let starts_well = username
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if !(3..=32).contains(&username.len()) || !allowed || !starts_well {
        return Err(Problem::new(
            ErrorCode::InvalidInput,
            "a username has 3 to 32 letters, digits, '_', '.' or '-', and starts with a letter or digit",
        ));
    }
    Ok(username)
}

/// Refuses a password longer than [`MAX_PASSWORD_CHARS`] as bad input.
fn refuse_overlong_password(password: &str) -> Result<(), Problem> {
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(Problem::new(
            ErrorCode::InvalidInput,
            "the password may have at most 128 characters",
        ));
    }
    Ok(())
}

/// Refuses empty, short, overlong, common, one-character and username-equal passwords.
pub fn check_password(password: &str, username: &str) -> Result<(), Problem> {
    let chars = password.chars().count();
    let weak = |why: &str| Err(Problem::new(ErrorCode::WeakPassword, why));
    if chars < MIN_PASSWORD_CHARS {
        return weak("the password needs at least 8 characters");
    }
    refuse_overlong_password(password)?;
    let lower = password.to_lowercase();
    if COMMON_PASSWORDS.contains(&lower.as_str()) {
        return weak("the password is one of the most common passwords");
    }
    if lower == username || lower.contains(username) {
        return weak("the password must not contain the username");
    }
    let mut distinct: Vec<char> = password.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 4 {
        return weak("the password needs at least 4 different characters");
    }
    Ok(())
}

fn internal(what: &str) -> Problem {
    tracing::error!(what, "authentication step failed");
    Problem::new(ErrorCode::Internal, "internal error")
}

/// Password hashes computed at once: one per core. argon2id takes about 19 MiB and tens of
/// milliseconds each, so a burst of registrations or logins waits its turn here instead of
/// taking every blocking thread and the memory of hundreds of hashes at once.
static PASSWORD_WORK: std::sync::LazyLock<tokio::sync::Semaphore> =
    std::sync::LazyLock::new(|| {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        tokio::sync::Semaphore::new(cores)
    });

/// Runs argon2 work off the async threads, at most one per core at a time.
async fn password_work<T: Send + 'static>(
    what: &'static str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Problem> {
    let permit = PASSWORD_WORK
        .acquire()
        .await
        .map_err(|_| internal("password work queue"))?;
    let done = tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| internal(what));
    drop(permit);
    metrics::counter!("natter_password_hashes_total", "kind" => what).increment(1);
    done
}

/// Hash a new password (argon2id, deliberately slow).
async fn hash_password(password: String) -> Result<String, Problem> {
    password_work("hash", move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
    })
    .await?
    .map_err(|_| internal("hashing"))
}

async fn verify_password(password: String, hash: String) -> Result<bool, Problem> {
    password_work("verify", move || {
        let parsed = PasswordHash::new(&hash).map_err(|_| ())?;
        Ok::<bool, ()>(
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
        )
    })
    .await?
    .map_err(|()| internal("stored hash unreadable"))
}

fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Issue an access token and a stored refresh token for `user`.
async fn open_session(state: &ApiState, user: &User) -> Result<Session, Problem> {
    let access_token = state
        .tokens
        .issue(user.id, state.config.access_token_seconds)
        .map_err(|_| internal("signing"))?;
    let refresh_token = format!(
        "{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    );
    let expires_at = now_millis() + (state.config.refresh_token_seconds as i64) * 1000;
    state
        .store
        .put_refresh_token(
            &token_hash(&refresh_token),
            &RefreshToken {
                user_id: user.id,
                expires_at,
            },
        )
        .await?;
    Ok(Session {
        user: UserView::from(user),
        access_token,
        refresh_token,
        token_type: "Bearer",
        expires_in: state.config.access_token_seconds,
    })
}

/// `POST /api/v1/auth/register`: create an account and log in.
#[utoipa::path(
    post,
    path = "/api/v1/auth/register",
    tag = "auth",
    request_body = Credentials,
    responses(
        (status = 201, description = "Registered and logged in", body = Session),
        (status = 400, description = "`bad_frame`: not JSON or a field missing; \
            `invalid_input`: the username breaks the rules or the password is too long"),
        (status = 409, description = "`username_taken`"),
        (status = 413, description = "`frame_too_large`: the body is over the limit"),
        (status = 422, description = "`weak_password`"),
    )
)]
pub async fn register(
    State(state): State<ApiState>,
    JsonBody(credentials): JsonBody<Credentials>,
) -> Result<(StatusCode, Json<Session>), Problem> {
    let username = normalise_username(&credentials.username)?;
    check_password(&credentials.password, &username)?;
    let password_hash = hash_password(credentials.password).await?;
    let user = User {
        id: state.ids.next_id()? as i64,
        nickname: username.clone(),
        username,
        avatar: None,
        created_at: now_millis(),
    };
    match state.store.create_user(&user, &password_hash).await {
        Ok(()) => {}
        Err(InfraError::Conflict(_)) => {
            return Err(Problem::new(
                ErrorCode::UsernameTaken,
                format!("the username {:?} is taken", user.username),
            ));
        }
        Err(error) => return Err(error.into()),
    }
    metrics::counter!("natter_users_registered_total").increment(1);
    Ok((
        StatusCode::CREATED,
        Json(open_session(&state, &user).await?),
    ))
}

/// `POST /api/v1/auth/login`: trade a username and password for tokens.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body = Credentials,
    responses(
        (status = 200, description = "Logged in", body = Session),
        (status = 400, description = "`bad_frame`: not JSON or a field missing"),
        (status = 401, description = "`bad_credentials`: wrong username or password"),
        (status = 413, description = "`frame_too_large`: the body is over the limit"),
    )
)]
pub async fn login(
    State(state): State<ApiState>,
    JsonBody(credentials): JsonBody<Credentials>,
) -> Result<Json<Session>, Problem> {
    let refused = || Problem::new(ErrorCode::BadCredentials, "wrong username or password");
    let username = normalise_username(&credentials.username).map_err(|_| refused())?;
    // No password this long was ever accepted: saying so tells an attacker nothing.
    refuse_overlong_password(&credentials.password)?;
    let Some((user, hash)) = state.store.credentials(&username).await? else {
        return Err(refused());
    };
    if !verify_password(credentials.password, hash).await? {
        return Err(refused());
    }
    Ok(Json(open_session(&state, &user).await?))
}

/// `POST /api/v1/auth/refresh`: trade a refresh token (once) for new tokens.
#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens; the refresh token sent is used up", body = Session),
        (status = 400, description = "`bad_frame`: not JSON or a field missing"),
        (status = 401, description = "`invalid_token`: unknown or already used; \
            `token_expired`: the refresh token has expired"),
        (status = 413, description = "`frame_too_large`: the body is over the limit"),
    )
)]
pub async fn refresh(
    State(state): State<ApiState>,
    JsonBody(request): JsonBody<RefreshRequest>,
) -> Result<Json<Session>, Problem> {
    let invalid = || Problem::new(ErrorCode::InvalidToken, "the refresh token is not valid");
    let stored = state
        .store
        .take_refresh_token(&token_hash(&request.refresh_token))
        .await?
        .ok_or_else(invalid)?;
    if stored.expires_at <= now_millis() {
        return Err(Problem::new(
            ErrorCode::TokenExpired,
            "the refresh token has expired",
        ));
    }
    let user = state
        .store
        .user(stored.user_id)
        .await?
        .ok_or_else(invalid)?;
    Ok(Json(open_session(&state, &user).await?))
}

/// `GET /api/v1/me`: the caller.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "profiles",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's profile", body = UserView),
        (status = 401, description = "`unauthorized`, `invalid_token` or `token_expired`: \
            no valid access token, or the account no longer exists"),
    )
)]
pub async fn me(
    State(state): State<ApiState>,
    AuthUser(user_id): AuthUser,
) -> Result<Json<UserView>, Problem> {
    let user = state
        .store
        .user(user_id)
        .await?
        .ok_or_else(|| Problem::new(ErrorCode::InvalidToken, "the account no longer exists"))?;
    Ok(Json(UserView::from(&user)))
}

/// The user a valid `Authorization: Bearer` access token names.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser(pub i64);

impl FromRequestParts<ApiState> for AuthUser {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Problem> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| {
                Problem::new(
                    ErrorCode::Unauthorized,
                    "send Authorization: Bearer <access token>",
                )
            })?;
        let token = natter_proto::token::bearer(header).ok_or_else(|| {
            Problem::new(
                ErrorCode::Unauthorized,
                "send Authorization: Bearer <access token>",
            )
        })?;
        state
            .tokens
            .verify(token)
            .map(AuthUser)
            .map_err(|error| Problem::new(error.code(), error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_normalised_and_bounded() {
        assert_eq!(normalise_username("Alice_1").unwrap(), "alice_1");
        for bad in [
            "",
            "ab",
            "_alice",
            "al ice",
            "alice ",
            " alice",
            "ålice",
            &"a".repeat(33),
        ] {
            assert!(normalise_username(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn weak_passwords_are_refused_with_their_code() {
        for weak in [
            "",
            "short",
            "password1",
            "aaaaaaaaaa",
            "xxalice99x",
            "abababab",
        ] {
            let problem = check_password(weak, "alice").unwrap_err();
            assert_eq!(problem.code, ErrorCode::WeakPassword, "{weak:?}");
        }
        assert!(check_password("correct horse battery", "alice").is_ok());
        assert_eq!(
            check_password(&"ab1!".repeat(40), "alice")
                .unwrap_err()
                .code,
            ErrorCode::InvalidInput
        );
    }
}
