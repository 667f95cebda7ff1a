//! Users and roles, stored in the node's catalog. Passwords are kept only as Argon2id
//! hashes (PHC strings, a fresh salt each).
//!
//! Three roles, each allowed what the one before it is:
//! - **viewer**: read, iterate, stream, list;
//! - **operator**: also write and command channels whose names match one of the user's
//!   patterns (`*` any run of characters, `?` one), at an authority up to the user's
//!   maximum, and mark ranges (create, rename, label, metadata);
//! - **admin**: also create, rename and delete channels, delete data and ranges, deploy
//!   flows and manage users.
//!
//! The node enforces roles on every request and stream (`auth.forbidden`); see
//! docs/protocol.md §2.

use std::collections::BTreeMap;
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use parking_lot::RwLock;
use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, meta_err};
use crate::error::{Error, Result};

const USERS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("users");

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read, iterate, stream, list.
    Viewer,
    /// Also write and command matching channels up to a maximum authority; mark ranges.
    Operator,
    /// Everything, including channels, deletes, flows and users.
    Admin,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        })
    }
}

impl std::str::FromStr for Role {
    type Err = Error;

    fn from_str(s: &str) -> Result<Role> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(Error::InvalidArgument { reason: format!("unknown role {other:?}: use viewer, operator or admin") }),
        }
    }
}

/// A user as stored (without the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Login name.
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// Operators: the highest authority they may command at (admins: 255; viewers: none).
    #[serde(default = "max_authority")]
    pub max_authority: u8,
    /// Operators: name patterns of the channels they may write (`*`, `?`).
    #[serde(default = "all_channels")]
    pub channels: Vec<String>,
}

fn max_authority() -> u8 {
    u8::MAX
}

fn all_channels() -> Vec<String> {
    vec!["*".into()]
}

impl User {
    /// The administrator that the node's `--token` and `--user/--password` options stand
    /// for.
    pub fn admin(name: impl Into<String>) -> User {
        User { name: name.into(), role: Role::Admin, max_authority: u8::MAX, channels: all_channels() }
    }

    /// True if the user may write (command) the channel named `name`.
    pub fn may_write(&self, name: &str) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Viewer => false,
            Role::Operator => self.channels.iter().any(|p| glob(p, name)),
        }
    }

    /// True if the user may hold control at `authority`.
    pub fn may_command_at(&self, authority: u8) -> bool {
        self.role >= Role::Operator && authority <= self.max_authority
    }
}

/// `*` matches any run of characters, `?` one character; everything else itself.
pub fn glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Iterative matching with one backtrack point (the last `*`).
    let (mut i, mut j, mut star, mut mark) = (0usize, 0usize, None::<usize>, 0usize);
    while j < n.len() {
        match p.get(i) {
            Some('*') => {
                star = Some(i);
                mark = j;
                i += 1;
            }
            Some(&c) if c == '?' || c == n[j] => {
                i += 1;
                j += 1;
            }
            _ => match star {
                Some(s) => {
                    i = s + 1;
                    mark += 1;
                    j = mark;
                }
                None => return false,
            },
        }
    }
    p[i.min(p.len())..].iter().all(|&c| c == '*')
}

/// A user to add.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login name (1 to 64 characters, no white space or control characters).
    pub name: String,
    /// The password (at least 8 characters).
    pub password: String,
    /// The role.
    pub role: Role,
    /// Operators: the highest authority (default 255).
    pub max_authority: Option<u8>,
    /// Operators: channel name patterns (default `*`).
    pub channels: Vec<String>,
}

/// A user with its password hash, as a catalog or a cluster's etcd keeps it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredUser {
    /// The user.
    pub user: User,
    /// Argon2id PHC string.
    hash: String,
}

impl std::fmt::Debug for StoredUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredUser").field("user", &self.user).finish_non_exhaustive()
    }
}

impl StoredUser {
    /// Check a user to add and hash its password.
    ///
    /// # Errors
    /// `invalid_argument`: the name is malformed, the password is short, an operator's
    /// pattern is empty.
    pub fn new(new: NewUser) -> Result<StoredUser> {
        check_name(&new.name)?;
        check_password(&new.password)?;
        let channels = if new.channels.is_empty() { all_channels() } else { new.channels };
        if channels.iter().any(|p| p.trim().is_empty()) {
            return Err(Error::InvalidArgument { reason: "channel patterns cannot be empty; use * for every channel".into() });
        }
        let user = match new.role {
            Role::Admin => User::admin(new.name),
            Role::Viewer => User { name: new.name, role: Role::Viewer, max_authority: 0, channels: Vec::new() },
            Role::Operator => User { name: new.name, role: Role::Operator, max_authority: new.max_authority.unwrap_or(u8::MAX), channels },
        };
        Ok(StoredUser { user, hash: hash(&new.password)? })
    }

    /// The same user with another password.
    ///
    /// # Errors
    /// `invalid_argument` for a short password.
    pub fn with_password(&self, password: &str) -> Result<StoredUser> {
        check_password(password)?;
        Ok(StoredUser { user: self.user.clone(), hash: hash(password)? })
    }
}

/// The users of a node (`Engine::users`): those of its catalog and, on a cluster node, the
/// cluster's accounts kept in etcd ([`Users::set_cluster`]), which take precedence for a
/// name both hold.
pub struct Users {
    catalog: Arc<Catalog>,
    cache: RwLock<BTreeMap<String, StoredUser>>,
    /// The cluster's accounts (`None` outside a cluster), kept current by `cluster/users.rs`.
    cluster: RwLock<Option<BTreeMap<String, StoredUser>>>,
    /// Verified when a name is unknown, so a wrong name costs as long as a wrong password
    /// (hashed at the first such login, not at every engine open).
    decoy: std::sync::OnceLock<String>,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users").field("users", &self.cache.read().len()).finish()
    }
}

fn hash(password: &str) -> Result<String> {
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes())
        .map_err(|e| Error::InvalidArgument { reason: format!("cannot make a salt: {e}") })?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::InvalidArgument { reason: format!("cannot hash the password: {e}") })
}

fn check_password(password: &str) -> Result<()> {
    if password.chars().count() < 8 {
        return Err(Error::InvalidArgument { reason: "passwords have at least 8 characters".into() });
    }
    Ok(())
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty() && name.chars().count() <= 64 && !name.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument { reason: format!("user name {name:?} must be 1 to 64 characters without spaces") })
    }
}

impl Users {
    pub(crate) fn open(catalog: Arc<Catalog>) -> Result<Users> {
        let mut cache = BTreeMap::new();
        {
            let txn = catalog.read()?;
            // The table exists once a user was added.
            if let Ok(t) = txn.open_table(USERS) {
                for row in t.iter().map_err(meta_err)? {
                    let (k, v) = row.map_err(meta_err)?;
                    let s: StoredUser = serde_json::from_slice(v.value()).map_err(meta_err)?;
                    cache.insert(k.value().to_string(), s);
                }
            }
        }
        Ok(Users { catalog, cache: RwLock::new(cache), cluster: RwLock::new(None), decoy: std::sync::OnceLock::new() })
    }

    /// Users kept in a catalog file of their own (unit tests of the server's auth).
    #[cfg(all(test, feature = "server"))]
    pub(crate) fn open_file(path: &std::path::Path) -> Result<Users> {
        Users::open(Arc::new(Catalog::open(path)?))
    }

    fn put(&self, s: &StoredUser) -> Result<()> {
        let txn = self.catalog.write()?;
        {
            let mut t = txn.open_table(USERS).map_err(meta_err)?;
            t.insert(s.user.name.as_str(), serde_json::to_vec(s).map_err(meta_err)?.as_slice()).map_err(meta_err)?;
        }
        txn.commit().map_err(meta_err)?;
        Ok(())
    }

    /// Add a user.
    ///
    /// # Errors
    /// `invalid_argument`: the name is taken or malformed, the password is short, an
    /// operator's pattern is empty.
    pub fn add(&self, new: NewUser) -> Result<User> {
        let stored = StoredUser::new(new)?;
        let user = stored.user.clone();
        let mut cache = self.cache.write();
        if cache.contains_key(&user.name) {
            return Err(Error::InvalidArgument { reason: format!("user {:?} exists; remove it first or change its password", user.name) });
        }
        self.put(&stored)?;
        cache.insert(user.name.clone(), stored);
        tracing::info!(key = "users", user = %user.name, role = %user.role, "user added");
        Ok(user)
    }

    /// Every user, by name: the cluster's accounts and this node's own.
    pub fn list(&self) -> Vec<User> {
        let mut all: BTreeMap<String, User> = self.cache.read().iter().map(|(n, s)| (n.clone(), s.user.clone())).collect();
        if let Some(c) = self.cluster.read().as_ref() {
            all.extend(c.iter().map(|(n, s)| (n.clone(), s.user.clone())));
        }
        all.into_values().collect()
    }

    /// The user called `name` (a cluster account first).
    pub fn get(&self, name: &str) -> Option<User> {
        self.find(name).map(|s| s.user)
    }

    fn find(&self, name: &str) -> Option<StoredUser> {
        if let Some(s) = self.cluster.read().as_ref().and_then(|c| c.get(name)) {
            return Some(s.clone());
        }
        self.cache.read().get(name).cloned()
    }

    /// True if no user was added, here or to the cluster.
    pub fn is_empty(&self) -> bool {
        self.cache.read().is_empty() && self.cluster.read().as_ref().is_none_or(BTreeMap::is_empty)
    }

    /// Replace the cluster's accounts (a cluster node, from etcd). Returns the names this
    /// node's catalog holds too: the cluster account is the one that counts.
    #[cfg(feature = "cluster")]
    pub(crate) fn set_cluster(&self, all: BTreeMap<String, StoredUser>) -> Vec<String> {
        let shadowed = self.cache.read().keys().filter(|n| all.contains_key(*n)).cloned().collect();
        *self.cluster.write() = Some(all);
        shadowed
    }

    /// Add or replace one cluster account.
    #[cfg(feature = "cluster")]
    pub(crate) fn put_cluster(&self, s: StoredUser) {
        self.cluster.write().get_or_insert_with(BTreeMap::new).insert(s.user.name.clone(), s);
    }

    /// Take out one cluster account; its sessions end at their next request.
    #[cfg(feature = "cluster")]
    pub(crate) fn remove_cluster(&self, name: &str) {
        if let Some(c) = self.cluster.write().as_mut() {
            c.remove(name);
        }
    }

    /// Remove a user; their sessions end at their next request.
    ///
    /// # Errors
    /// `invalid_argument` for an unknown user.
    pub fn remove(&self, name: &str) -> Result<()> {
        let mut cache = self.cache.write();
        if !cache.contains_key(name) {
            return Err(Error::InvalidArgument { reason: format!("no user {name:?}; `telemetron users list` shows them") });
        }
        let txn = self.catalog.write()?;
        {
            let mut t = txn.open_table(USERS).map_err(meta_err)?;
            t.remove(name).map_err(meta_err)?;
        }
        txn.commit().map_err(meta_err)?;
        cache.remove(name);
        tracing::info!(key = "users", user = %name, "user removed");
        Ok(())
    }

    /// Set a user's password.
    ///
    /// # Errors
    /// `invalid_argument` for an unknown user or a short password.
    pub fn set_password(&self, name: &str, password: &str) -> Result<()> {
        check_password(password)?;
        let h = hash(password)?;
        let mut cache = self.cache.write();
        let Some(s) = cache.get(name).cloned() else {
            return Err(Error::InvalidArgument { reason: format!("no user {name:?}; `telemetron users list` shows them") });
        };
        let s = StoredUser { hash: h, ..s };
        self.put(&s)?;
        cache.insert(name.to_string(), s);
        tracing::info!(key = "users", user = %name, "password changed");
        Ok(())
    }

    /// The user if `password` is theirs. Takes as long for an unknown name (Argon2 is slow
    /// on purpose: run it off async threads).
    pub fn verify(&self, name: &str, password: &str) -> Option<User> {
        let found = self.find(name);
        let decoy = || self.decoy.get_or_init(|| hash("decoy password").unwrap_or_default()).as_str();
        let phc = found.as_ref().map_or_else(decoy, |s| s.hash.as_str());
        let ok = PasswordHash::new(phc).is_ok_and(|h| argon2::Argon2::default().verify_password(password.as_bytes(), &h).is_ok());
        found.filter(|_| ok).map(|s| s.user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (p, n, want) in [
            ("*", "anything", true),
            ("valve_*", "valve_cmd", true),
            ("valve_*", "press_cmd", false),
            ("*_cmd", "valve_cmd", true),
            ("v?lve", "valve", true),
            ("v?lve", "vlve", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("", "", true),
        ] {
            assert_eq!(glob(p, n), want, "{p} ~ {n}");
        }
    }

    #[test]
    fn roles_bound_writes_and_authority() {
        let op = User { name: "o".into(), role: Role::Operator, max_authority: 100, channels: vec!["valve_*".into()] };
        assert!(op.may_write("valve_cmd") && !op.may_write("press"));
        assert!(op.may_command_at(100) && !op.may_command_at(101));
        let viewer = User { name: "v".into(), role: Role::Viewer, max_authority: 0, channels: vec![] };
        assert!(!viewer.may_write("valve_cmd") && !viewer.may_command_at(0));
        assert!(User::admin("a").may_write("x") && User::admin("a").may_command_at(255));
    }
}
