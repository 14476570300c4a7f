//! Process-wide SQLite settings, installed once before the library's first use: no memory
//! statistics, and a page cache that skips the truncation scans SQLite would make for nothing.
//!
//! Both come from the embedded send path's profile (`BENCHMARKS.md`). SQLite counts every
//! allocation under one process-wide mutex unless told not to. And at every commit it drops
//! cached pages beyond the end of the database, which its default cache does by scanning its
//! whole hash table whenever the highest page number it ever held lies far past that end — as
//! it does after nearly every B-tree split, because a split that puts its new pages in order
//! parks one of them for a moment at the number of the locking page (1 GiB / page size + 1).
//! With the writer's large cache that scan cost more than the commit's B-tree inserts. The
//! cache here wraps SQLite's own and remembers the highest page number actually held, not
//! counting the parked one, so a truncation with nothing to drop is not passed on.
//!
//! `sqlite3_config` is refused once SQLite has initialised (by any connection in the process);
//! then natter runs on SQLite's defaults and logs that it does.

use std::ffi::{c_int, c_uint, c_void};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Once, OnceLock};

use libsqlite3_sys as ffi;

/// The byte offset SQLite reserves for file locks; its page is never part of the database.
const PENDING_BYTE: c_uint = 0x4000_0000;

/// SQLite's own page cache, which every call is passed on to.
struct DefaultCache(ffi::sqlite3_pcache_methods2);

// SAFETY: the methods are plain C functions and `pArg`, SQLite's own, is only handed back to
// them; SQLite's page cache is safe to call from any thread in its serialized mode.
unsafe impl Send for DefaultCache {}
unsafe impl Sync for DefaultCache {}

static DEFAULT_CACHE: OnceLock<DefaultCache> = OnceLock::new();

/// Whether SQLite took the page cache below (it refuses once initialised).
static CACHE_INSTALLED: AtomicBool = AtomicBool::new(false);
/// Truncations passed on to SQLite's cache, and skipped as dropping nothing.
static TRUNCATIONS_PASSED: AtomicU64 = AtomicU64::new(0);
static TRUNCATIONS_SKIPPED: AtomicU64 = AtomicU64::new(0);

/// Installs the settings if SQLite has not been used yet in this process; later calls do
/// nothing. Call it before opening any SQLite connection.
pub fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: sqlite3_config is called before any connection exists (Once, and every SQLite
        // pool of natter opens after it); SQLite refuses it with SQLITE_MISUSE otherwise.
        let memstatus = unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int) };
        let cache = install_page_cache();
        CACHE_INSTALLED.store(cache == ffi::SQLITE_OK, Ordering::Relaxed);
        if memstatus != ffi::SQLITE_OK || cache != ffi::SQLITE_OK {
            tracing::info!(
                memstatus,
                cache,
                "SQLite was already initialised: running on its default settings"
            );
        }
    });
}

fn install_page_cache() -> c_int {
    let mut default = ffi::sqlite3_pcache_methods2 {
        iVersion: 0,
        pArg: std::ptr::null_mut(),
        xInit: None,
        xShutdown: None,
        xCreate: None,
        xCachesize: None,
        xPagecount: None,
        xFetch: None,
        xUnpin: None,
        xRekey: None,
        xTruncate: None,
        xDestroy: None,
        xShrink: None,
    };
    // SAFETY: GETPCACHE2 copies the current (default) methods into `default`.
    let got = unsafe {
        ffi::sqlite3_config(
            ffi::SQLITE_CONFIG_GETPCACHE2,
            &mut default as *mut ffi::sqlite3_pcache_methods2,
        )
    };
    if got != ffi::SQLITE_OK || default.xCreate.is_none() {
        return got;
    }
    let version = default.iVersion;
    let argument = default.pArg;
    if DEFAULT_CACHE.set(DefaultCache(default)).is_err() {
        return ffi::SQLITE_MISUSE;
    }
    let mut wrapped = ffi::sqlite3_pcache_methods2 {
        iVersion: version,
        pArg: argument,
        xInit: Some(init),
        xShutdown: Some(shutdown),
        xCreate: Some(create),
        xCachesize: Some(cache_size),
        xPagecount: Some(page_count),
        xFetch: Some(fetch),
        xUnpin: Some(unpin),
        xRekey: Some(rekey),
        xTruncate: Some(truncate),
        xDestroy: Some(destroy),
        xShrink: Some(shrink),
    };
    // SAFETY: PCACHE2 copies the methods; every function above is valid for the process.
    unsafe {
        ffi::sqlite3_config(
            ffi::SQLITE_CONFIG_PCACHE2,
            &mut wrapped as *mut ffi::sqlite3_pcache_methods2,
        )
    }
}

/// One cache: SQLite's, and what is known of the page numbers it holds.
struct TrackedCache {
    inner: *mut ffi::sqlite3_pcache,
    /// The locking page's number for this cache's page size: only ever held for a moment.
    parking: c_uint,
    /// No page above this number is held (apart from one parked at `parking`).
    highest: c_uint,
    /// Whether a page may sit at `parking`.
    parked: bool,
}

/// SQLite's own methods; always set by the time SQLite calls any of the wrappers below.
fn methods() -> Option<&'static ffi::sqlite3_pcache_methods2> {
    DEFAULT_CACHE.get().map(|default| &default.0)
}

/// SAFETY (every method below): SQLite calls them with the handles `create` returned, one
/// call per cache at a time, as the page cache interface specifies.
unsafe fn tracked<'a>(cache: *mut ffi::sqlite3_pcache) -> &'a mut TrackedCache {
    unsafe { &mut *(cache as *mut TrackedCache) }
}

unsafe extern "C" fn init(argument: *mut c_void) -> c_int {
    match methods().and_then(|methods| methods.xInit) {
        Some(init) => unsafe { init(argument) },
        None => ffi::SQLITE_OK,
    }
}

unsafe extern "C" fn shutdown(argument: *mut c_void) {
    if let Some(shutdown) = methods().and_then(|methods| methods.xShutdown) {
        unsafe { shutdown(argument) }
    }
}

unsafe extern "C" fn create(
    page_size: c_int,
    extra_size: c_int,
    purgeable: c_int,
) -> *mut ffi::sqlite3_pcache {
    let Some(create) = methods().and_then(|methods| methods.xCreate) else {
        return std::ptr::null_mut();
    };
    let inner = unsafe { create(page_size, extra_size, purgeable) };
    if inner.is_null() || page_size <= 0 {
        return inner;
    }
    let cache = Box::new(TrackedCache {
        inner,
        parking: PENDING_BYTE / page_size as c_uint + 1,
        highest: 0,
        parked: false,
    });
    Box::into_raw(cache) as *mut ffi::sqlite3_pcache
}

unsafe extern "C" fn cache_size(cache: *mut ffi::sqlite3_pcache, pages: c_int) {
    let cache = unsafe { tracked(cache) };
    if let Some(cache_size) = methods().and_then(|methods| methods.xCachesize) {
        unsafe { cache_size(cache.inner, pages) }
    }
}

unsafe extern "C" fn page_count(cache: *mut ffi::sqlite3_pcache) -> c_int {
    let cache = unsafe { tracked(cache) };
    match methods().and_then(|methods| methods.xPagecount) {
        Some(page_count) => unsafe { page_count(cache.inner) },
        None => 0,
    }
}

unsafe extern "C" fn fetch(
    cache: *mut ffi::sqlite3_pcache,
    key: c_uint,
    create: c_int,
) -> *mut ffi::sqlite3_pcache_page {
    let cache = unsafe { tracked(cache) };
    let Some(fetch) = methods().and_then(|methods| methods.xFetch) else {
        return std::ptr::null_mut();
    };
    let page = unsafe { fetch(cache.inner, key, create) };
    if !page.is_null() {
        cache.hold(key);
    }
    page
}

unsafe extern "C" fn unpin(
    cache: *mut ffi::sqlite3_pcache,
    page: *mut ffi::sqlite3_pcache_page,
    discard: c_int,
) {
    let cache = unsafe { tracked(cache) };
    if let Some(unpin) = methods().and_then(|methods| methods.xUnpin) {
        unsafe { unpin(cache.inner, page, discard) }
    }
}

unsafe extern "C" fn rekey(
    cache: *mut ffi::sqlite3_pcache,
    page: *mut ffi::sqlite3_pcache_page,
    old_key: c_uint,
    new_key: c_uint,
) {
    let cache = unsafe { tracked(cache) };
    if let Some(rekey) = methods().and_then(|methods| methods.xRekey) {
        unsafe { rekey(cache.inner, page, old_key, new_key) }
    }
    if old_key == cache.parking {
        cache.parked = false;
    }
    cache.hold(new_key);
}

unsafe extern "C" fn truncate(cache: *mut ffi::sqlite3_pcache, limit: c_uint) {
    let cache = unsafe { tracked(cache) };
    if !cache.may_hold_from(limit) {
        // SQLite's cache would scan its whole table to drop nothing.
        TRUNCATIONS_SKIPPED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    TRUNCATIONS_PASSED.fetch_add(1, Ordering::Relaxed);
    if let Some(truncate) = methods().and_then(|methods| methods.xTruncate) {
        unsafe { truncate(cache.inner, limit) }
    }
    cache.highest = cache.highest.min(limit.saturating_sub(1));
    if cache.parking >= limit {
        cache.parked = false;
    }
}

unsafe extern "C" fn destroy(cache: *mut ffi::sqlite3_pcache) {
    // SAFETY: `cache` came from `create`'s Box::into_raw and SQLite uses it no more.
    let cache = unsafe { Box::from_raw(cache as *mut TrackedCache) };
    if let Some(destroy) = methods().and_then(|methods| methods.xDestroy) {
        unsafe { destroy(cache.inner) }
    }
}

unsafe extern "C" fn shrink(cache: *mut ffi::sqlite3_pcache) {
    let cache = unsafe { tracked(cache) };
    if let Some(shrink) = methods().and_then(|methods| methods.xShrink) {
        unsafe { shrink(cache.inner) }
    }
}

impl TrackedCache {
    /// Whether a page numbered `limit` or above may be held.
    fn may_hold_from(&self, limit: c_uint) -> bool {
        self.highest >= limit || (self.parked && self.parking >= limit)
    }

    /// Notes that a page is held under `key`.
    fn hold(&mut self, key: c_uint) {
        if key == self.parking {
            self.parked = true;
        } else {
            self.highest = self.highest.max(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> TrackedCache {
        TrackedCache {
            inner: std::ptr::null_mut(),
            parking: PENDING_BYTE / 4096 + 1,
            highest: 0,
            parked: false,
        }
    }

    #[test]
    fn a_page_parked_for_a_split_does_not_count_once_moved_on() {
        let mut cache = cache();
        cache.hold(10);
        assert!(cache.may_hold_from(10));
        assert!(!cache.may_hold_from(11), "nothing above page 10 was held");
        // A split orders its pages through the locking page's number and back.
        cache.hold(cache.parking);
        assert!(cache.may_hold_from(11), "the parked page is above the end");
        cache.parked = false; // what `rekey` does when the page leaves the parking number
        cache.hold(7);
        assert!(!cache.may_hold_from(11));
    }

    /// A transaction that grew the database and rolled back leaves pages past its end, which
    /// must be dropped: the file grows again over the same page numbers with other contents.
    #[tokio::test]
    async fn rolled_back_growth_is_dropped_and_the_database_stays_whole() {
        install();
        let folder = std::env::temp_dir().join(format!("natter-pcache-{}", std::process::id()));
        std::fs::create_dir_all(&folder).unwrap();
        let path = folder.join("pcache.db");
        let _ = std::fs::remove_file(&path);
        let database = crate::sql::open_database(&crate::sql::sqlite_url(&path), 1)
            .await
            .unwrap();
        let pool = &database.pool;
        sqlx::raw_sql(sqlx::AssertSqlSafe(
            "CREATE TABLE rows (object TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL, \
             PRIMARY KEY (object, seq)) WITHOUT ROWID; \
             CREATE INDEX rows_by_body ON rows (body);",
        ))
        .execute(pool)
        .await
        .unwrap();
        let fill = |round: i64| {
            format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) \
                 INSERT INTO rows SELECT 'u:' || (i * 7919 % 500), i + {round} * 10000, \
                 printf('%0200d', i * {round}) FROM n"
            )
        };
        assert!(
            CACHE_INSTALLED.load(Ordering::Relaxed),
            "the page cache is installed before SQLite's first use"
        );
        let mut connection = pool.acquire().await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("BEGIN; {}", fill(1))))
            .execute(&mut *connection)
            .await
            .unwrap();
        let passed = TRUNCATIONS_PASSED.load(Ordering::Relaxed);
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut *connection)
            .await
            .unwrap();
        assert!(
            TRUNCATIONS_PASSED.load(Ordering::Relaxed) > passed,
            "the pages past the rolled-back end are dropped"
        );
        let skipped = TRUNCATIONS_SKIPPED.load(Ordering::Relaxed);
        for round in 2..5 {
            sqlx::raw_sql(sqlx::AssertSqlSafe(fill(round)))
                .execute(&mut *connection)
                .await
                .unwrap();
        }
        assert!(
            TRUNCATIONS_SKIPPED.load(Ordering::Relaxed) > skipped,
            "commits after splits skip the truncation scan"
        );
        let check: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&mut *connection)
            .await
            .unwrap();
        assert_eq!(check, "ok");
        let (count, rolled_back): (i64, i64) =
            sqlx::query_as("SELECT COUNT(*), COUNT(*) FILTER (WHERE seq < 20000) FROM rows")
                .fetch_one(&mut *connection)
                .await
                .unwrap();
        assert_eq!((count, rolled_back), (9000, 0));
        drop(connection);
        database.close().await;
        let _ = std::fs::remove_dir_all(&folder);
    }
}
