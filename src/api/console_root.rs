//! Root's way into the console. Sub-users sign in with the password CAM
//! gave them; the account owner signs in as `root` with the password set by
//! `drover admin set-password`. These helpers pick the right record for a
//! sign-in name and build the principal behind a session, so console.rs
//! treats both alike.

use rusqlite::Connection;

use super::Principal;
use crate::store::root_login::{self, ROOT};
use crate::store::users::{self, LoginError, LoginFacts};

/// Sign-in facts for `name`: root's from `meta`, anyone else's from `users`.
pub fn login_facts(conn: &Connection, name: &str) -> crate::store::Result<Option<LoginFacts>> {
    if name == ROOT {
        root_login::login_facts(conn)
    } else {
        users::login_facts(conn, name)
    }
}

/// Records a password check for the user `uin` (or root).
pub fn record_login(
    conn: &Connection,
    uin: &str,
    password_ok: bool,
    now_ms: i64,
) -> Result<(), LoginError> {
    if uin == ROOT {
        root_login::record_login(conn, password_ok, now_ms)
    } else {
        users::record_login(conn, uin, password_ok, now_ms)
    }
}

/// Sets `uin`'s own new password at sign-in, ending its other sessions.
pub fn reset_password(conn: &Connection, uin: &str, hash: &[u8]) -> crate::store::Result<()> {
    if uin == ROOT {
        root_login::set_password(conn, hash)
    } else {
        users::reset_password(conn, uin, hash)
    }
}

/// The principal behind a session's user id: root gets the account's
/// unrestricted grants (its uin is filled in by `fill_account`).
pub fn principal(conn: &Connection, user_id: &str) -> crate::store::Result<Option<Principal>> {
    if user_id == ROOT {
        return Ok(Some(Principal {
            user_id: ROOT.to_string(),
            secret_id: String::new(),
            uin: String::new(),
            name: ROOT.to_string(),
            group_ids: Vec::new(),
            grants: std::sync::Arc::new(super::authz::Grants::root()),
        }));
    }
    super::auth::principal_for_user(conn, user_id)
}

/// Gives a root principal the account's uin, which only the Api knows.
pub fn fill_account(api: &super::Api, p: &mut Principal) {
    if p.user_id == ROOT {
        p.uin = api.account_uin.clone();
    }
}
