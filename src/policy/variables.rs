//! CAM's policy variables: `${uin}` (the caller's uin) and `${owner_uin}`
//! (the account's), written in a policy and read per caller. They let one
//! self-service policy, attached to a whole group, say "each member's own
//! keys and password" (`qcs::cam::uin/<OwnerUin>:uin/${uin}`).
//!
//! A document with variables is compiled once per caller with the values
//! put in as text; uins are digits, so a value cannot change the
//! document's structure.

const UIN: &str = "${uin}";
const OWNER_UIN: &str = "${owner_uin}";

/// The document text for one caller, or None when it uses no variable
/// (and is the same for everyone).
pub fn for_caller(text: &str, uin: &str, owner_uin: &str) -> Option<String> {
    if !text.contains(UIN) && !text.contains(OWNER_UIN) {
        return None;
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    // Fail closed: a value that is not a plain uin matches nothing.
    let uin = if digits(uin) { uin } else { "-" };
    let owner = if digits(owner_uin) { owner_uin } else { "-" };
    Some(text.replace(UIN, uin).replace(OWNER_UIN, owner))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_uin_and_owner_uin() {
        let t = r#"{"resource":["qcs::cam::uin/${owner_uin}:uin/${uin}"]}"#;
        assert_eq!(
            for_caller(t, "200", "100").as_deref(),
            Some(r#"{"resource":["qcs::cam::uin/100:uin/200"]}"#)
        );
        assert_eq!(for_caller(r#"{"resource":["*"]}"#, "200", "100"), None);
        assert_eq!(
            for_caller("uin/${uin}", "2\"00", "100").as_deref(),
            Some("uin/-")
        );
    }
}
