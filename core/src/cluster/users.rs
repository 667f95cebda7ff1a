//! The cluster's user accounts: kept in etcd (`<prefix>/users/<name>`: the user and its
//! Argon2id hash, as a node's catalog keeps them), managed with `telemetron users ...
//! --cluster` ([`add_user`], [`remove_user`], [`set_user_password`], [`list_users`]), and
//! mirrored by every node ([`watch_users`]), so an account logs in on any node, and one
//! removed or given a new password is so on every node at once (its sessions end at their
//! next request).
//!
//! A node's own catalog users (`telemetron users ... --data`) still count on that node only:
//! a maintenance account for one machine. For a name both hold, the cluster's account is the
//! one that counts (the node logs a warning).

use std::collections::BTreeMap;

use etcd_client::{Compare, CompareOp, EventType, TxnOp, WatchStream};

use super::Cluster;
use super::coord::{Coord, etcd_err};
use crate::error::{Error, Result};
use crate::users::{NewUser, StoredUser, User};

fn user_key(c: &Coord, name: &str) -> String {
    c.key(&format!("users/{name}"))
}

fn no_user(name: &str) -> Error {
    Error::InvalidArgument { reason: format!("the cluster has no user {name:?}; `telemetron users list --cluster ...` shows them") }
}

/// Add a user to the cluster's accounts (etcd at `etcd`, keys under `prefix`).
///
/// # Errors
/// `invalid_argument` for a name the cluster holds already, a malformed name, a short
/// password or an empty pattern; `cluster.coordination` if etcd cannot be reached.
pub async fn add_user(etcd: &[String], prefix: &str, new: NewUser) -> Result<User> {
    let stored = StoredUser::new(new)?;
    let mut c = Coord::connect(etcd, prefix).await?;
    let key = user_key(&c, &stored.user.name);
    let txn = etcd_client::Txn::new().when([Compare::version(key.clone(), CompareOp::Equal, 0)]).and_then([TxnOp::put(
        key,
        serde_json::to_vec(&stored).expect("a user serializes"),
        None,
    )]);
    let r = c.client().txn(txn).await.map_err(|e| etcd_err("adding a user", e))?;
    if !r.succeeded() {
        return Err(Error::InvalidArgument {
            reason: format!("the cluster has a user {:?}; remove it first or change its password", stored.user.name),
        });
    }
    tracing::info!(key = "users", user = %stored.user.name, role = %stored.user.role, "cluster user added");
    Ok(stored.user)
}

/// Remove a user from the cluster's accounts.
///
/// # Errors
/// `invalid_argument` for a name the cluster does not hold; `cluster.coordination`.
pub async fn remove_user(etcd: &[String], prefix: &str, name: &str) -> Result<()> {
    let mut c = Coord::connect(etcd, prefix).await?;
    let key = user_key(&c, name);
    let r = c.client().delete(key, None).await.map_err(|e| etcd_err("removing a user", e))?;
    if r.deleted() == 0 {
        return Err(no_user(name));
    }
    Ok(())
}

/// Set the password of a cluster account. A concurrent change of the same account makes
/// this fail rather than undo it.
///
/// # Errors
/// `invalid_argument` for an unknown user, a short password, or an account changed
/// meanwhile (try again); `cluster.coordination`.
pub async fn set_user_password(etcd: &[String], prefix: &str, name: &str, password: &str) -> Result<()> {
    let mut c = Coord::connect(etcd, prefix).await?;
    let key = user_key(&c, name);
    let got = c.client().get(key.clone(), None).await.map_err(|e| etcd_err("reading a user", e))?;
    let kv = got.kvs().first().ok_or_else(|| no_user(name))?;
    let old: StoredUser = serde_json::from_slice(kv.value()).map_err(|e| Error::InvalidArgument {
        reason: format!("the cluster's record of user {name:?} is unreadable ({e}); remove it and add it again"),
    })?;
    let new = old.with_password(password)?;
    let txn = etcd_client::Txn::new()
        .when([Compare::mod_revision(key.clone(), CompareOp::Equal, kv.mod_revision())])
        .and_then([TxnOp::put(key, serde_json::to_vec(&new).expect("a user serializes"), None)]);
    let r = c.client().txn(txn).await.map_err(|e| etcd_err("changing a password", e))?;
    if !r.succeeded() {
        return Err(Error::InvalidArgument { reason: format!("user {name:?} was changed or removed meanwhile; try again") });
    }
    Ok(())
}

/// The cluster's accounts, by name.
///
/// # Errors
/// `cluster.coordination`.
pub async fn list_users(etcd: &[String], prefix: &str) -> Result<Vec<User>> {
    let mut c = Coord::connect(etcd, prefix).await?;
    Ok(c.users().await?.0.into_iter().map(|s| s.user).collect())
}

impl Cluster {
    /// Take the cluster's accounts from etcd, and a watch from the revision after.
    pub(super) async fn sync_users(&self) -> Result<WatchStream> {
        let (all, watch) = self.inner.coord.lock().await.users().await?;
        let all: BTreeMap<String, StoredUser> = all.into_iter().map(|s| (s.user.name.clone(), s)).collect();
        for name in self.inner.engine.users().set_cluster(all) {
            tracing::warn!(key = "cluster", user = %name,
                "this node's catalog and the cluster both have this user; the cluster's account counts (remove the node's one with `telemetron users remove --data`)");
        }
        self.warn_without_token();
        Ok(watch)
    }

    /// With accounts, every node requires credentials, peers included: a node without a
    /// peer token cannot reach the others.
    fn warn_without_token(&self) {
        if self.inner.config.token.is_none() && !self.inner.engine.users().is_empty() {
            tracing::error!(
                key = "cluster",
                "the cluster has user accounts, so every node requires credentials, and this node has no --token to reach its peers with: start every node with the same --token"
            );
        }
    }
}

/// Keep the cluster's accounts current on this node. A broken watch is replaced by a full
/// read and a fresh watch.
pub(super) async fn watch_users(cluster: Cluster, mut watch: WatchStream) {
    let users = cluster.inner.engine.users();
    let prefix = format!("{}/users/", cluster.inner.config.prefix.trim_end_matches('/'));
    loop {
        while let Ok(Some(r)) = watch.message().await {
            for ev in r.events() {
                let Some(kv) = ev.kv() else { continue };
                match ev.event_type() {
                    EventType::Put => match serde_json::from_slice::<StoredUser>(kv.value()) {
                        Ok(s) => {
                            let first = users.is_empty();
                            users.put_cluster(s);
                            if first {
                                cluster.warn_without_token();
                            }
                        }
                        Err(e) => {
                            tracing::warn!(key = "cluster", etcd_key = kv.key_str().unwrap_or(""), error = %e, "unreadable user record in etcd; ignored")
                        }
                    },
                    EventType::Delete => {
                        if let Some(name) = kv.key_str().ok().and_then(|k| k.strip_prefix(prefix.as_str())) {
                            users.remove_cluster(name);
                        }
                    }
                }
            }
        }
        watch = super::coord::resync(|| cluster.sync_users()).await;
    }
}
