//! The server's database: SQLite (embedded, the default) or PostgreSQL,
//! chosen by the URL, through one pool. Queries are written once, in SQL
//! both accept (`$1` placeholders, BIGINT times in milliseconds).

pub mod litestream;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::AnyPool;

pub type Row = AnyRow;

#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    /// Who recent tokens stand for. It lives with the pool because every
    /// write that can end a token's validity goes through here and clears
    /// it (see `caller::TokenCache`).
    pub(crate) tokens: crate::domain::caller::TokenCache,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

impl Db {
    /// Connects (creating an SQLite file when needed) and applies the
    /// migrations that are missing.
    pub async fn connect(url: &str) -> Result<Db, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let url = if url.starts_with("sqlite:") && !url.contains("mode=") {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}mode=rwc")
        } else {
            url.to_string()
        };
        let sqlite = url.starts_with("sqlite:");
        let max = if sqlite { 4 } else { 16 };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        // Per connection: writers wait for each other instead
                        // of failing with "busy"; foreign keys are enforced;
                        // with the write-ahead log a commit needs no fsync of
                        // its own (the log is synced at checkpoints), which
                        // keeps API calls that write in the sub-millisecond range.
                        for pragma in [
                            "PRAGMA busy_timeout = 5000",
                            "PRAGMA foreign_keys = ON",
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = NORMAL",
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Db {
            pool,
            tokens: Default::default(),
        })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// Milliseconds since the Unix epoch, as stored.
pub fn now_ms() -> i64 {
    vmhost::now_ms() as i64
}

/// RFC 3339 text (UTC, milliseconds) of a time in milliseconds since the epoch.
pub fn iso_ms(ms: u64) -> String {
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

/// RFC 3339 text (UTC, seconds) of a time in seconds since the epoch.
pub fn iso_secs(secs: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .to_string()
}

/// A fresh random id (128 bits, hex).
pub fn new_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Whether a database error is a unique-constraint violation.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.is_unique_violation() || d.message().contains("UNIQUE constraint failed")
        }
        _ => false,
    }
}
