//! Sub-users: AddUser, GetUser, ListUsers, UpdateUser, DeleteUser.

use super::super::decided::Request;
use crate::gate::Authorized;
use serde_json::{json, Value};

use super::super::error::{ApiError, Code};
use super::super::request::{Params, R};
use super::super::Api;
use super::{check_len, flag, uin_value, valid_name};
use crate::store::users::{self, NewUser, User, UserUpdate};
use crate::store::Entity;
use crate::timefmt::{cam as cam_time, now_ms};

fn check_name(name: &str) -> R<()> {
    if !valid_name(name, 64) {
        return Err(ApiError::new(
            Code::InvalidParameterUserNameIllegal,
            "Name must be 1 to 64 letters, digits or +=,.@_-",
        ));
    }
    Ok(())
}

/// CAM's default password rule: 8 to 32 characters with an upper-case and a
/// lower-case letter, a digit and a special character.
pub(crate) fn check_password(pw: &str) -> R<()> {
    let len = pw.chars().count();
    let ok = (8..=32).contains(&len)
        && pw.chars().any(|c| c.is_ascii_uppercase())
        && pw.chars().any(|c| c.is_ascii_lowercase())
        && pw.chars().any(|c| c.is_ascii_digit())
        && pw
            .chars()
            .any(|c| c.is_ascii_punctuation() || (!c.is_ascii_alphanumeric() && c != ' '));
    if !ok {
        return Err(ApiError::new(
            Code::InvalidParameterPasswordViolatedRules,
            "Password must be 8 to 32 characters with upper- and lower-case letters, a digit and a special character",
        ));
    }
    Ok(())
}

/// A random 32-character password meeting the rule above.
fn generate_password() -> String {
    const SPECIAL: &[u8] = b"!@#$%^&*()-_=+";
    let r = crate::ids::random_bytes::<4>();
    let mut pw = crate::ids::random_token(28);
    pw.push(SPECIAL[r[0] as usize % SPECIAL.len()] as char);
    pw.push((b'a' + r[1] % 26) as char);
    pw.push((b'A' + r[2] % 26) as char);
    pw.push((b'0' + r[3] % 10) as char);
    pw
}

/// PBKDF2 is deliberately slow: hash off the async threads.
async fn hash(password: String) -> R<Vec<u8>> {
    tokio::task::spawn_blocking(move || crate::crypto::hash_password(&password))
        .await
        .map_err(|_| ApiError::internal())
}

/// The contact fields AddUser and UpdateUser share.
struct Contact {
    phone: Option<String>,
    country_code: Option<String>,
    email: Option<String>,
}

fn read_contact(q: &mut Params) -> R<Contact> {
    let c = Contact {
        phone: q.opt_str("PhoneNum")?,
        country_code: q.opt_str("CountryCode")?,
        email: q.opt_str("Email")?,
    };
    for (field, v) in [
        ("PhoneNum", &c.phone),
        ("CountryCode", &c.country_code),
        ("Email", &c.email),
    ] {
        check_len(field, v.as_deref().unwrap_or(""), 128)?;
    }
    Ok(c)
}

pub async fn add(api: &Api, _a: Authorized<Request>, mut q: Params) -> R<Value> {
    let name = q.str("Name")?;
    let remark = q.opt_str("Remark")?.unwrap_or_default();
    let console_login = flag(&mut q, "ConsoleLogin")?.unwrap_or(false);
    let use_api = flag(&mut q, "UseApi")?.unwrap_or(false);
    let password = q.opt_str("Password")?.filter(|p| !p.is_empty());
    let need_reset_password = flag(&mut q, "NeedResetPassword")?.unwrap_or(false);
    let contact = read_contact(&mut q)?;
    q.finish()?;
    check_name(&name)?;
    check_len("Remark", &remark, 255)?;
    // As in CAM, a password matters only for a user who may log in; left
    // empty, one is generated and returned once.
    let (password_hash, generated) = match (console_login, password) {
        (false, _) => (None, None),
        (true, Some(pw)) => {
            check_password(&pw)?;
            (Some(hash(pw).await?), None)
        }
        (true, None) => {
            let pw = generate_password();
            (Some(hash(pw.clone()).await?), Some(pw))
        }
    };
    let key = use_api.then(|| super::keys::mint(api, "".into(), String::new()));
    let new = NewUser {
        name,
        remark,
        console_login,
        need_reset_password,
        email: contact.email.unwrap_or_default(),
        phone: contact.phone.unwrap_or_default(),
        country_code: contact.country_code.unwrap_or_default(),
        password_hash,
    };
    let stored_key = key.as_ref().map(|(k, _)| k.clone());
    let user = api
        .store
        .write(move |c| {
            let now = now_ms();
            let user = users::insert(c, &new, now)?;
            if let Some(mut k) = stored_key {
                k.user_id = user.uin.clone();
                crate::store::keys::insert(c, &k, now)?;
            }
            Ok(user)
        })
        .await?;
    let mut out = json!({
        "Uin": uin_value(&user.uin),
        "Name": user.name,
        "Uid": user.uid,
    });
    if let Some(pw) = generated {
        out["Password"] = json!(pw);
    }
    if let Some((k, secret)) = key {
        out["SecretId"] = json!(k.secret_id);
        out["SecretKey"] = json!(secret);
    }
    Ok(out)
}

pub async fn get(api: &Api, a: Authorized<Request>, q: Params) -> R<Value> {
    q.finish()?;
    let target = a.cam()?.first()?.clone();
    let u = api
        .store
        .read(move |c| users::require_uin(c, &target.require(Entity::User)?))
        .await?;
    Ok(json!({
        "Uin": uin_value(&u.uin),
        "Name": u.name,
        "Uid": u.uid,
        "Remark": u.remark,
        "ConsoleLogin": u.console_login as i64,
        "PhoneNum": u.phone,
        "CountryCode": u.country_code,
        "Email": u.email,
        "RecentlyLoginIP": u.last_login_ip,
        "RecentlyLoginTime": cam_time(u.last_login_ms),
    }))
}

fn sub_account_info(u: &User) -> Value {
    json!({
        "Uin": uin_value(&u.uin),
        "Name": u.name,
        "Uid": u.uid,
        "Remark": u.remark,
        "ConsoleLogin": u.console_login as i64,
        "PhoneNum": u.phone,
        "CountryCode": u.country_code,
        "Email": u.email,
        "CreateTime": cam_time(u.created_ms),
        "NickName": u.remark,
    })
}

pub async fn list(api: &Api, _a: Authorized<Request>, q: Params) -> R<Value> {
    q.finish()?;
    let all = api.store.read(users::list).await?;
    Ok(json!({ "Data": all.iter().map(sub_account_info).collect::<Vec<_>>() }))
}

/// A user as a group member (GroupMemberInfo).
pub fn member_info(u: &User) -> Value {
    json!({
        "Uid": u.uid,
        "Uin": uin_value(&u.uin),
        "Name": u.name,
        "PhoneNum": u.phone,
        "CountryCode": u.country_code,
        "PhoneFlag": 0,
        "Email": u.email,
        "EmailFlag": 0,
        "UserType": 1,
        "CreateTime": cam_time(u.created_ms),
        "IsReceiverOwner": 0,
        "Remark": u.remark,
    })
}

pub async fn update(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let target = a.cam()?.first()?.clone();
    let remark = q.opt_str("Remark")?;
    let console_login = flag(&mut q, "ConsoleLogin")?;
    let password = q.opt_str("Password")?.filter(|p| !p.is_empty());
    let need_reset_password = flag(&mut q, "NeedResetPassword")?;
    let contact = read_contact(&mut q)?;
    q.finish()?;
    check_len("Remark", remark.as_deref().unwrap_or(""), 255)?;
    let password_hash = match password {
        Some(pw) => {
            check_password(&pw)?;
            Some(hash(pw).await?)
        }
        None => None,
    };
    let up = UserUpdate {
        remark,
        console_login,
        need_reset_password,
        email: contact.email,
        phone: contact.phone,
        country_code: contact.country_code,
        password_hash,
    };
    // The user decided on, by uin: its name may have changed meanwhile.
    api.store
        .write(move |c| {
            let u = users::require_uin(c, &target.require(Entity::User)?)?;
            users::update(c, &u.name, &up)
        })
        .await?;
    Ok(json!({}))
}

pub async fn delete(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let target = a.cam()?.first()?.clone();
    let force = flag(&mut q, "Force")?.unwrap_or(false);
    q.finish()?;
    api.store
        .write(move |c| {
            let u = users::require_uin(c, &target.require(Entity::User)?)?;
            users::delete(c, &u.name, force)
        })
        .await?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_pass_the_rule() {
        for _ in 0..20 {
            let pw = generate_password();
            assert_eq!(pw.len(), 32);
            check_password(&pw).unwrap();
        }
        assert!(check_password("short1A!").is_ok());
        assert!(check_password("alllowercase1!").is_err());
        assert!(check_password("NoDigits!!").is_err());
        assert!(check_password("NoSpecial123").is_err());
    }
}
