//! `natter-bench seed`: users and friendships written straight into the store, with one
//! placeholder password hash and tokens signed with the server's secret, so that a benchmark
//! measures chat, not argon2. Run it before starting the server (the embedded server
//! remembers what it wrote itself); the sessions file feeds `direct --sessions`.

use std::path::PathBuf;

use anyhow::Context;
use natter::client::Session;
use natter_infra::sql::{SqlStore, open_database};
use natter_infra::store::{FriendRequest, User};
use natter_infra::store::{FriendStore, UserStore};
use natter_proto::token::TokenKeys;

use crate::setup::progress_bar;

/// Options of `natter-bench seed`.
#[derive(Debug, clap::Args)]
pub struct SeedOptions {
    /// The database URL (the embedded one is `sqlite://natter-data/natter.db?mode=rwc`).
    #[arg(long, default_value = "sqlite://natter-data/natter.db?mode=rwc")]
    pub database: String,
    /// The file holding the token signing secret (the embedded one is `natter-data/jwt-secret`).
    #[arg(long, default_value = "natter-data/jwt-secret")]
    pub secret_file: PathBuf,
    /// Users to create (an even number: each pair becomes friends).
    #[arg(long, default_value_t = 2000)]
    pub users: usize,
    /// Where to write the sessions (ids and access tokens) as JSON.
    #[arg(long, default_value = "bench-results/sessions.json")]
    pub sessions: PathBuf,
}

/// Seeded users cannot log in with a password: this is no argon2 hash of anything.
const PLACEHOLDER_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2VlZGVkYnliZW5jaA$seeded";

/// How long the minted tokens live, in seconds (a run is at most ten minutes).
const TOKEN_SECONDS: u64 = 3600;

/// Writes the users and friendships and the sessions file.
pub async fn run(options: &SeedOptions) -> anyhow::Result<()> {
    if options.users < 2 || !options.users.is_multiple_of(2) || options.users > 100_000 {
        anyhow::bail!("--users must be even, between 2 and 100000");
    }
    let secret = std::fs::read_to_string(&options.secret_file)
        .with_context(|| format!("reading {}", options.secret_file.display()))?;
    let keys = TokenKeys::new(secret.trim().as_bytes());
    let database = open_database(&options.database, 4)
        .await
        .with_context(|| format!("opening {}", options.database))?;
    let store = SqlStore::new(database.clone());
    let run: u32 = rand::random();
    let base = i64::from(run) << 20;
    let bar = progress_bar(options.users as u64, "users");
    let mut sessions = Vec::with_capacity(options.users);
    for number in 0..options.users {
        let id = base + number as i64 + 1;
        let user = User {
            id,
            username: format!("seed{run}x{number}"),
            nickname: format!("seed {number}"),
            avatar: None,
            created_at: natter_infra::now_millis(),
        };
        store.create_user(&user, PLACEHOLDER_HASH).await?;
        if number % 2 == 1 {
            let request = FriendRequest {
                from: id - 1,
                to: id,
                note: String::new(),
                created_at: user.created_at,
            };
            store.add_friend_request(&request).await?;
            store
                .accept_friend_request(id - 1, id, user.created_at)
                .await?;
        }
        sessions.push(Session {
            user_id: id,
            access_token: keys.issue(id, TOKEN_SECONDS)?,
            refresh_token: String::new(),
        });
        bar.inc(1);
    }
    bar.finish();
    database.close().await;
    if let Some(parent) = options.sessions.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let rows: Vec<serde_json::Value> = sessions
        .iter()
        .map(|session| serde_json::json!({"user_id": session.user_id, "access_token": session.access_token}))
        .collect();
    std::fs::write(&options.sessions, serde_json::to_vec(&rows)?)?;
    eprintln!(
        "seeded {} users in friend pairs; sessions in {}",
        options.users,
        options.sessions.display()
    );
    Ok(())
}

/// Reads a sessions file written by `seed`.
pub fn load_sessions(path: &std::path::Path) -> anyhow::Result<Vec<Session>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let rows: Vec<serde_json::Value> = serde_json::from_str(&text)?;
    rows.iter()
        .map(|row| {
            Ok(Session {
                user_id: row["user_id"]
                    .as_i64()
                    .context("a session without user_id")?,
                access_token: row["access_token"]
                    .as_str()
                    .context("a session without access_token")?
                    .to_string(),
                refresh_token: String::new(),
            })
        })
        .collect()
}
