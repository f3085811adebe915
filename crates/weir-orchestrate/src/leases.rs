//! One writer per table: leases on assets, held in the state store.
//!
//! Any number of processes (`weir run` from a terminal, `weir serve`, `weir worker`,
//! `weir backfill`, on any machines that share the state store) work on one project at once;
//! only the process holding an asset's lease stages, publishes, recovers or vacuums that
//! asset's tables. A holder renews its lease while it works ([`AssetLease`] does it on a task);
//! a lease not renewed for [`LEASE_TTL`] is free, and so is one held by a process of this
//! machine that no longer exists (a killed `weir run` does not make the next one wait).
//!
//! Leases never deadlock: a run holds one lease per asset it is running and never waits for
//! another while holding it; commands that need several (`weir vacuum`, `weir doctor`) take
//! them in name order.

use std::sync::OnceLock;
use std::time::Duration;

use sqlx::Row;

use crate::error::{OrchestrateError, Result};
use crate::state::{StateStore, now, state_err, timestamp};

/// How long a lease lasts without renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(30);
/// How often a held lease is renewed.
const RENEW_EVERY: Duration = Duration::from_secs(10);
/// How often a busy lease is tried again.
const RETRY: Duration = Duration::from_millis(100);

/// This process's name as a lease holder: `host:pid:random` (process ids repeat across
/// machines and over time).
pub fn holder() -> &'static str {
    static HOLDER: OnceLock<String> = OnceLock::new();
    HOLDER.get_or_init(|| {
        format!(
            "{}:{}:{}",
            host_name(),
            std::process::id(),
            &uuid::Uuid::now_v7().simple().to_string()[24..]
        )
    })
}

/// This machine's name, as process names in leases carry it.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && !h.contains(':'))
        .unwrap_or_else(|| "localhost".into())
}

/// Whether `holder` (a name ending `host:pid:random`, like [`holder`] and the names of
/// `weir serve` and `weir worker` processes) is a process of this machine that is gone: its
/// leases need not be waited for. A process of another machine cannot be checked, so its
/// leases run out.
pub fn holder_is_gone(holder: &str) -> bool {
    let mut parts = holder.rsplit(':');
    let (Some(_random), Some(pid), Some(host)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    if host != host_name() {
        return false;
    }
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    if pid == std::process::id() {
        // This process goes by several names (its lease holder, its queue executors).
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses: Z(ombie) and X (dead) are gone.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|s| s == "Z" || s == "X"),
        Err(_) => std::path::Path::new("/proc/self").exists(),
    }
}

/// The assets whose leases this process holds now ([`AssetLease`]s alive): a second task of
/// this process asking for one of them waits like any other process.
fn held_here() -> &'static std::sync::Mutex<std::collections::BTreeSet<String>> {
    static HELD: OnceLock<std::sync::Mutex<std::collections::BTreeSet<String>>> = OnceLock::new();
    HELD.get_or_init(Default::default)
}

/// Reserves `asset` for one task of this process; false when another task has it. Taken
/// before the state store is asked, so two tasks asking at once cannot both pass.
fn reserve_here(asset: &str) -> bool {
    held_here()
        .lock()
        .is_ok_and(|mut h| h.insert(asset.to_string()))
}

fn unreserve_here(asset: &str) {
    if let Ok(mut h) = held_here().lock() {
        h.remove(asset);
    }
}

/// What trying to take a lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseAttempt {
    Acquired,
    /// Another live process holds it.
    HeldBy(String),
}

impl StateStore {
    /// Takes `asset`'s lease for this process unless another live process holds it (this
    /// process holding it already is fine: [`AssetLease`] keeps two of its tasks apart).
    pub async fn try_lease(&self, asset: &str) -> Result<LeaseAttempt> {
        let at = now();
        let until = timestamp(
            chrono::Utc::now() + chrono::Duration::from_std(LEASE_TTL).unwrap_or_default(),
        );
        let mut tx = self.begin_write_on(self.asset_lease_pool()).await?;
        let row = sqlx::query(&format!(
            "SELECT holder, lease_until FROM asset_leases WHERE asset = $1{}",
            self.for_update()
        ))
        .bind(asset)
        .fetch_optional(&mut *tx)
        .await
        .map_err(state_err)?;
        if let Some(row) = row {
            let current: String = row.try_get("holder").map_err(state_err)?;
            let lease_until: String = row.try_get("lease_until").map_err(state_err)?;
            let free = current == holder() || lease_until < at || holder_is_gone(&current);
            if !free {
                return Ok(LeaseAttempt::HeldBy(current));
            }
            sqlx::query(
                "UPDATE asset_leases SET holder = $1, acquired_at = $2, lease_until = $3 WHERE asset = $4",
            )
            .bind(holder())
            .bind(&at)
            .bind(&until)
            .bind(asset)
            .execute(&mut *tx)
            .await
            .map_err(state_err)?;
        } else {
            let inserted = sqlx::query(
                "INSERT INTO asset_leases (asset, holder, acquired_at, lease_until) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (asset) DO NOTHING",
            )
            .bind(asset)
            .bind(holder())
            .bind(&at)
            .bind(&until)
            .execute(&mut *tx)
            .await
            .map_err(state_err)?;
            if inserted.rows_affected() == 0 {
                // Another process inserted it since the read (PostgreSQL): it holds it.
                return Ok(LeaseAttempt::HeldBy("another process".into()));
            }
        }
        tx.commit().await.map_err(state_err)?;
        Ok(LeaseAttempt::Acquired)
    }

    /// Renews this process's lease on `asset`; false when it is no longer this process's.
    /// Through the lease pool: a renewal lost to a crash only makes the lease look one
    /// renewal older.
    pub async fn renew_lease(&self, asset: &str) -> Result<bool> {
        let until = timestamp(
            chrono::Utc::now() + chrono::Duration::from_std(LEASE_TTL).unwrap_or_default(),
        );
        let done = sqlx::query(
            "UPDATE asset_leases SET lease_until = $1 WHERE asset = $2 AND holder = $3",
        )
        .bind(&until)
        .bind(asset)
        .bind(holder())
        .execute(&self.lease_pool)
        .await
        .map_err(state_err)?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether this process holds `asset`'s lease (checked before a publication is
    /// journalled or, without a journal, committed: a process that lost its lease must not
    /// publish).
    pub async fn holds_lease(&self, asset: &str) -> Result<bool> {
        let row = sqlx::query("SELECT holder FROM asset_leases WHERE asset = $1")
            .bind(asset)
            .fetch_optional(&self.pool)
            .await
            .map_err(state_err)?;
        Ok(match row {
            Some(row) => row.try_get::<String, _>("holder").map_err(state_err)? == holder(),
            None => false,
        })
    }

    /// Gives up this process's lease on `asset`.
    pub async fn release_lease(&self, asset: &str) -> Result<()> {
        sqlx::query("DELETE FROM asset_leases WHERE asset = $1 AND holder = $2")
            .bind(asset)
            .bind(holder())
            .execute(self.asset_lease_pool())
            .await
            .map_err(state_err)?;
        Ok(())
    }
}

/// The fence before a publication is journalled (or committed, when it needs no journal):
/// fails when `asset`'s lease is no longer this process's (another process took it over
/// after this one stalled past [`LEASE_TTL`]), so that it publishes nothing.
pub(crate) async fn ensure_held(state: &StateStore, asset: &str) -> Result<()> {
    if !state.holds_lease(asset).await? {
        return Err(OrchestrateError::Config(format!(
            "this process no longer holds the lease on `{asset}` (another process took it over after it was not renewed for {} s); nothing was published",
            LEASE_TTL.as_secs()
        )));
    }
    Ok(())
}

/// A reservation in this process not yet backed by a lease: given back when dropped.
struct Reservation(Option<String>);

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(asset) = self.0.take() {
            unreserve_here(&asset);
        }
    }
}

/// A held lease, renewed on a task until [`AssetLease::release`] (or drop, which releases it
/// in the background).
pub struct AssetLease {
    state: StateStore,
    asset: String,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

impl AssetLease {
    /// Takes `asset`'s lease, waiting while another live process holds it (saying so once in
    /// the log).
    pub async fn acquire(state: &StateStore, asset: &str) -> Result<AssetLease> {
        let mut told = false;
        loop {
            match AssetLease::attempt(state, asset).await? {
                LeaseAttempt::Acquired => return Ok(AssetLease::held(state, asset)),
                LeaseAttempt::HeldBy(other) => {
                    if !told {
                        tracing::warn!(asset, holder = %other, "waiting: another process is writing this asset");
                        told = true;
                    }
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }

    /// Takes `asset`'s lease if no other live process holds it.
    pub async fn try_acquire(state: &StateStore, asset: &str) -> Result<Option<AssetLease>> {
        Ok(match AssetLease::attempt(state, asset).await? {
            LeaseAttempt::Acquired => Some(AssetLease::held(state, asset)),
            LeaseAttempt::HeldBy(_) => None,
        })
    }

    /// One try: the reservation in this process first, then the state store; the reservation
    /// stays only when the lease was taken.
    async fn attempt(state: &StateStore, asset: &str) -> Result<LeaseAttempt> {
        if !reserve_here(asset) {
            return Ok(LeaseAttempt::HeldBy(format!("{} (this process)", holder())));
        }
        // Dropped while asking (a run stopped by its timeout), the reservation goes too.
        let mut reservation = Reservation(Some(asset.to_string()));
        let attempt = state.try_lease(asset).await;
        if matches!(attempt, Ok(LeaseAttempt::Acquired)) {
            reservation.0 = None;
        }
        attempt
    }

    fn held(state: &StateStore, asset: &str) -> AssetLease {
        let renewer = {
            let (state, asset) = (state.clone(), asset.to_string());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(RENEW_EVERY).await;
                    match state.renew_lease(&asset).await {
                        Ok(true) => {}
                        // Taken over: the publication's fence (`ensure_held`) stops the run.
                        Ok(false) => {
                            tracing::warn!(asset = %asset, "its lease was taken over by another process");
                            return;
                        }
                        // The store may be restarting: the lease lasts LEASE_TTL meanwhile.
                        Err(e) => tracing::warn!(asset = %asset, "renewing its lease: {e}"),
                    }
                }
            })
        };
        AssetLease {
            state: state.clone(),
            asset: asset.to_string(),
            renewer: Some(renewer),
        }
    }

    pub async fn release(mut self) -> Result<()> {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
        let released = self.state.release_lease(&self.asset).await;
        unreserve_here(&self.asset);
        released
    }
}

impl Drop for AssetLease {
    fn drop(&mut self) {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
            let (state, asset) = (self.state.clone(), self.asset.clone());
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(async move {
                        let _ = state.release_lease(&asset).await;
                        unreserve_here(&asset);
                    });
                }
                // No runtime to release it on: it runs out after LEASE_TTL.
                Err(_) => unreserve_here(&asset),
            }
        }
    }
}

/// A slot of a concurrency pool (`[pools]` in weir.toml): slot `i` of pool `p` is the lease
/// `pool:p#i`, so the limit holds across every process sharing the state store, and a slot
/// of a process that died is free like its asset leases.
pub struct PoolSlot(AssetLease);

impl PoolSlot {
    /// Takes a free slot of `pool` (of `slots`), waiting while all are taken.
    pub async fn acquire(state: &StateStore, pool: &str, slots: u32) -> Result<PoolSlot> {
        let mut told = false;
        loop {
            for i in 0..slots.max(1) {
                if let Some(lease) =
                    AssetLease::try_acquire(state, &format!("pool:{pool}#{i}")).await?
                {
                    return Ok(PoolSlot(lease));
                }
            }
            if !told {
                tracing::info!(pool, slots, "waiting: every slot of the pool is taken");
                told = true;
            }
            tokio::time::sleep(RETRY).await;
        }
    }

    pub async fn release(self) -> Result<()> {
        self.0.release().await
    }
}

/// Leases on several assets, taken in name order (see the module's note on deadlocks).
pub struct AssetLeases(Vec<AssetLease>);

impl AssetLeases {
    pub async fn acquire(state: &StateStore, assets: &[String]) -> Result<AssetLeases> {
        let mut names: Vec<&String> = assets.iter().collect();
        names.sort();
        names.dedup();
        let mut held = Vec::with_capacity(names.len());
        for name in names {
            held.push(AssetLease::acquire(state, name).await?);
        }
        Ok(AssetLeases(held))
    }

    pub async fn release(self) -> Result<()> {
        for lease in self.0 {
            lease.release().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_of_this_machine_that_is_gone_is_recognised() {
        let me = holder();
        assert!(!holder_is_gone(me), "this process is alive");
        let host = host_name();
        // PID 1 is alive on any Linux machine (or container).
        assert!(!holder_is_gone(&format!("{host}:1:abc")));
        // The largest PID Linux hands out is far below this.
        assert!(holder_is_gone(&format!("{host}:999999999:abc")));
        // This process's PID under another name: one of its own names.
        assert!(!holder_is_gone(&format!(
            "serve:{host}:{}:other",
            std::process::id()
        )));
        // Another machine's processes cannot be checked.
        assert!(!holder_is_gone("elsewhere.example:999999999:abc"));
        // A worker's name: its role first.
        assert!(holder_is_gone(&format!("worker:{host}:999999999:abc")));
        assert!(!holder_is_gone(&format!("worker:{host}:1:abc")));
        assert!(!holder_is_gone("no pid here"));
    }

    #[tokio::test]
    async fn one_live_process_holds_a_lease_and_a_gone_one_does_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("state.db").display());
        let postgres = crate::testing::fresh_postgres_database()
            .await
            .expect("a PostgreSQL database for the test");
        for url in [url, postgres] {
            let state = StateStore::connect(&url).await.expect("connect");
            assert_eq!(
                state.try_lease("orders").await.expect("lease"),
                LeaseAttempt::Acquired
            );
            assert!(state.holds_lease("orders").await.expect("holds"));
            // Held through an AssetLease, it is refused to another task of this process.
            let lease = AssetLease::acquire(&state, "stg_orders")
                .await
                .expect("lease");
            assert!(
                AssetLease::try_acquire(&state, "stg_orders")
                    .await
                    .expect("lease")
                    .is_none(),
                "another task of this process waits for it"
            );
            ensure_held(&state, "stg_orders").await.expect("still ours");
            lease.release().await.expect("release");
            assert!(
                AssetLease::try_acquire(&state, "stg_orders")
                    .await
                    .expect("lease")
                    .is_some(),
                "free once released"
            );
            // A live process of this machine (PID 1) holds another asset.
            let far = timestamp(chrono::Utc::now() + chrono::Duration::hours(1));
            for (asset, other) in [
                ("payments", format!("{}:1:abc", host_name())),
                ("customers", format!("{}:999999999:abc", host_name())),
            ] {
                sqlx::query("INSERT INTO asset_leases (asset, holder, acquired_at, lease_until) VALUES ($1, $2, $3, $4)")
                    .bind(asset)
                    .bind(other)
                    .bind(now())
                    .bind(&far)
                    .execute(&state.pool)
                    .await
                    .expect("insert");
            }
            assert!(matches!(
                state.try_lease("payments").await.expect("lease"),
                LeaseAttempt::HeldBy(_)
            ));
            assert_eq!(
                state.try_lease("customers").await.expect("lease"),
                LeaseAttempt::Acquired,
                "a gone process's lease is free at once"
            );
            state.release_lease("orders").await.expect("release");
            assert!(!state.holds_lease("orders").await.expect("holds"));
            state.close().await;
        }
    }
}
