//! One data-access layer for both engines.
//!
//! RowCol talks to SQLite (the embedded default) and PostgreSQL (several
//! instances) through sqlx's `Any` driver with SQL both accept: `$n`
//! placeholders, BIGINT unix-millisecond instants, TEXT dates, no engine
//! specific types. What genuinely differs (claiming jobs) is chosen by
//! [`Backend`] in small named functions. Migrations are kept as two sets with
//! the same numbering, `migrations/sqlite` and `migrations/postgres`.

use chrono::{DateTime, TimeZone, Utc};
use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyPool, Transaction};

pub type Tx<'a> = Transaction<'a, Any>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Self, sqlx::Error> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else {
            Err(sqlx::Error::Configuration(
                "DATABASE_URL must start with sqlite: or postgres:".into(),
            ))
        }
    }
}

/// The database handle every server function and job receives through state.
#[derive(Clone, Debug)]
pub struct Db {
    /// Every write, and reads that decide a write.
    pub pool: AnyPool,
    /// Reads for pages. On SQLite, connections of their own that cannot
    /// write (`query_only`): WAL lets them read beside the one writer
    /// instead of queueing behind it. On PostgreSQL, the same pool.
    pub reads: AnyPool,
    pub backend: Backend,
    /// Each client's bills as the approvals page's rules read them, kept
    /// for one revision of the client (see `revision_cache`).
    pub bills_cache: super::decisions::BillsCache,
}

/// How many SQLite connections serve pages' reads at once.
const SQLITE_READERS: u32 = 4;

/// Connections kept open for reads even when idle: a page that reads two
/// things at once takes a second connection only if one is idle (it never
/// waits for one), and a pool opens connections only on demand.
const READERS_READY: u32 = 2;

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

impl Db {
    /// Connect (creating a SQLite file if needed). Does not migrate.
    pub async fn connect(url: &str) -> Result<Db, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let pool = match backend {
            // SQLite has one writer. A single pooled connection serialises
            // RowCol's own access so deferred transactions never hit
            // SQLITE_BUSY on lock upgrade; WAL keeps the session store's
            // separate connection from blocking on readers.
            Backend::Sqlite => sqlite_pool(
                url,
                1,
                1,
                "pragma journal_mode = wal; pragma foreign_keys = on; pragma busy_timeout = 10000;",
            )
            .await?,
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(10)
                    .min_connections(READERS_READY)
                    .connect(url)
                    .await?
            }
        };
        let reads = match backend {
            // Opened after the writer, which created the file and set WAL.
            Backend::Sqlite => {
                sqlite_pool(
                    url,
                    SQLITE_READERS,
                    READERS_READY,
                    "pragma query_only = on; pragma busy_timeout = 10000;",
                )
                .await?
            }
            Backend::Postgres => pool.clone(),
        };
        Ok(Db {
            pool,
            reads,
            backend,
            bills_cache: Default::default(),
        })
    }

    /// A connection from the pool.
    pub async fn acquire(&self) -> Result<sqlx::pool::PoolConnection<Any>, super::StoreError> {
        Ok(self.pool.acquire().await?)
    }

    /// A connection for reading only (a page): on SQLite it does not wait
    /// for the writer, and any write through it fails.
    pub async fn read(&self) -> Result<sqlx::pool::PoolConnection<Any>, super::StoreError> {
        Ok(self.reads.acquire().await?)
    }

    /// A transaction; commit it with [`commit`].
    pub async fn begin(&self) -> Result<Tx<'static>, super::StoreError> {
        Ok(self.pool.begin().await?)
    }

    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATOR.run(&self.pool).await,
            Backend::Postgres => POSTGRES_MIGRATOR.run(&self.pool).await,
        }
    }

    /// True when every known migration has been applied (for `/readyz`).
    pub async fn migrations_current(&self) -> Result<bool, sqlx::Error> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATOR,
            Backend::Postgres => &POSTGRES_MIGRATOR,
        };
        let latest = migrator.iter().map(|m| m.version).max().unwrap_or(0);
        let applied: Option<i64> =
            sqlx::query_scalar("select max(version) from _sqlx_migrations where success = true")
                .fetch_one(&self.pool)
                .await?;
        Ok(applied.unwrap_or(0) >= latest)
    }
}

/// A SQLite pool of up to `max` connections, each set up with `pragmas`.
async fn sqlite_pool(
    url: &str,
    max: u32,
    min: u32,
    pragmas: &'static str,
) -> Result<AnyPool, sqlx::Error> {
    AnyPoolOptions::new()
        .max_connections(max)
        .min_connections(min)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                use sqlx::Executor;
                conn.execute(pragmas).await?;
                Ok(())
            })
        })
        .connect(url)
        .await
}

/// Every row of `select <columns> <rest>` (text binds `$1…`), for reads
/// of thousands of rows. Through sqlx's SQLite driver each value read
/// costs about a microsecond of its own (ten thousand bills of eleven
/// columns: ~100 ms), so on SQLite the rows are folded into one JSON text
/// (`json_group_array`) and parsed with serde: ~10 times faster. On
/// PostgreSQL rows come faster than `json_agg` builds them, so they are
/// read as rows. In no particular order.
pub async fn fetch_many<T>(
    conn: &mut sqlx::AnyConnection,
    columns: &str,
    rest: &str,
    binds: &[&str],
) -> Result<Vec<T>, super::StoreError>
where
    T: serde::de::DeserializeOwned + for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    if conn.backend_name() == "PostgreSQL" {
        let sql = format!("select {columns} {rest}");
        let mut q = sqlx::query_as::<_, T>(&sql);
        for b in binds {
            q = q.bind(*b);
        }
        return Ok(q.fetch_all(conn).await?);
    }
    // Folded over a subquery so that `rest` may be any tail of a select
    // (`json()` keeps each row an array, not a string, past it). SQLite
    // promises no order of an aggregate's input: callers sort.
    let sql =
        format!("select json_group_array(json(r)) from (select json_array({columns}) as r {rest})");
    let mut q = sqlx::query_scalar::<_, String>(&sql);
    for b in binds {
        q = q.bind(*b);
    }
    let json = q.fetch_one(conn).await?;
    serde_json::from_str(&json).map_err(super::corrupt)
}

/// Instants are stored as unix milliseconds.
pub fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// Commit a transaction (the data layer's error type).
pub async fn commit(tx: Tx<'_>) -> Result<(), super::StoreError> {
    Ok(tx.commit().await?)
}
