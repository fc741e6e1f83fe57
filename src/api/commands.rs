//! Command actions: CreateCommand, ModifyCommand, DeleteCommand(s),
//! DescribeCommands, PreviewReplacedCommandContent.

use super::decided::{Named, Request};
use crate::gate::Authorized;
use base64::Engine;
use serde_json::{json, Value};

use super::error::{ApiError, Code};
use super::request::{check_ids, IdList, Params, R};
use super::{views, Api};
use crate::run::params;
use crate::store::commands::{self, Command, CommandQuery};
use crate::timefmt::now_ms;

pub const COMMAND_TYPES: [&str; 4] = ["SHELL", "POWERSHELL", "BAT", "PYTHON"];

pub fn check_name(name: &str) -> R<()> {
    let ok_char = |c: char| c.is_alphanumeric() || c == '_' || c == '-' || c == '.';
    if name.is_empty() || name.len() > 60 || !name.chars().all(ok_char) {
        return Err(ApiError::new(
            Code::InvalidParameterValueInvalidCommandName,
            "CommandName must be 1 to 60 bytes of letters, digits, Chinese characters, _, - or .",
        ));
    }
    Ok(())
}

fn check_len(field: &str, v: &str, max_chars: usize) -> R<()> {
    if v.chars().count() > max_chars {
        return Err(ApiError::new(
            Code::InvalidParameterValueTooLong,
            format!("{field} is longer than {max_chars} characters"),
        ));
    }
    Ok(())
}

pub fn check_type(t: &str) -> R<()> {
    if !COMMAND_TYPES.contains(&t) {
        return Err(ApiError::value(format!(
            "CommandType must be one of SHELL, POWERSHELL, BAT, PYTHON; got {t:?}"
        )));
    }
    Ok(())
}

pub use crate::run::settings::{
    check_cos, check_timeout, check_username, check_workdir, default_workdir,
};

/// DefaultParameterConfs with TAT's nested rules checked (ParameterName and
/// ParameterValue required, nothing else but ParameterDescription), with the
/// same codes as top-level fields; `run::params` reads the values.
fn read_confs(q: &mut Params) -> R<Option<Value>> {
    let v = q.opt_value("DefaultParameterConfs");
    if let Some(v) = &v {
        super::request::string_objects(
            "DefaultParameterConfs",
            v.clone(),
            &["ParameterName", "ParameterValue"],
            &["ParameterDescription"],
        )?;
    }
    Ok(v)
}

pub fn read_tags(q: &mut Params) -> R<String> {
    let Some(v) = q.opt_value("Tags") else {
        return Ok("[]".into());
    };
    #[derive(serde::Serialize)]
    struct Tag {
        #[serde(rename = "Key")]
        key: String,
        #[serde(rename = "Value")]
        value: String,
    }
    // Key and Value are both required in TAT's Tag model.
    let tags: Vec<Tag> = super::request::string_objects("Tags", v, &["Key", "Value"], &[])?
        .into_iter()
        .map(|mut row| Tag {
            key: row[0].take().unwrap_or_default(),
            value: row[1].take().unwrap_or_default(),
        })
        .collect();
    if let Some(why) = crate::protocol::tag_keys_problem(tags.iter().map(|t| t.key.as_str())) {
        let code = if tags.len() > crate::protocol::MAX_TAGS {
            Code::InvalidParameterValueLimitExceeded
        } else {
            Code::InvalidParameterValue
        };
        return Err(ApiError::new(code, why));
    }
    Ok(serde_json::to_string(&tags).unwrap_or_else(|_| "[]".into()))
}

/// The fields CreateCommand and RunCommand share, read and checked.
/// `tags` is the request's `Tags` as the gate read them.
pub fn read_new_command(q: &mut Params, name_required: bool, tags: &str) -> R<Command> {
    let name = if name_required {
        Some(q.str("CommandName")?)
    } else {
        q.opt_str("CommandName")?
    };
    if let Some(n) = &name {
        check_name(n)?;
    }
    let content = q.str("Content")?;
    params::decode_content(&content)?;
    let description = q.opt_str("Description")?.unwrap_or_default();
    check_len("Description", &description, 120)?;
    let command_type = q.opt_str("CommandType")?.unwrap_or_else(|| "SHELL".into());
    check_type(&command_type)?;
    let username = q.opt_str("Username")?.unwrap_or_default();
    check_username(&username)?;
    let working_directory = q
        .opt_str("WorkingDirectory")?
        .unwrap_or_else(|| default_workdir(&username).to_string());
    check_workdir(&working_directory, &command_type)?;
    let timeout = q.opt_i64("Timeout")?.unwrap_or(60);
    check_timeout(timeout)?;
    let enable = q.opt_bool("EnableParameter")?.unwrap_or(false);
    let dp = q.opt_str("DefaultParameters")?;
    let confs = read_confs(q)?;
    let defaults = params::read_defaults(enable, dp, confs)?;
    let tags = tags.to_string();
    let cos_bucket_url = q.opt_str("OutputCOSBucketUrl")?.unwrap_or_default();
    let cos_key_prefix = q.opt_str("OutputCOSKeyPrefix")?.unwrap_or_default();
    check_cos(&cos_bucket_url, &cos_key_prefix)?;
    let now = now_ms();
    let id = crate::ids::new_id("cmd");
    Ok(Command {
        name: name.unwrap_or_default(),
        id,
        description,
        content,
        command_type,
        working_directory,
        timeout,
        enable_parameter: enable,
        default_parameters: defaults.default_parameters,
        default_parameter_confs: defaults.confs,
        username,
        cos_bucket_url,
        cos_key_prefix,
        tags,
        created_by: "USER".into(),
        scenes: Vec::new(),
        formatted_description: String::new(),
        saved: true,
        created_ms: now,
        updated_ms: now,
    })
}

pub fn command_id(q: &mut Params) -> R<String> {
    let id = q.str("CommandId")?;
    check_ids(
        "CommandId",
        std::slice::from_ref(&id),
        "cmd",
        1,
        Code::InvalidParameterValueInvalidCommandId,
    )?;
    Ok(id)
}

pub async fn create(api: &Api, _a: Authorized<Request>, mut q: Params) -> R<Value> {
    let cmd = read_new_command(&mut q, true, &_a.tags())?;
    q.finish()?;
    let id = cmd.id.clone();
    let quota = super::misc::COMMAND_QUOTA;
    let full = api
        .store
        .write(move |c| {
            if commands::count_saved(c)? >= quota {
                return Ok(true);
            }
            commands::insert(c, &cmd).map(|()| false)
        })
        .await?;
    if full {
        return Err(ApiError::new(
            Code::LimitExceeded,
            format!("at most {quota} commands may be saved"),
        ));
    }
    Ok(json!({ "CommandId": id }))
}

pub async fn modify(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let Named::ModifyCommand { id, content } = a.into_inner().named else {
        return Err(ApiError::internal());
    };
    let name = q.opt_str("CommandName")?;
    let description = q.opt_str("Description")?;
    let command_type = q.opt_str("CommandType")?;
    let working_directory = q.opt_str("WorkingDirectory")?;
    let timeout = q.opt_i64("Timeout")?;
    let dp = q.opt_str("DefaultParameters")?;
    let confs = read_confs(&mut q)?;
    let username = q.opt_str("Username")?;
    let cos_url = q.opt_str("OutputCOSBucketUrl")?;
    let cos_prefix = q.opt_str("OutputCOSKeyPrefix")?;
    q.finish()?;
    let lookup = id.clone();
    let mut cmd = api.store.read(move |c| commands::get(c, &lookup)).await?;
    if let Some(n) = name {
        check_name(&n)?;
        cmd.name = n;
    }
    if let Some(d) = description {
        check_len("Description", &d, 120)?;
        cmd.description = d;
    }
    if let Some(c) = content {
        params::decode_content(&c)?;
        cmd.content = c;
    }
    if let Some(t) = command_type {
        check_type(&t)?;
        cmd.command_type = t;
    }
    if let Some(w) = working_directory {
        cmd.working_directory = w;
    }
    check_workdir(&cmd.working_directory, &cmd.command_type)?;
    if let Some(t) = timeout {
        check_timeout(t)?;
        cmd.timeout = t;
    }
    if dp.is_some() || confs.is_some() {
        let d = params::read_defaults(cmd.enable_parameter, dp, confs)?;
        // `******` read back from DescribeCommands keeps the hidden value.
        let hidden = super::hidden::hidden_keys_b64(&cmd.content);
        let old = std::mem::take(&mut cmd.default_parameters);
        cmd.default_parameters =
            super::hidden::restore_masked_values(&d.default_parameters, Some(&old), &hidden);
        cmd.default_parameter_confs = super::hidden::restore_masked_confs(&d.confs, &old, &hidden);
    }
    if let Some(u) = username {
        check_username(&u)?;
        cmd.username = u;
    }
    if let Some(u) = cos_url {
        cmd.cos_bucket_url = u;
    }
    if let Some(p) = cos_prefix {
        cmd.cos_key_prefix = p;
    }
    check_cos(&cmd.cos_bucket_url, &cmd.cos_key_prefix)?;
    cmd.updated_ms = now_ms();
    api.store.write(move |c| commands::update(c, &cmd)).await?;
    Ok(json!({}))
}

async fn delete_ids(api: &Api, ids: Vec<String>) -> R<Value> {
    api.store
        .write(move |c| {
            // A command an invoker runs stays until the invoker is gone.
            for id in &ids {
                if crate::store::invokers::command_in_use(c, id)? {
                    return Err(crate::store::StoreError::Refused(
                        crate::store::Rule::CommandInInvoker,
                        format!(
                            "the command `{id}` is used by an invoker; delete the invoker first"
                        ),
                    ));
                }
            }
            commands::delete_all(c, &ids)
        })
        .await?;
    Ok(json!({}))
}

pub async fn delete_one(api: &Api, a: Authorized<Request>, q: Params) -> R<Value> {
    let id = a.one("CommandId")?;
    q.finish()?;
    delete_ids(api, vec![id]).await
}

pub async fn delete_many(api: &Api, a: Authorized<Request>, q: Params) -> R<Value> {
    // The gate read CommandIds (1 to 100, well formed, each once).
    let ids = a.ids().ok_or_else(|| ApiError::missing("CommandIds"))?;
    q.finish()?;
    delete_ids(api, ids).await
}

pub async fn describe(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let p = a.who();
    let (ids, filters) = q.given_ids_or_filters(
        a.ids(),
        IdList {
            name: "CommandIds",
            prefix: "cmd",
            code: Code::InvalidParameterValueInvalidCommandId,
        },
        &[
            "command-id",
            "command-name",
            "command-type",
            "scene-id",
            "created-by",
        ],
        true,
    )?;
    let page = q.page()?;
    q.finish()?;
    let mut query = CommandQuery {
        ids,
        ..Default::default()
    };
    let cmd_ids = filters.get("command-id");
    check_ids(
        "command-id",
        &cmd_ids,
        "cmd",
        5,
        Code::InvalidParameterValueInvalidCommandId,
    )?;
    query.ids.extend(cmd_ids);
    query.names = filters.get("command-name");
    query.types = filters.get("command-type");
    query.created_by = filters.get("created-by");
    query.scenes = filters.get("scene-id");
    query.tags = filters.tags();
    let vis = api.visibility(p);
    let fetch = vis.fetch(page);
    let (total, rows) = api
        .store
        .read(move |c| commands::list(c, &query, fetch))
        .await?;
    let (total, rows) = vis.page(total, rows, page, |c| {
        vis.sees(
            crate::policy::Action::DescribeCommands.policy_name(),
            &[vis.command(&c.id, &c.tags)],
        )
    });
    let set: Vec<Value> = rows
        .iter()
        .map(|c| {
            let content = vis.sees(
                crate::policy::DESCRIBE_COMMAND_CONTENT,
                &[vis.command(&c.id, &c.tags)],
            );
            views::command(&super::hidden::shown_command(c), content)
        })
        .collect();
    Ok(json!({ "TotalCount": total, "CommandSet": set }))
}

pub async fn preview(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let parameters = q.opt_str("Parameters")?;
    let command_id = a.opt_one();
    let content = q.opt_str("Content")?;
    q.finish()?;
    let (bytes, defaults, enabled) = match (command_id, content) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(ApiError::new(
                Code::InvalidParameterConflictParameter,
                "exactly one of CommandId and Content must be given",
            ))
        }
        (Some(id), None) => {
            check_ids(
                "CommandId",
                std::slice::from_ref(&id),
                "cmd",
                1,
                Code::InvalidParameterValueInvalidCommandId,
            )?;
            // The gate decided tat:DescribeCommandContent on it too.
            let cmd = api.store.read(move |c| commands::get(c, &id)).await?;
            (
                params::decode_content(&cmd.content)?,
                cmd.default_parameters,
                cmd.enable_parameter,
            )
        }
        (None, Some(c)) => (params::decode_content(&c)?, "{}".to_string(), true),
    };
    if !enabled && parameters.is_some() {
        return Err(ApiError::new(
            Code::InvalidParameterValueParameterDisabled,
            "the command does not have EnableParameter set",
        ));
    }
    let replaced = if enabled {
        let given = parameters
            .map(|p| params::parse_map("Parameters", &p))
            .transpose()?;
        // Hidden values are shown as `******` (api::hidden), even to root.
        let hidden = super::hidden::hidden_keys(&bytes);
        let given = given.map(|g| super::hidden::masked_values(&g, &hidden));
        let defaults = super::hidden::mask_values_json(&defaults, &hidden);
        params::replace(&bytes, &defaults, given.as_ref(), None)?.content
    } else {
        bytes
    };
    Ok(json!({
        "ReplacedContent": base64::engine::general_purpose::STANDARD.encode(replaced),
    }))
}
