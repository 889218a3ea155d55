//! Browser sessions: tower-sessions with its sqlx store, on whichever
//! database the server uses. The cookie is HttpOnly, SameSite=Lax, Secure
//! when the server is reached over TLS, and its id is replaced at sign-in.
//!
//! A cookie rides along with every request the browser makes, so requests
//! that change state and are authenticated by the cookie must also carry
//! the session's CSRF token in `X-CSRF-Token` (see `auth`). Bearer tokens
//! need no CSRF token: a browser never attaches them on its own.

use async_trait::async_trait;
use tower_sessions::cookie::SameSite;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

/// Session keys.
pub const USER_ID: &str = "user_id";
pub const ORG_ID: &str = "org_id";
pub const CSRF: &str = "csrf";

/// Name of the session cookie.
pub const COOKIE: &str = "sprites_session";

#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl Store {
    /// Connects a store to the server's database and creates its table.
    /// With SQLite the sessions live in a file of their own beside the
    /// database (`<db>-sessions`): the database is replicated to the object
    /// store, and live session ids must never leave the machine.
    pub async fn connect(url: &str) -> Result<Store, sqlx::Error> {
        let store = if let Some(db) = crate::db::litestream::sqlite_path(url) {
            let mut file = db.into_os_string();
            file.push("-sessions");
            let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(file);
            let opts = opts
                .create_if_missing(true)
                .busy_timeout(std::time::Duration::from_secs(5))
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal);
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(opts)
                .await?;
            let s = SqliteStore::new(pool);
            s.migrate().await?;
            Store::Sqlite(s)
        } else {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(8)
                .connect(url)
                .await?;
            let s = PostgresStore::new(pool);
            s.migrate().await?;
            Store::Postgres(s)
        };
        Ok(store)
    }

    /// The layer that loads and saves sessions around each request, and a
    /// task that removes expired ones every hour.
    pub fn layer(self, secure: bool) -> SessionManagerLayer<Store> {
        let cleaner = self.clone();
        tokio::spawn(async move {
            if let Err(e) = cleaner
                .continuously_delete_expired(tokio::time::Duration::from_secs(3600))
                .await
            {
                tracing::warn!(error = %e, "session cleanup stopped");
            }
        });
        SessionManagerLayer::new(self)
            .with_name(COOKIE)
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_secure(secure)
            .with_expiry(Expiry::OnInactivity(
                tower_sessions::cookie::time::Duration::days(14),
            ))
    }
}

#[async_trait]
impl SessionStore for Store {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            Store::Sqlite(s) => s.create(record).await,
            Store::Postgres(s) => s.create(record).await,
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            Store::Sqlite(s) => s.save(record).await,
            Store::Postgres(s) => s.save(record).await,
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            Store::Sqlite(s) => s.load(id).await,
            Store::Postgres(s) => s.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            Store::Sqlite(s) => s.delete(id).await,
            Store::Postgres(s) => s.delete(id).await,
        }
    }
}

#[async_trait]
impl ExpiredDeletion for Store {
    async fn delete_expired(&self) -> session_store::Result<()> {
        match self {
            Store::Sqlite(s) => s.delete_expired().await,
            Store::Postgres(s) => s.delete_expired().await,
        }
    }
}
