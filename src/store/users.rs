//! Users, their login sessions and their personal access tokens (both stored by hash only).

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::{parse_ts, ts, Result, Store};

/// A user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub is_admin: bool,
    pub created_date: DateTime<Utc>,
}

/// A personal access token (the token itself is never stored, only its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub created_date: DateTime<Utc>,
    pub expiry_date: Option<DateTime<Utc>>,
    pub last_used_date: Option<DateTime<Utc>>,
}

impl Store {
    fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
        Ok(UserRow {
            id: r.get(0)?,
            username: r.get(1)?,
            password_hash: r.get(2)?,
            is_admin: r.get::<_, i64>(3)? != 0,
            created_date: parse_ts(r.get(4)?)?,
        })
    }

    /// Creates a user; `None` if the name is taken.
    pub fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        is_admin: bool,
    ) -> Result<Option<UserRow>> {
        let c = self.conn();
        let now = Utc::now();
        match c.execute(
            "INSERT INTO users (username, password_hash, is_admin, created_date) VALUES (?1, ?2, ?3, ?4)",
            params![username, password_hash, is_admin as i64, ts(&now)],
        ) {
            Ok(_) => {
                let id = c.last_insert_rowid();
                self.hot.users.invalidate(&id);
                Ok(Some(UserRow {
                    id,
                    username: username.to_owned(),
                    password_hash: password_hash.to_owned(),
                    is_admin,
                    created_date: now,
                }))
            }
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// A user by name.
    pub fn user_by_name(&self, username: &str) -> Result<Option<UserRow>> {
        Ok(self.conn()
            .prepare_cached("SELECT id, username, password_hash, is_admin, created_date FROM users WHERE username = ?1")?
            .query_row(
                [username],
                Self::user_from_row,
            )
            .optional()?)
    }

    /// A user by id.
    pub fn user(&self, id: i64) -> Result<Option<UserRow>> {
        self.hot_get(&self.hot.users, id, |c| {
            Ok(c.prepare_cached(
                "SELECT id, username, password_hash, is_admin, created_date FROM users WHERE id = ?1",
            )?
            .query_row([id], Self::user_from_row)
            .optional()?)
        })
    }

    /// All users by id.
    pub fn users(&self) -> Result<Vec<UserRow>> {
        let c = self.conn();
        let mut st = c.prepare(
            "SELECT id, username, password_hash, is_admin, created_date FROM users ORDER BY id",
        )?;
        let rows = st
            .query_map([], Self::user_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Replaces a user's password hash and revokes their sessions and access tokens (a changed
    /// password is often a leaked one). A server running in another process
    /// sees it within its in-memory copies' lifetime (10 s).
    pub fn set_password(&self, user_id: i64, password_hash: &str) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction()?;
        tx.execute(
            "UPDATE users SET password_hash = ?2 WHERE id = ?1",
            params![user_id, password_hash],
        )?;
        tx.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])?;
        tx.execute("DELETE FROM access_tokens WHERE user_id = ?1", [user_id])?;
        tx.commit()?;
        self.hot.users.invalidate(&user_id);
        self.hot.sessions.invalidate_all();
        self.hot.tokens.invalidate_all();
        Ok(())
    }

    /// Stores a session (by the hash of its id).
    pub fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        csrf: &str,
        expires: DateTime<Utc>,
    ) -> Result<()> {
        let c = self.conn();
        c.execute(
            "INSERT INTO sessions (token_hash, user_id, csrf, expires) VALUES (?1, ?2, ?3, ?4)",
            params![token_hash, user_id, csrf, ts(&expires)],
        )?;
        self.hot.sessions.invalidate(token_hash);
        Ok(())
    }

    /// The user and CSRF token of a live session.
    pub fn session(&self, token_hash: &str) -> Result<Option<(UserRow, String)>> {
        let row = self.hot_get(&self.hot.sessions, token_hash.to_owned(), |c| {
            Ok(c.prepare_cached(
                "SELECT user_id, csrf, expires FROM sessions WHERE token_hash = ?1",
            )?
            .query_row([token_hash], |r| {
                Ok((r.get(0)?, r.get(1)?, parse_ts(r.get(2)?)?))
            })
            .optional()?)
        })?;
        let Some((user_id, csrf, expires)) = row else {
            return Ok(None);
        };
        if expires < Utc::now() {
            self.delete_session(token_hash)?;
            return Ok(None);
        }
        Ok(self.user(user_id)?.map(|u| (u, csrf)))
    }

    /// Ends a session.
    pub fn delete_session(&self, token_hash: &str) -> Result<()> {
        let c = self.conn();
        c.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
        self.hot.sessions.invalidate(token_hash);
        Ok(())
    }

    /// Stores an access token (by its hash).
    pub fn create_token(
        &self,
        user_id: i64,
        name: &str,
        token_hash: &str,
        expiry: Option<DateTime<Utc>>,
    ) -> Result<TokenRow> {
        let c = self.conn();
        let now = Utc::now();
        c.execute(
            "INSERT INTO access_tokens (user_id, name, token_hash, created_date, expiry_date) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![user_id, name, token_hash, ts(&now), expiry.as_ref().map(ts)],
        )?;
        self.hot.tokens.invalidate(token_hash);
        Ok(TokenRow {
            id: c.last_insert_rowid(),
            user_id,
            name: name.to_owned(),
            created_date: now,
            expiry_date: expiry,
            last_used_date: None,
        })
    }

    fn token_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
        Ok(TokenRow {
            id: r.get(0)?,
            user_id: r.get(1)?,
            name: r.get(2)?,
            created_date: parse_ts(r.get(3)?)?,
            expiry_date: r.get::<_, Option<String>>(4)?.map(parse_ts).transpose()?,
            last_used_date: r.get::<_, Option<String>>(5)?.map(parse_ts).transpose()?,
        })
    }

    /// The token and its user, if the token exists and has not expired; records its use.
    pub fn token_by_hash(&self, token_hash: &str) -> Result<Option<(TokenRow, UserRow)>> {
        let t = self.hot_get(&self.hot.tokens, token_hash.to_owned(), |c| {
            Ok(c.prepare_cached("SELECT id, user_id, name, created_date, expiry_date, last_used_date FROM access_tokens WHERE token_hash = ?1")?
                .query_row([token_hash], Self::token_from_row)
                .optional()?)
        })?;
        let Some(mut t) = t else { return Ok(None) };
        if t.expiry_date.is_some_and(|e| e < Utc::now()) {
            return Ok(None);
        }
        // Record use at most once a minute: a write on every request would serialise them.
        let now = Utc::now();
        if t.last_used_date
            .is_none_or(|u| now - u > chrono::Duration::minutes(1))
        {
            let c = self.conn();
            let n = c
                .prepare_cached("UPDATE access_tokens SET last_used_date = ?2 WHERE id = ?1")?
                .execute(params![t.id, ts(&now)])?;
            t.last_used_date = Some(now);
            // Only a token that still exists goes back (a revoke may have run in between).
            if n > 0 {
                self.hot
                    .tokens
                    .insert(token_hash.to_owned(), Some(t.clone()));
            }
        }
        Ok(self.user(t.user_id)?.map(|u| (t, u)))
    }

    /// A user's tokens.
    pub fn tokens(&self, user_id: i64) -> Result<Vec<TokenRow>> {
        let c = self.conn();
        let mut st = c.prepare(
            "SELECT id, user_id, name, created_date, expiry_date, last_used_date FROM access_tokens WHERE user_id = ?1 ORDER BY id",
        )?;
        let rows = st
            .query_map([user_id], Self::token_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Revokes (deletes) a user's token; false if there was no such token of theirs.
    pub fn revoke_token(&self, user_id: i64, token_id: i64) -> Result<bool> {
        let c = self.conn();
        let n = c.execute(
            "DELETE FROM access_tokens WHERE id = ?1 AND user_id = ?2",
            params![token_id, user_id],
        )?;
        self.hot.tokens.invalidate_all();
        Ok(n > 0)
    }
}
