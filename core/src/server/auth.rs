//! Authentication: static bearer tokens, or users who log in for a session token.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;

use crate::protocol::NetError;

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
    /// Tokens handed out by login, with when each was last used.
    sessions: parking_lot::Mutex<HashMap<String, Instant>>,
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

    /// True if requests need credentials.
    pub(crate) fn required(&self) -> bool {
        !self.tokens.is_empty() || !self.users.is_empty()
    }

    /// Check the `Authorization` header of a request. A session token's use keeps it alive.
    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<(), NetError> {
        if !self.required() {
            return Ok(());
        }
        let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else { return Err(NetError::AuthRequired) };
        let token = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).ok_or(NetError::InvalidCredentials)?.trim();
        if self.tokens.iter().fold(false, |acc, t| acc | same(t.as_bytes(), token.as_bytes())) {
            return Ok(());
        }
        let mut sessions = self.sessions.lock();
        let now = Instant::now();
        match sessions.get_mut(token) {
            Some(last) if now.duration_since(*last) <= self.idle => {
                *last = now;
                Ok(())
            }
            Some(_) => {
                sessions.remove(token);
                Err(NetError::InvalidCredentials)
            }
            None => Err(NetError::InvalidCredentials),
        }
    }

    /// Log a user in; returns a new session token.
    pub(crate) fn login(&self, username: &str, password: &str) -> Result<String, NetError> {
        let ok = self
            .users
            .iter()
            .fold(false, |acc, (u, p)| acc | (same(u.as_bytes(), username.as_bytes()) & same(p.as_bytes(), password.as_bytes())));
        if !ok {
            return Err(NetError::InvalidCredentials);
        }
        let token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let mut sessions = self.sessions.lock();
        if sessions.len() >= self.max_sessions {
            let now = Instant::now();
            sessions.retain(|_, last| now.duration_since(*last) <= self.idle);
        }
        if sessions.len() >= self.max_sessions
            && let Some(oldest) = sessions.iter().min_by_key(|(_, last)| **last).map(|(t, _)| t.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(token.clone(), Instant::now());
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(t: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("authorization", format!("Bearer {t}").parse().unwrap());
        h
    }

    #[test]
    fn tokens_and_logins() {
        let a = Auth::new(&AuthConfig { tokens: vec!["t0k".into()], users: vec![("ops".into(), "pw".into())], ..AuthConfig::default() });
        assert_eq!(a.check(&HeaderMap::new()), Err(NetError::AuthRequired));
        assert_eq!(a.check(&bearer("nope")), Err(NetError::InvalidCredentials));
        assert_eq!(a.check(&bearer("t0k")), Ok(()));
        assert!(a.login("ops", "wrong").is_err());
        let t = a.login("ops", "pw").unwrap();
        assert_eq!(a.check(&bearer(&t)), Ok(()));
        assert!(Auth::new(&AuthConfig::default()).check(&HeaderMap::new()).is_ok());
    }

    #[test]
    fn idle_sessions_expire_and_use_keeps_them_alive() {
        let idle = Duration::from_millis(150);
        let a = Auth::new(&AuthConfig { users: vec![("ops".into(), "pw".into())], session_idle: idle, ..AuthConfig::default() });
        let (used, unused) = (a.login("ops", "pw").unwrap(), a.login("ops", "pw").unwrap());
        let start = Instant::now();
        while start.elapsed() < idle * 3 {
            std::thread::sleep(idle / 5);
            assert_eq!(a.check(&bearer(&used)), Ok(()), "a session in use stays valid");
        }
        assert_eq!(a.check(&bearer(&unused)), Err(NetError::InvalidCredentials), "an idle session expires");
        assert!(!a.sessions.lock().contains_key(&unused), "and is forgotten");
    }

    #[test]
    fn sessions_are_bounded_least_recently_used_first() {
        let a = Auth::new(&AuthConfig { users: vec![("ops".into(), "pw".into())], max_sessions: 3, ..AuthConfig::default() });
        let t: Vec<String> = (0..3)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(1));
                a.login("ops", "pw").unwrap()
            })
            .collect();
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(a.check(&bearer(&t[0])), Ok(())); // t[1] is now the least recently used
        let t3 = a.login("ops", "pw").unwrap();
        assert_eq!(a.sessions.lock().len(), 3);
        assert_eq!(a.check(&bearer(&t[1])), Err(NetError::InvalidCredentials));
        for ok in [&t[0], &t[2], &t3] {
            assert_eq!(a.check(&bearer(ok)), Ok(()));
        }
    }
}
