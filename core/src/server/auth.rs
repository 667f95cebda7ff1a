//! Authentication: static bearer tokens, or users who log in for a session token.

use std::collections::HashSet;

use axum::http::HeaderMap;

use crate::protocol::NetError;

/// Who may connect. Empty: no authentication.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    /// Accepted bearer tokens.
    pub tokens: Vec<String>,
    /// `(username, password)` pairs that may log in.
    pub users: Vec<(String, String)>,
}

/// The server's credential checks.
#[derive(Debug)]
pub(crate) struct Auth {
    tokens: Vec<String>,
    users: Vec<(String, String)>,
    /// Tokens handed out by login (valid until the server stops).
    sessions: parking_lot::RwLock<HashSet<String>>,
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
        Auth { tokens: c.tokens.clone(), users: c.users.clone(), sessions: Default::default() }
    }

    /// True if requests need credentials.
    pub(crate) fn required(&self) -> bool {
        !self.tokens.is_empty() || !self.users.is_empty()
    }

    /// Check the `Authorization` header of a request.
    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<(), NetError> {
        if !self.required() {
            return Ok(());
        }
        let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else { return Err(NetError::AuthRequired) };
        let token = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).ok_or(NetError::InvalidCredentials)?.trim();
        let mut ok = self.tokens.iter().fold(false, |acc, t| acc | same(t.as_bytes(), token.as_bytes()));
        if !ok {
            ok = self.sessions.read().contains(token);
        }
        if ok { Ok(()) } else { Err(NetError::InvalidCredentials) }
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
        self.sessions.write().insert(token.clone());
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_logins() {
        let a = Auth::new(&AuthConfig { tokens: vec!["t0k".into()], users: vec![("ops".into(), "pw".into())] });
        let mut h = HeaderMap::new();
        assert_eq!(a.check(&h), Err(NetError::AuthRequired));
        h.insert("authorization", "Bearer nope".parse().unwrap());
        assert_eq!(a.check(&h), Err(NetError::InvalidCredentials));
        h.insert("authorization", "Bearer t0k".parse().unwrap());
        assert_eq!(a.check(&h), Ok(()));
        assert!(a.login("ops", "wrong").is_err());
        let t = a.login("ops", "pw").unwrap();
        h.insert("authorization", format!("Bearer {t}").parse().unwrap());
        assert_eq!(a.check(&h), Ok(()));
        assert!(Auth::new(&AuthConfig::default()).check(&HeaderMap::new()).is_ok());
    }
}
