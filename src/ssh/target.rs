//! What an ssh user name asks for: `PERSON+INSTANCE[+LOGIN]`, e.g.
//! `ann+mi-1a2b3c4d` (a shell on mi-1a2b3c4d as the default login user) or
//! `ann+mi-1a2b3c4d+ubuntu` (as ubuntu). PERSON is the drover user who
//! signs in (`root` for the account, a sub-user's CAM name otherwise). CAM
//! names may contain `+`, so the name is read from the right: the instance
//! is the last or second-to-last part that looks like an instance id.

/// Longest ssh user name considered.
const MAX_NAME: usize = 256;

/// The login user when the name does not choose one.
pub const DEFAULT_LOGIN: &str = "root";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The drover user signing in.
    pub person: String,
    pub instance_id: String,
    /// The account on the instance; `None` means `DEFAULT_LOGIN`.
    pub login_user: Option<String>,
}

impl Target {
    pub fn login(&self) -> &str {
        self.login_user.as_deref().unwrap_or(DEFAULT_LOGIN)
    }
}

/// Why a user name asks for nothing the gateway understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("the ssh user name must be PERSON+INSTANCE or PERSON+INSTANCE+LOGIN, e.g. ann+mi-1a2b3c4d+ubuntu")]
    Shape,
    #[error("the login user {0:?} is not a valid user name")]
    Login(String),
}

fn is_instance_id(s: &str) -> bool {
    ["mi", "ins", "lhins"]
        .iter()
        .any(|p| crate::ids::is_valid(s, p))
}

pub fn parse(name: &str) -> Result<Target, TargetError> {
    if name.len() > MAX_NAME {
        return Err(TargetError::Shape);
    }
    let parts: Vec<&str> = name.split('+').collect();
    let n = parts.len();
    let (person_end, instance, login) = match parts.as_slice() {
        [.., last] if n >= 2 && is_instance_id(last) => (n - 1, *last, None),
        [.., inst, login] if n >= 3 && is_instance_id(inst) => (n - 2, *inst, Some(*login)),
        _ => return Err(TargetError::Shape),
    };
    let person = parts.get(..person_end).unwrap_or_default().join("+");
    if person.is_empty() {
        return Err(TargetError::Shape);
    }
    if let Some(l) = login {
        // The same rule as every session's (the console's too).
        if !crate::session::valid_login(l) {
            return Err(TargetError::Login(l.to_string()));
        }
    }
    Ok(Target {
        person,
        instance_id: instance.to_string(),
        login_user: login.map(str::to_string),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_person_instance_and_login() {
        let t = parse("ann+mi-1a2b3c4d").unwrap();
        assert_eq!(t.person, "ann");
        assert_eq!(t.instance_id, "mi-1a2b3c4d");
        assert_eq!(t.login(), "root");
        let t = parse("ann+mi-1a2b3c4d+ubuntu").unwrap();
        assert_eq!(t.login_user.as_deref(), Some("ubuntu"));
        // A CAM name with a '+' in it.
        let t = parse("ops+ann+mi-1a2b3c4d+deploy").unwrap();
        assert_eq!(t.person, "ops+ann");
        assert_eq!(t.login(), "deploy");
        let t = parse("root+ins-00000000").unwrap();
        assert_eq!(t.person, "root");
    }

    #[test]
    fn refuses_other_shapes() {
        for bad in [
            "ann",
            "mi-1a2b3c4d",
            "+mi-1a2b3c4d",
            "ann+mi-1A2B3C4D",
            "ann+mi-1a2b3c4d+ubuntu+x",
            "ann+ubuntu",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse("ann+mi-1a2b3c4d+-x"),
            Err(TargetError::Login("-x".into()))
        );
        // Names are case-sensitive on the instance, as in the console.
        assert_eq!(parse("ann+mi-1a2b3c4d+Ann").unwrap().login(), "Ann");
        assert_eq!(
            parse("ann+mi-1a2b3c4d+../x"),
            Err(TargetError::Login("../x".into()))
        );
        assert!(parse(&format!("{}+mi-1a2b3c4d", "a".repeat(300))).is_err());
    }
}
