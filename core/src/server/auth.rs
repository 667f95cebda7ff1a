//! Authentication and roles: static bearer tokens, or users who log in for a session token.
//! Tokens and `--user/--password` act as admins; users stored in the catalog
//! (`telemetron users add`) have the role they were given (see [`crate::users`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;

use crate::protocol::NetError;
use crate::users::{Role, User, Users};

/// Who may connect. No tokens and no users: no authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// Accepted bearer tokens (never expire).
    pub tokens: Vec<String>,
    /// `(username, password)` pairs that may log in.
    pub users: Vec<(String, String)>,
    /// A session token unused for this long expires (default 12 h). Clients that logged
    /// in with a password log in again by themselves.
    pub session_idle: Duration,
    /// Most sessions kept; a login beyond it ends the least recently used (default 10,000).
    pub max_sessions: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig { tokens: Vec::new(), users: Vec::new(), session_idle: Duration::from_secs(12 * 3600), max_sessions: 10_000 }
    }
}

/// The server's credential checks.
#[derive(Debug)]
pub(crate) struct Auth {
    tokens: Vec<String>,
    users: Vec<(String, String)>,
    idle: Duration,
    max_sessions: usize,
    /// Tokens handed out by login: who logged in, and when each was last used.
    sessions: parking_lot::Mutex<HashMap<String, (Who, Instant)>>,
}

/// Who a session belongs to, fixed at login: a `--user` (an admin) or a stored user (whose
/// role is read again at every request, so a removal or a new role takes effect at once).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Who {
    Configured(String),
    Stored(String),
}

/// The role a route needs (`path` under `/api/v1/`). Anything not listed needs an admin,
/// so a new route is closed until it is classified here.
pub(crate) fn required_role(path: &str) -> Role {
    match path.strip_prefix("/api/v1/").unwrap_or(path) {
        "auth/login"
        | "auth/check"
        | "channels/retrieve"
        | "channels/search"
        | "channels/time_range"
        | "ranges/retrieve"
        | "ranges/search"
        | "ranges/children"
        | "ranges/meta/get"
        | "frames/read"
        | "control/states"
        | "stream/streamer"
        | "stream/iterator"
        | "flows/list"
        | "flows/get"
        | "observe/metrics"
        | "observe/summary" => Role::Viewer,
        "frames/write" | "stream/writer" | "ranges/create" | "ranges/labels" | "ranges/rename" | "ranges/meta/set"
        | "ranges/meta/delete" => Role::Operator,
        _ => Role::Admin,
    }
}

/// `auth.forbidden` unless `user` may call `path`.
pub(crate) fn permit(user: &User, path: &str) -> Result<(), NetError> {
    let need = required_role(path);
    if user.role >= need {
        return Ok(());
    }
    Err(NetError::Forbidden { reason: format!("{} is a{} {}; {path} needs {need}", user.name, article(user.role), user.role) })
}

fn article(r: Role) -> &'static str {
    if r == Role::Viewer { "" } else { "n" }
}

/// Compare without leaking where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Auth {
    pub(crate) fn new(c: &AuthConfig) -> Auth {
        Auth {
            tokens: c.tokens.clone(),
            users: c.users.clone(),
            idle: c.session_idle,
            max_sessions: c.max_sessions.max(1),
            sessions: Default::default(),
        }
    }

    /// A name both configured (`--user`) and stored would be two people under one login.
    pub(crate) fn check_names(&self, users: &Users) -> Result<(), String> {
        match self.users.iter().find(|(u, _)| users.get(u).is_some()) {
            Some((u, _)) => Err(format!("user {u:?} is both --user and a stored user (`telemetron users list`); remove one or rename it")),
            None => Ok(()),
        }
    }

    /// True if requests need credentials: tokens or users are configured, or the catalog
    /// holds users.
    pub(crate) fn required(&self, users: &Users) -> bool {
        !self.tokens.is_empty() || !self.users.is_empty() || !users.is_empty()
    }

    /// Who sent a request, from its `Authorization` header (an admin when the node needs
    /// no credentials). A session token's use keeps it alive; a session of a user removed
    /// since ends.
    pub(crate) fn check(&self, headers: &HeaderMap, users: &Users) -> Result<User, NetError> {
        if !self.required(users) {
            return Ok(User::admin("anonymous"));
        }
        let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else { return Err(NetError::AuthRequired) };
        let token = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).ok_or(NetError::InvalidCredentials)?.trim();
        if self.tokens.iter().fold(false, |acc, t| acc | same(t.as_bytes(), token.as_bytes())) {
            return Ok(User::admin("token"));
        }
        let who = {
            let mut sessions = self.sessions.lock();
            let now = Instant::now();
            match sessions.get_mut(token) {
                Some((who, last)) if now.duration_since(*last) <= self.idle => {
                    *last = now;
                    who.clone()
                }
                Some(_) => {
                    sessions.remove(token);
                    return Err(NetError::InvalidCredentials);
                }
                None => return Err(NetError::InvalidCredentials),
            }
        };
        match who {
            Who::Configured(name) => Ok(User::admin(name)),
            Who::Stored(name) => match users.get(&name) {
                Some(u) => Ok(u),
                None => {
                    self.sessions.lock().remove(token);
                    Err(NetError::InvalidCredentials)
                }
            },
        }
    }

    /// Log a user in; returns a new session token. Checks a stored user's Argon2 hash
    /// (tens of milliseconds on purpose): call it off the async threads.
    pub(crate) fn login(&self, username: &str, password: &str, users: &Users) -> Result<String, NetError> {
        let configured = self
            .users
            .iter()
            .fold(false, |acc, (u, p)| acc | (same(u.as_bytes(), username.as_bytes()) & same(p.as_bytes(), password.as_bytes())));
        let who = if configured {
            Who::Configured(username.to_string())
        } else if users.verify(username, password).is_some() {
            Who::Stored(username.to_string())
        } else {
            return Err(NetError::InvalidCredentials);
        };
        let token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let mut sessions = self.sessions.lock();
        if sessions.len() >= self.max_sessions {
            let now = Instant::now();
            sessions.retain(|_, (_, last)| now.duration_since(*last) <= self.idle);
        }
        if sessions.len() >= self.max_sessions
            && let Some(oldest) = sessions.iter().min_by_key(|(_, (_, last))| *last).map(|(t, _)| t.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(token.clone(), (who, Instant::now()));
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> (tempfile::TempDir, Users) {
        let dir = tempfile::tempdir().unwrap();
        let u = Users::open_file(&dir.path().join("catalog.redb")).unwrap();
        (dir, u)
    }

    fn bearer(t: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("authorization", format!("Bearer {t}").parse().unwrap());
        h
    }

    #[test]
    fn tokens_and_logins() {
        let (_d, u) = catalog();
        let a = Auth::new(&AuthConfig { tokens: vec!["t0k".into()], users: vec![("ops".into(), "pw".into())], ..AuthConfig::default() });
        assert_eq!(a.check(&HeaderMap::new(), &u).map(drop), Err(NetError::AuthRequired));
        assert_eq!(a.check(&bearer("nope"), &u).map(drop), Err(NetError::InvalidCredentials));
        assert_eq!(a.check(&bearer("t0k"), &u).map(drop), Ok(()));
        assert!(a.login("ops", "wrong", &u).is_err());
        let t = a.login("ops", "pw", &u).unwrap();
        assert_eq!(a.check(&bearer(&t), &u).map(drop), Ok(()));
        assert!(Auth::new(&AuthConfig::default()).check(&HeaderMap::new(), &u).map(drop).is_ok());
    }

    #[test]
    fn idle_sessions_expire_and_use_keeps_them_alive() {
        let (_d, u) = catalog();
        let idle = Duration::from_millis(150);
        let a = Auth::new(&AuthConfig { users: vec![("ops".into(), "pw".into())], session_idle: idle, ..AuthConfig::default() });
        let (used, unused) = (a.login("ops", "pw", &u).unwrap(), a.login("ops", "pw", &u).unwrap());
        let start = Instant::now();
        while start.elapsed() < idle * 3 {
            std::thread::sleep(idle / 5);
            assert_eq!(a.check(&bearer(&used), &u).map(drop), Ok(()), "a session in use stays valid");
        }
        assert_eq!(a.check(&bearer(&unused), &u).map(drop), Err(NetError::InvalidCredentials), "an idle session expires");
        assert!(!a.sessions.lock().contains_key(&unused), "and is forgotten");
    }

    #[test]
    fn sessions_are_bounded_least_recently_used_first() {
        let (_d, u) = catalog();
        let a = Auth::new(&AuthConfig { users: vec![("ops".into(), "pw".into())], max_sessions: 3, ..AuthConfig::default() });
        let t: Vec<String> = (0..3)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(1));
                a.login("ops", "pw", &u).unwrap()
            })
            .collect();
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(a.check(&bearer(&t[0]), &u).map(drop), Ok(())); // t[1] is now the least recently used
        let t3 = a.login("ops", "pw", &u).unwrap();
        assert_eq!(a.sessions.lock().len(), 3);
        assert_eq!(a.check(&bearer(&t[1]), &u).map(drop), Err(NetError::InvalidCredentials));
        for ok in [&t[0], &t[2], &t3] {
            assert_eq!(a.check(&bearer(ok), &u).map(drop), Ok(()));
        }
    }
}
