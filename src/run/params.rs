//! Command content and custom parameters: base64 content checks, `{{key}}`
//! and `{{tat-hidden:key}}` placeholders, default values, and masking of
//! hidden values in everything that is recorded.
//!
//! `{{secret:NAME}}` placeholders (drover) are not parameters: they need no
//! default, and are filled only when an invocation starts. All placeholders
//! are replaced in ONE pass over the command's own text, and substituted
//! values are never scanned again, so neither a parameter value nor a secret
//! value can introduce a placeholder of its own (a parameter can't smuggle a
//! `{{secret:X}}` past the policy check, which looks at the content alone).

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{json, Map, Value};

use super::error::{Problem, RunError, R};

pub const MAX_CONTENT_B64: usize = 64 * 1024;
pub const MAX_PARAMS: usize = 20;
pub const MASK: &str = "******";
const HIDDEN_PREFIX: &str = "tat-hidden:";
const SECRET_PREFIX: &str = "secret:";

/// Decodes and checks `Content`: valid base64, at most 64 KB encoded, not empty.
pub fn decode_content(b64: &str) -> R<Vec<u8>> {
    if b64.is_empty() {
        return Err(RunError::new(
            Problem::InvalidContent,
            "Content must not be empty",
        ));
    }
    if b64.len() > MAX_CONTENT_B64 {
        return Err(RunError::new(
            Problem::TooLong,
            format!(
                "Content is {} bytes of base64; the limit is 65536",
                b64.len()
            ),
        ));
    }
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| RunError::new(Problem::InvalidContent, "Content is not valid base64"))
}

fn check_key(key: &str) -> R<()> {
    if key.is_empty() || key.len() > 64 {
        return Err(RunError::new(
            Problem::ParameterKeyLenExceeded,
            format!("parameter name {key:?} must be 1 to 64 characters"),
        ));
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(RunError::new(
            Problem::ParameterKeyContainsInvalidChar,
            format!("parameter name {key:?} may only contain a-z, A-Z, 0-9, - and _"),
        ));
    }
    Ok(())
}

/// Parses a `{"key": "value"}` JSON string as parameters.
pub fn parse_map(field: &str, text: &str) -> R<BTreeMap<String, String>> {
    let v: Value = serde_json::from_str(text).map_err(|_| {
        RunError::new(
            Problem::ParameterInvalidJsonFormat,
            format!("{field} is not a JSON object string"),
        )
    })?;
    let Value::Object(obj) = v else {
        return Err(RunError::new(
            Problem::ParameterInvalidJsonFormat,
            format!("{field} is not a JSON object string"),
        ));
    };
    if obj.len() > MAX_PARAMS {
        return Err(RunError::new(
            Problem::ParameterNumberExceeded,
            format!(
                "{field} has {} parameters; at most {MAX_PARAMS} are allowed",
                obj.len()
            ),
        ));
    }
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        check_key(&k)?;
        let Value::String(s) = v else {
            return Err(RunError::new(
                Problem::ParameterValueNotString,
                format!("{field}: the value of {k:?} must be a string"),
            ));
        };
        out.insert(k, s);
    }
    Ok(out)
}

/// One entry of DefaultParameterConfs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ParamConf {
    pub parameter_name: String,
    #[serde(default)]
    pub parameter_value: String,
    #[serde(default)]
    pub parameter_description: String,
}

pub fn parse_confs(v: Value) -> R<Vec<ParamConf>> {
    let confs: Vec<ParamConf> = serde_json::from_value(v).map_err(|e| {
        RunError::new(
            Problem::InvalidParameter,
            format!("DefaultParameterConfs is malformed: {e}"),
        )
    })?;
    if confs.len() > MAX_PARAMS {
        return Err(RunError::new(
            Problem::ParameterNumberExceeded,
            format!("at most {MAX_PARAMS} DefaultParameterConfs are allowed"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for c in &confs {
        check_key(&c.parameter_name)?;
        if !seen.insert(c.parameter_name.clone()) {
            return Err(RunError::new(
                Problem::ParameterKeyDuplicated,
                format!("parameter {:?} is listed twice", c.parameter_name),
            ));
        }
    }
    Ok(confs)
}

/// The parameter settings of a command, as validated for storage.
#[derive(Debug, Clone, Default)]
pub struct Defaults {
    /// JSON object text, `{}` when none.
    pub default_parameters: String,
    /// JSON array text.
    pub confs: String,
}

/// Reads DefaultParameters / DefaultParameterConfs given EnableParameter.
pub fn read_defaults(
    enable: bool,
    default_parameters: Option<String>,
    confs: Option<Value>,
) -> R<Defaults> {
    if default_parameters.is_some() && confs.is_some() {
        return Err(RunError::new(
            Problem::ConflictParameter,
            "DefaultParameters and DefaultParameterConfs cannot both be given",
        ));
    }
    if !enable && (default_parameters.is_some() || confs.is_some()) {
        return Err(RunError::new(
            Problem::SupportParametersOnlyIfEnableParameter,
            "default parameters require EnableParameter to be true",
        ));
    }
    let mut out = Defaults {
        default_parameters: "{}".into(),
        confs: "[]".into(),
    };
    if let Some(text) = default_parameters {
        let m = parse_map("DefaultParameters", &text)?;
        out.default_parameters = json!(m).to_string();
    }
    if let Some(v) = confs {
        let c = parse_confs(v)?;
        let m: BTreeMap<_, _> = c
            .iter()
            .map(|c| (c.parameter_name.clone(), c.parameter_value.clone()))
            .collect();
        out.default_parameters = json!(m).to_string();
        out.confs = serde_json::to_string(&c).unwrap_or_else(|_| "[]".into());
    }
    Ok(out)
}

/// A placeholder found in content.
#[derive(Debug, PartialEq)]
struct Placeholder {
    start: usize,
    end: usize,
    key: String,
    hidden: bool,
    /// `{{secret:NAME}}`: `key` is the secret's name.
    secret: bool,
}

fn placeholders(text: &str) -> Vec<Placeholder> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(open) = text[at..].find("{{") {
        let start = at + open;
        let Some(close) = text[start + 2..].find("}}") else {
            break;
        };
        let end = start + 2 + close + 2;
        let inner = text[start + 2..end - 2].trim();
        let (key, hidden, secret) = if let Some(k) = inner.strip_prefix(HIDDEN_PREFIX) {
            (k.trim(), true, false)
        } else if let Some(k) = inner.strip_prefix(SECRET_PREFIX) {
            (k.trim(), false, true)
        } else {
            (inner, false, false)
        };
        let valid = if secret {
            valid_secret_name(key)
        } else {
            !key.is_empty()
                && key.len() <= 64
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if valid {
            out.push(Placeholder {
                start,
                end,
                key: key.to_string(),
                hidden,
                secret,
            });
            at = end;
        } else {
            at = start + 2;
        }
    }
    out
}

/// Secret names: 1 to 64 of `A-Z a-z 0-9 _ . -`.
pub fn valid_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The secrets `content` refers to, sorted, each once. Content that is not
/// UTF-8 refers to none (placeholders are only ever read in text).
pub fn secret_refs(content: &[u8]) -> Vec<String> {
    let Ok(text) = std::str::from_utf8(content) else {
        return Vec::new();
    };
    let mut names: Vec<String> = placeholders(text)
        .into_iter()
        .filter(|p| p.secret)
        .map(|p| p.key)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Fills only the `{{secret:NAME}}` placeholders (a command without
/// EnableParameter runs its other braces verbatim). Every referenced secret
/// must be in `secrets`.
pub fn replace_secrets(content: Vec<u8>, secrets: &BTreeMap<String, String>) -> R<Vec<u8>> {
    let Ok(text) = std::str::from_utf8(&content) else {
        return Ok(content);
    };
    let found: Vec<Placeholder> = placeholders(text)
        .into_iter()
        .filter(|p| p.secret)
        .collect();
    if found.is_empty() {
        return Ok(content);
    }
    Ok(substitute(text, &found, &BTreeMap::new(), Some(secrets))?.into_bytes())
}

/// One pass over `text`: each placeholder becomes its value; a secret
/// placeholder stays verbatim when `secrets` is None (previews).
fn substitute(
    text: &str,
    found: &[Placeholder],
    values: &BTreeMap<String, String>,
    secrets: Option<&BTreeMap<String, String>>,
) -> R<String> {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for p in found {
        let v = if p.secret {
            match secrets {
                None => &text[p.start..p.end],
                Some(m) => m.get(&p.key).ok_or_else(|| secret_not_found(&p.key))?,
            }
        } else {
            values.get(&p.key).ok_or_else(|| {
                RunError::new(
                    Problem::LackOfParameterInfo,
                    format!("no value was given for parameter {:?}", p.key),
                )
            })?
        };
        out.push_str(&text[last..p.start]);
        out.push_str(v);
        last = p.end;
    }
    out.push_str(&text[last..]);
    Ok(out)
}

/// The error for a `{{secret:NAME}}` whose secret does not exist.
pub fn secret_not_found(name: &str) -> RunError {
    RunError::SecretNotFound(name.to_string())
}

/// How secrets reach a script: as data, never as code. Each referenced
/// secret gets a variable `DROVER_SECRET_<n>` (n from 1, in name order),
/// assigned at the top of the script from a literal quoted for the command
/// type, and each `{{secret:NAME}}` becomes `${DROVER_SECRET_<n>}`. The
/// value is thus only ever the content of a quoted literal in a position
/// drover controls; however the script uses the placeholder, the shell
/// expands a variable and never parses the value as code (in SHELL, use
/// the placeholder bare or inside double quotes; inside single quotes it
/// stays literal text).
pub struct SecretRefs {
    /// NAME → the reference that replaces its placeholder.
    pub refs: BTreeMap<String, String>,
    /// The assignments to put before the script's first line.
    pub header: String,
}

/// Builds the references and the header for `values` (NAME → value) in a
/// script of `command_type`.
pub fn secret_refs_for(command_type: &str, values: &BTreeMap<String, String>) -> R<SecretRefs> {
    let mut refs = BTreeMap::new();
    let mut header = String::new();
    for (n, (name, value)) in values.iter().enumerate() {
        let var = format!("DROVER_SECRET_{}", n + 1);
        match command_type {
            "SHELL" => {
                // In single quotes nothing is special but the quote itself,
                // which closes, is escaped, and reopens.
                header.push_str(&format!("{var}='{}'\n", value.replace('\'', "'\\''")));
            }
            "POWERSHELL" => {
                // PowerShell's single-quoted strings end at any of its
                // quote characters; each is doubled.
                let mut q = String::with_capacity(value.len());
                for c in value.chars() {
                    if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}') {
                        q.push(c);
                    }
                    q.push(c);
                }
                header.push_str(&format!("${{{var}}} = '{q}'\n"));
            }
            other => return Err(RunError::SecretsUnsupported(other.to_string())),
        }
        refs.insert(name.clone(), format!("${{{var}}}"));
    }
    Ok(SecretRefs { refs, header })
}

/// Puts `header` before the script, after a `#!` line if it has one.
pub fn with_header(script: Vec<u8>, header: &str) -> Vec<u8> {
    if header.is_empty() {
        return script;
    }
    let cut = if script.starts_with(b"#!") {
        script
            .iter()
            .position(|&b| b == b'\n')
            .map_or(script.len(), |i| i + 1)
    } else {
        0
    };
    let mut out = Vec::with_capacity(script.len() + header.len() + 1);
    out.extend_from_slice(&script[..cut]);
    if cut == script.len() && cut > 0 && !script.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&script[cut..]);
    out
}

/// The outcome of substituting parameters into content.
#[derive(Debug)]
pub struct Replaced {
    /// The script to run.
    pub content: Vec<u8>,
    /// The parameters as recorded: hidden values masked.
    pub recorded_parameters: String,
    /// The command's defaults as recorded: hidden values masked.
    pub recorded_defaults: String,
}

/// Substitutes `values` (defaults overlaid by the call's parameters) into
/// `content`. Every placeholder must get a value; `{{secret:NAME}}` gets its
/// value from `secrets`, or stays as it is when `secrets` is None.
pub fn replace(
    content: &[u8],
    defaults_json: &str,
    parameters: Option<&BTreeMap<String, String>>,
    secrets: Option<&BTreeMap<String, String>>,
) -> R<Replaced> {
    let defaults = parse_map("DefaultParameters", defaults_json)?;
    let text = std::str::from_utf8(content).map_err(|_| {
        RunError::new(
            Problem::InvalidContent,
            "content with custom parameters must be UTF-8 text",
        )
    })?;
    let found = placeholders(text);
    let hidden: std::collections::HashSet<&str> = found
        .iter()
        .filter(|p| p.hidden && !p.secret)
        .map(|p| p.key.as_str())
        .collect();
    let mut values = defaults.clone();
    if let Some(p) = parameters {
        values.extend(p.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let out = substitute(text, &found, &values, secrets)?;
    let mask = |m: &BTreeMap<String, String>| -> String {
        let masked: Map<String, Value> = m
            .iter()
            .map(|(k, v)| {
                let shown = if hidden.contains(k.as_str()) { MASK } else { v };
                (k.clone(), Value::String(shown.to_string()))
            })
            .collect();
        Value::Object(masked).to_string()
    };
    Ok(Replaced {
        content: out.into_bytes(),
        recorded_parameters: parameters.map(mask).unwrap_or_else(|| "{}".into()),
        recorded_defaults: mask(&defaults),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_placeholders_and_ignores_junk() {
        let p = placeholders("a {{x}} {{ tat-hidden:pw }} {{bad key}} {{}} {{y");
        let keys: Vec<_> = p.iter().map(|p| (p.key.as_str(), p.hidden)).collect();
        assert_eq!(keys, vec![("x", false), ("pw", true)]);
    }

    #[test]
    fn replaces_with_defaults_overridden_and_masks_hidden() {
        let mut params = BTreeMap::new();
        params.insert("pw".to_string(), "s3cret".to_string());
        let r = replace(
            b"echo {{word}} {{tat-hidden:pw}}",
            r#"{"word":"hi","pw":"dflt"}"#,
            Some(&params),
            None,
        )
        .unwrap();
        assert_eq!(r.content, b"echo hi s3cret");
        assert_eq!(r.recorded_parameters, r#"{"pw":"******"}"#);
        assert!(!r.recorded_defaults.contains("dflt"));
        let e = replace(b"echo {{missing}}", "{}", None, None).unwrap_err();
        assert_eq!(e.problem(), Some(Problem::LackOfParameterInfo));
    }

    #[test]
    fn secrets_are_not_parameters_and_values_are_never_rescanned() {
        let content = b"echo {{secret:db.pw}} {{p}} {{ secret:db.pw }} {{secret:bad name}}";
        assert_eq!(secret_refs(content), vec!["db.pw".to_string()]);
        // A preview keeps the secret placeholder; no default is demanded.
        let mut params = BTreeMap::new();
        params.insert("p".to_string(), "{{secret:other}}".to_string());
        let r = replace(content, "{}", Some(&params), None).unwrap();
        assert_eq!(
            String::from_utf8(r.content).unwrap(),
            "echo {{secret:db.pw}} {{secret:other}} {{ secret:db.pw }} {{secret:bad name}}"
        );
        // Delivery: the parameter's text is data, the secret's value too.
        let mut secrets = BTreeMap::new();
        secrets.insert("db.pw".to_string(), "v{{p}}".to_string());
        let r = replace(content, "{}", Some(&params), Some(&secrets)).unwrap();
        assert_eq!(
            String::from_utf8(r.content).unwrap(),
            "echo v{{p}} {{secret:other}} v{{p}} {{secret:bad name}}"
        );
        assert_eq!(
            replace_secrets(b"a {{secret:db.pw}} {{p}}".to_vec(), &secrets).unwrap(),
            b"a v{{p}} {{p}}"
        );
        let e = replace_secrets(b"{{secret:gone}}".to_vec(), &secrets).unwrap_err();
        assert!(matches!(e, RunError::SecretNotFound(_)), "{e:?}");
        assert!(secret_refs(&[0xff, b'{', b'{']).is_empty());
    }

    #[test]
    fn validates_parameter_maps() {
        let code = |t: &str| parse_map("P", t).unwrap_err().problem();
        assert_eq!(code("[1]"), Some(Problem::ParameterInvalidJsonFormat));
        assert_eq!(code(r#"{"a":1}"#), Some(Problem::ParameterValueNotString));
        assert_eq!(
            code(r#"{"a b":"1"}"#),
            Some(Problem::ParameterKeyContainsInvalidChar)
        );
        let many: Map<String, Value> = (0..21).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert_eq!(
            code(&Value::Object(many).to_string()),
            Some(Problem::ParameterNumberExceeded)
        );
        assert_eq!(
            read_defaults(false, Some("{}".into()), None)
                .unwrap_err()
                .problem(),
            Some(Problem::SupportParametersOnlyIfEnableParameter)
        );
        assert_eq!(
            decode_content("!!").unwrap_err().problem(),
            Some(Problem::InvalidContent)
        );
        assert_eq!(
            decode_content(&"A".repeat(65540)).unwrap_err().problem(),
            Some(Problem::TooLong)
        );
    }
}
