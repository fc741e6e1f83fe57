//! CAM sub-users and their console passwords. A user is known by a uin (a
//! 12-digit number kept as text, like the account's), a small numeric uid and
//! a unique name. Passwords are stored only as `crypto::hash_password` output;
//! repeated failures lock the user out for a while, counted here in the DB.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{Result, StoreError};
use crate::crypto;

/// Failed console logins in a row that lock a user out.
pub const MAX_FAILED_LOGINS: i64 = 5;
/// How long a lockout lasts.
pub const LOCKOUT_MS: i64 = 15 * 60 * 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub uin: String,
    pub uid: i64,
    pub name: String,
    pub remark: String,
    pub console_login: bool,
    pub need_reset_password: bool,
    pub email: String,
    pub phone: String,
    pub country_code: String,
    pub last_login_ms: i64,
    pub last_login_ip: String,
    pub created_ms: i64,
}

const COLS: &str = "uin, uid, name, remark, console_login, need_reset_password, email, phone,
    country_code, last_login_ms, last_login_ip, created_ms";

fn row(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        uin: r.get(0)?,
        uid: r.get(1)?,
        name: r.get(2)?,
        remark: r.get(3)?,
        console_login: r.get(4)?,
        need_reset_password: r.get(5)?,
        email: r.get(6)?,
        phone: r.get(7)?,
        country_code: r.get(8)?,
        last_login_ms: r.get(9)?,
        last_login_ip: r.get(10)?,
        created_ms: r.get(11)?,
    })
}

/// What AddUser sets; the password arrives already hashed.
#[derive(Debug, Default, Clone)]
pub struct NewUser {
    pub name: String,
    pub remark: String,
    pub console_login: bool,
    pub need_reset_password: bool,
    pub email: String,
    pub phone: String,
    pub country_code: String,
    pub password_hash: Option<Vec<u8>>,
}

/// Creates a user; `Refused(crate::store::Rule::UserNameTaken)` if the name is in use.
pub fn insert(conn: &Connection, u: &NewUser, now_ms: i64) -> Result<User> {
    if get_by_name(conn, &u.name)?.is_some() {
        return Err(StoreError::Refused(
            crate::store::Rule::UserNameTaken,
            format!("a user named {:?} already exists", u.name),
        ));
    }
    let uin = loop {
        let raw = crate::ids::random_bytes::<8>();
        let n = 100_000_000_000u64 + (u64::from_le_bytes(raw) % 899_999_999_999);
        let uin = n.to_string();
        let taken: bool = conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM users WHERE uin = ?1)
                 OR EXISTS(SELECT 1 FROM meta WHERE key = 'owner_uin' AND value = ?1)",
            params![uin],
            |r| r.get(0),
        )?;
        if !taken {
            break uin;
        }
    };
    let uid: i64 = conn.query_row("SELECT COALESCE(MAX(uid), 0) + 1 FROM users", [], |r| {
        r.get(0)
    })?;
    conn.execute(
        "INSERT INTO users(uin, uid, name, remark, console_login, need_reset_password, email,
                           phone, country_code, password_hash, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            uin,
            uid,
            u.name,
            u.remark,
            u.console_login,
            u.need_reset_password,
            u.email,
            u.phone,
            u.country_code,
            u.password_hash,
            now_ms
        ],
    )?;
    get_by_uin(conn, &uin)?.ok_or_else(|| StoreError::missing(super::Entity::Uin, uin.to_string()))
}

pub fn get_by_name(conn: &Connection, name: &str) -> Result<Option<User>> {
    let sql = format!("SELECT {COLS} FROM users WHERE name = ?1");
    Ok(conn.query_row(&sql, params![name], row).optional()?)
}

pub fn get_by_uin(conn: &Connection, uin: &str) -> Result<Option<User>> {
    let sql = format!("SELECT {COLS} FROM users WHERE uin = ?1");
    Ok(conn.query_row(&sql, params![uin], row).optional()?)
}

pub fn get_by_uid(conn: &Connection, uid: i64) -> Result<Option<User>> {
    let sql = format!("SELECT {COLS} FROM users WHERE uid = ?1");
    Ok(conn.query_row(&sql, params![uid], row).optional()?)
}

/// The user with this name, or `NotFound { User, name }`.
pub fn require_name(conn: &Connection, name: &str) -> Result<User> {
    get_by_name(conn, name)?.ok_or_else(|| StoreError::missing(super::Entity::User, name))
}

/// The user with this uin, or `NotFound { Uin, uin }`.
pub fn require_uin(conn: &Connection, uin: &str) -> Result<User> {
    get_by_uin(conn, uin)?.ok_or_else(|| StoreError::missing(super::Entity::Uin, uin.to_string()))
}

/// Every user, oldest first.
pub fn list(conn: &Connection) -> Result<Vec<User>> {
    let sql = format!("SELECT {COLS} FROM users ORDER BY uid");
    let mut st = conn.prepare(&sql)?;
    let rows = st.query_map([], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// What UpdateUser may change; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct UserUpdate {
    pub remark: Option<String>,
    pub console_login: Option<bool>,
    pub need_reset_password: Option<bool>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub country_code: Option<String>,
    pub password_hash: Option<Vec<u8>>,
}

pub fn update(conn: &Connection, name: &str, u: &UserUpdate) -> Result<User> {
    let cur = require_name(conn, name)?;
    conn.execute(
        "UPDATE users SET remark = COALESCE(?2, remark),
                          console_login = COALESCE(?3, console_login),
                          need_reset_password = COALESCE(?4, need_reset_password),
                          email = COALESCE(?5, email),
                          phone = COALESCE(?6, phone),
                          country_code = COALESCE(?7, country_code),
                          password_hash = COALESCE(?8, password_hash)
         WHERE uin = ?1",
        params![
            cur.uin,
            u.remark,
            u.console_login,
            u.need_reset_password,
            u.email,
            u.phone,
            u.country_code,
            u.password_hash
        ],
    )?;
    if u.password_hash.is_some() {
        // A new password clears a lockout earned with the old one.
        conn.execute(
            "UPDATE users SET failed_logins = 0, locked_until_ms = 0 WHERE uin = ?1",
            params![cur.uin],
        )?;
    }
    if ends_sessions(u) {
        super::sessions::delete_for_user(conn, &cur.uin)?;
    }
    require_uin(conn, &cur.uin)
}

/// Whether an update ends the user's console sessions: a new password (a
/// session opened with the old one, perhaps by whoever stole it, must not
/// outlive it), console login turned off, or a reset demanded (the next
/// sign-in must set a new password). A session is only as good as the
/// password and the permission it was opened with.
fn ends_sessions(u: &UserUpdate) -> bool {
    u.password_hash.is_some()
        || u.console_login == Some(false)
        || u.need_reset_password == Some(true)
}

/// Whether a signed-in user may go on using a console session: the user
/// exists, may sign in to the console and is not waiting to reset the
/// password.
pub fn may_keep_session(conn: &Connection, uin: &str) -> Result<bool> {
    Ok(get_by_uin(conn, uin)?.is_some_and(|u| u.console_login && !u.need_reset_password))
}

/// Sets a user's own new password at sign-in (NeedResetPassword): clears
/// the reset demand and any lockout, and ends every other session.
pub fn reset_password(conn: &Connection, uin: &str, password_hash: &[u8]) -> Result<()> {
    let n = conn.execute(
        "UPDATE users SET password_hash = ?2, need_reset_password = 0, failed_logins = 0,
                          locked_until_ms = 0
         WHERE uin = ?1",
        params![uin, password_hash],
    )?;
    if n == 0 {
        return Err(StoreError::missing(super::Entity::Uin, uin.to_string()));
    }
    super::sessions::delete_for_user(conn, uin)
}

/// Deletes a user with its memberships, attachments and role assignments.
/// A user who still owns access keys is kept (`Refused(crate::store::Rule::UserHasKeys)`)
/// unless `force`, which deletes the keys first.
pub fn delete(conn: &Connection, name: &str, force: bool) -> Result<User> {
    let u = require_name(conn, name)?;
    let keys = super::keys::count_for_user(conn, &u.uin)?;
    if keys > 0 && !force {
        return Err(StoreError::Refused(
            crate::store::Rule::UserHasKeys,
            format!("user {name:?} still has {keys} access key(s); delete them or use Force=1"),
        ));
    }
    conn.execute("DELETE FROM access_keys WHERE user_id = ?1", params![u.uin])?;
    // Their ssh keys go with them: a key must never outlive its person.
    super::ssh_keys::delete_for_user(conn, &u.uin)?;
    conn.execute(
        "DELETE FROM role_assignments WHERE principal_type = 'user' AND principal_id = ?1",
        params![u.uin],
    )?;
    conn.execute("DELETE FROM users WHERE uin = ?1", params![u.uin])?;
    super::sessions::delete_for_user(conn, &u.uin)?;
    Ok(u)
}

/// Why a console login failed. Callers should show the same message for
/// `UnknownUser`, `BadPassword` and `ConsoleDisabled`, so a stranger cannot
/// tell which names exist.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("unknown user")]
    UnknownUser,
    #[error("wrong password")]
    BadPassword,
    #[error("console login is disabled for this user")]
    ConsoleDisabled,
    /// The password was right, but the user must set a new one first.
    #[error("the password must be reset before signing in")]
    ResetRequired,
    #[error("locked after repeated failures until {until_ms}")]
    Locked { until_ms: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for LoginError {
    fn from(e: rusqlite::Error) -> LoginError {
        LoginError::Store(StoreError::from(e))
    }
}

/// What a sign-in needs to know about a user, read before the (slow)
/// password hash is checked outside any transaction.
#[derive(Debug, Clone)]
pub struct LoginFacts {
    pub uin: String,
    pub password_hash: Option<Vec<u8>>,
    pub console_login: bool,
    pub locked_until_ms: i64,
    pub need_reset_password: bool,
}

pub fn login_facts(conn: &Connection, user_name: &str) -> Result<Option<LoginFacts>> {
    Ok(conn
        .query_row(
            "SELECT uin, password_hash, console_login, locked_until_ms, need_reset_password
             FROM users WHERE name = ?1",
            params![user_name],
            |r| {
                Ok(LoginFacts {
                    uin: r.get(0)?,
                    password_hash: r.get(1)?,
                    console_login: r.get(2)?,
                    locked_until_ms: r.get(3)?,
                    need_reset_password: r.get(4)?,
                })
            },
        )
        .optional()?)
}

/// Records the outcome of a password check for `uin` and says whether the
/// sign-in stands. After `MAX_FAILED_LOGINS` failures in a row the user is
/// locked for `LOCKOUT_MS`, during which even the right password is refused.
pub fn record_login(
    conn: &Connection,
    uin: &str,
    password_ok: bool,
    now_ms: i64,
) -> std::result::Result<(), LoginError> {
    let (failed, locked_until, console): (i64, i64, bool) = conn
        .query_row(
            "SELECT failed_logins, locked_until_ms, console_login FROM users WHERE uin = ?1",
            params![uin],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?
        .ok_or(LoginError::UnknownUser)?;
    // Checked again here: a lock may have been set while the hash was checked.
    if locked_until > now_ms {
        return Err(LoginError::Locked {
            until_ms: locked_until,
        });
    }
    if !password_ok {
        let failed = failed + 1;
        let (failed, until) = if failed >= MAX_FAILED_LOGINS {
            (0, now_ms + LOCKOUT_MS)
        } else {
            (failed, 0)
        };
        conn.execute(
            "UPDATE users SET failed_logins = ?2, locked_until_ms = ?3 WHERE uin = ?1",
            params![uin, failed, until],
        )?;
        return Err(if until > 0 {
            LoginError::Locked { until_ms: until }
        } else {
            LoginError::BadPassword
        });
    }
    if !console {
        return Err(LoginError::ConsoleDisabled);
    }
    conn.execute(
        "UPDATE users SET failed_logins = 0, locked_until_ms = 0, last_login_ms = ?2
         WHERE uin = ?1",
        params![uin, now_ms],
    )?;
    Ok(())
}

/// Checks a console password in one go (facts, hash, record); returns the
/// user's uin. Unknown users cost the same PBKDF2 work as known ones. The
/// server splits these steps so the hash never runs inside a transaction.
pub fn verify_password(
    conn: &Connection,
    user_name: &str,
    password: &str,
    now_ms: i64,
) -> std::result::Result<String, LoginError> {
    let Some(f) = login_facts(conn, user_name)? else {
        crypto::verify_password_hash(&[], password);
        return Err(LoginError::UnknownUser);
    };
    if f.locked_until_ms > now_ms {
        return Err(LoginError::Locked {
            until_ms: f.locked_until_ms,
        });
    }
    let ok = crypto::verify_password_hash(f.password_hash.as_deref().unwrap_or(&[]), password);
    record_login(conn, &f.uin, ok, now_ms)?;
    Ok(f.uin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(name: &str) -> NewUser {
        NewUser {
            name: name.into(),
            remark: "r".into(),
            ..Default::default()
        }
    }

    #[test]
    fn users_are_unique_by_name_and_round_trip() {
        let c = crate::store::test_conn();
        let a = insert(&c, &new("ann"), 10).unwrap();
        assert_eq!(a.uin.len(), 12);
        assert_eq!(a.uid, 1);
        let b = insert(&c, &new("bob"), 11).unwrap();
        assert_eq!(b.uid, 2);
        let err = insert(&c, &new("ann"), 12).unwrap_err();
        assert!(matches!(
            err,
            StoreError::Refused(crate::store::Rule::UserNameTaken, _)
        ));
        assert_eq!(get_by_uin(&c, &a.uin).unwrap().unwrap().name, "ann");
        assert_eq!(get_by_uid(&c, 2).unwrap().unwrap().name, "bob");
        let names: Vec<_> = list(&c).unwrap().into_iter().map(|u| u.name).collect();
        assert_eq!(names, ["ann", "bob"]);
        let up = UserUpdate {
            remark: Some("new".into()),
            console_login: Some(true),
            ..Default::default()
        };
        let a2 = update(&c, "ann", &up).unwrap();
        assert_eq!(a2.remark, "new");
        assert!(a2.console_login);
        assert!(matches!(
            update(&c, "nobody", &up),
            Err(StoreError::NotFound { .. })
        ));
    }

    #[test]
    fn delete_refuses_a_user_with_keys_unless_forced() {
        let c = crate::store::test_conn();
        let a = insert(&c, &new("ann"), 10).unwrap();
        super::super::keys::insert(
            &c,
            &super::super::keys::AccessKey {
                secret_id: "AKIDx".into(),
                user_id: a.uin.clone(),
                secret_enc: vec![0],
                active: true,
                description: String::new(),
            },
            1,
        )
        .unwrap();
        let err = delete(&c, "ann", false).unwrap_err();
        assert!(matches!(
            err,
            StoreError::Refused(crate::store::Rule::UserHasKeys, _)
        ));
        assert!(get_by_name(&c, "ann").unwrap().is_some());
        delete(&c, "ann", true).unwrap();
        assert!(get_by_name(&c, "ann").unwrap().is_none());
        assert!(super::super::keys::get(&c, "AKIDx").unwrap().is_none());
    }

    #[test]
    fn passwords_verify_and_lock_out_after_five_failures() {
        let c = crate::store::test_conn();
        let mut u = new("ann");
        u.console_login = true;
        u.password_hash = Some(crypto::hash_password("Right-pass1"));
        let ann = insert(&c, &u, 10).unwrap();
        assert_eq!(
            verify_password(&c, "ann", "Right-pass1", 100).unwrap(),
            ann.uin
        );
        assert!(matches!(
            verify_password(&c, "nobody", "x", 100),
            Err(LoginError::UnknownUser)
        ));
        for _ in 0..4 {
            assert!(matches!(
                verify_password(&c, "ann", "wrong", 200),
                Err(LoginError::BadPassword)
            ));
        }
        assert!(matches!(
            verify_password(&c, "ann", "wrong", 200),
            Err(LoginError::Locked { until_ms }) if until_ms == 200 + LOCKOUT_MS
        ));
        // Locked: even the right password is refused until the lock expires.
        assert!(matches!(
            verify_password(&c, "ann", "Right-pass1", 300),
            Err(LoginError::Locked { .. })
        ));
        let later = 200 + LOCKOUT_MS + 1;
        assert_eq!(
            verify_password(&c, "ann", "Right-pass1", later).unwrap(),
            ann.uin
        );
        assert_eq!(
            get_by_name(&c, "ann").unwrap().unwrap().last_login_ms,
            later
        );
        // A user without console access never logs in.
        update(
            &c,
            "ann",
            &UserUpdate {
                console_login: Some(false),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(matches!(
            verify_password(&c, "ann", "Right-pass1", later),
            Err(LoginError::ConsoleDisabled)
        ));
    }

    #[test]
    fn sessions_end_with_the_password_the_permission_or_the_user() {
        use super::super::sessions::{self, Session};
        let c = crate::store::test_conn();
        let mut u = new("ann");
        u.console_login = true;
        let ann = insert(&c, &u, 10).unwrap();
        let open = |token: &str| {
            let s = Session {
                user_id: ann.uin.clone(),
                csrf_hash: "c".into(),
                created_ms: 100,
                last_seen_ms: 100,
                expires_ms: 1_000_000,
            };
            sessions::create(&c, token, &s).unwrap();
        };
        let live = |token: &str| sessions::touch(&c, token, 200, 100_000).unwrap().is_some();
        // (update, ends sessions)
        let cases = [
            (
                UserUpdate {
                    remark: Some("r".into()),
                    ..Default::default()
                },
                false,
            ),
            (
                UserUpdate {
                    console_login: Some(true),
                    ..Default::default()
                },
                false,
            ),
            (
                UserUpdate {
                    need_reset_password: Some(false),
                    ..Default::default()
                },
                false,
            ),
            (
                UserUpdate {
                    password_hash: Some(vec![1]),
                    ..Default::default()
                },
                true,
            ),
            (
                UserUpdate {
                    console_login: Some(false),
                    ..Default::default()
                },
                true,
            ),
            (
                UserUpdate {
                    need_reset_password: Some(true),
                    ..Default::default()
                },
                true,
            ),
        ];
        for (i, (up, ends)) in cases.iter().enumerate() {
            let token = format!("t{i}");
            open(&token);
            update(&c, "ann", up).unwrap();
            assert_eq!(live(&token), !ends, "{up:?}");
            update(
                &c,
                "ann",
                &UserUpdate {
                    console_login: Some(true),
                    need_reset_password: Some(false),
                    ..Default::default()
                },
            )
            .unwrap();
        }
        assert!(may_keep_session(&c, &ann.uin).unwrap());
        open("before-reset");
        reset_password(&c, &ann.uin, b"new").unwrap();
        assert!(!live("before-reset"));
        open("before-delete");
        delete(&c, "ann", true).unwrap();
        assert!(!live("before-delete"));
        assert!(!may_keep_session(&c, &ann.uin).unwrap());
    }
}
