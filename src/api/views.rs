//! Records rendered in TAT's JSON shapes (Command, Invocation, InvocationTask,
//! RegisterCodeInfo, RegisterInstanceInfo ...).

use base64::Engine;
use serde_json::{json, Value};

use crate::store::commands::Command;
use crate::store::instances::{Instance, RegisterCode};
use crate::store::invocations::{Invocation, Task};
use crate::store::status::invocation_status;
use crate::timefmt::iso;

/// Output shown inline in a TaskResult; the rest is counted in Dropped,
/// together with bytes the agent produced that never reached the server.
pub const OUTPUT_INLINE: usize = 24 * 1024;

fn json_text(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or(Value::Array(vec![]))
}

/// A command; `show_content` false blanks Content (the caller may list the
/// command but not read its script).
pub fn command(c: &Command, show_content: bool) -> Value {
    json!({
        "CommandId": c.id,
        "CommandName": c.name,
        "Description": c.description,
        "Content": if show_content { c.content.as_str() } else { "" },
        "CommandType": c.command_type,
        "WorkingDirectory": c.working_directory,
        "Timeout": c.timeout,
        "CreatedTime": iso(c.created_ms),
        "UpdatedTime": iso(c.updated_ms),
        "EnableParameter": c.enable_parameter,
        "DefaultParameters": if c.enable_parameter { c.default_parameters.clone() } else { String::new() },
        "DefaultParameterConfs": json_text(&c.default_parameter_confs),
        "Scenes": c.scenes,
        "FormattedDescription": c.formatted_description,
        "CreatedBy": c.created_by,
        "Tags": json_text(&c.tags),
        "Username": c.username,
        "OutputCOSBucketUrl": c.cos_bucket_url,
        "OutputCOSKeyPrefix": c.cos_key_prefix,
    })
}

/// An invocation; `show_content` false blanks CommandContent.
pub fn invocation(i: &Invocation, tasks: &[&Task], show_content: bool) -> Value {
    let statuses: Vec<_> = tasks.iter().map(|t| t.status).collect();
    let status = invocation_status(&statuses);
    let all_final = !tasks.is_empty() && statuses.iter().all(|s| s.is_final());
    let start = tasks
        .iter()
        .map(|t| t.start_ms)
        .filter(|m| *m > 0)
        .min()
        .unwrap_or(0);
    let end = if all_final {
        tasks.iter().map(|t| t.end_ms).max().unwrap_or(0)
    } else {
        0
    };
    let updated = tasks
        .iter()
        .map(|t| t.updated_ms)
        .max()
        .unwrap_or(0)
        .max(i.updated_ms);
    let mut v = json!({
        "InvocationId": i.id,
        "CommandId": i.command_id,
        "CommandName": i.command_name,
        "InvocationStatus": status,
        "InvocationTaskBasicInfoSet": tasks.iter().map(|t| json!({
            "InvocationTaskId": t.id,
            "TaskStatus": t.status.as_str(),
            "InstanceId": t.instance_id,
        })).collect::<Vec<_>>(),
        "Description": i.description,
        "StartTime": iso(start),
        "EndTime": iso_or_null(end),
        "CreatedTime": iso(i.created_ms),
        "UpdatedTime": iso(updated),
        "Parameters": i.parameters,
        "DefaultParameters": i.default_parameters,
        "InstanceKind": "",
        "Username": i.username,
        "InvocationSource": i.source,
        "CommandContent": if show_content { i.content.as_str() } else { "" },
        "CommandType": i.command_type,
        "Timeout": i.timeout,
        "WorkingDirectory": i.working_directory,
        "OutputCOSBucketUrl": i.cos_bucket_url,
        "OutputCOSKeyPrefix": i.cos_key_prefix,
    });
    fleet_fields(
        &mut v,
        i.targets.as_deref(),
        i.max_concurrency.as_deref(),
        i.max_errors.as_deref(),
    );
    v
}

/// drover's extension fields of an invocation or invoker, present only
/// when used, so a TAT client sees exactly TAT's shape otherwise.
pub fn fleet_fields(
    v: &mut Value,
    targets: Option<&str>,
    max_concurrency: Option<&str>,
    max_errors: Option<&str>,
) {
    if let Some(t) = targets {
        v["Targets"] = json_text(t);
    }
    if let Some(m) = max_concurrency {
        v["MaxConcurrency"] = json!(m);
    }
    if let Some(m) = max_errors {
        v["MaxErrors"] = json!(m);
    }
}

/// Cuts `out` to at most `OUTPUT_INLINE` bytes without splitting a UTF-8
/// sequence when the output is text.
pub fn inline_output(out: &[u8]) -> &[u8] {
    if out.len() <= OUTPUT_INLINE {
        return out;
    }
    let mut end = OUTPUT_INLINE;
    // Step back over continuation bytes (at most 3) to a character start.
    let mut back = 0;
    while back < 3 && end > 0 && (out[end] & 0xC0) == 0x80 {
        end -= 1;
        back += 1;
    }
    if (out[end] & 0xC0) == 0x80 {
        end = OUTPUT_INLINE;
    }
    &out[..end]
}

/// A time that may not exist yet (a task not started, a run not ended):
/// null, as TAT's models document ("may return null"), never "".
fn iso_or_null(ms: i64) -> Value {
    if ms <= 0 {
        Value::Null
    } else {
        Value::String(iso(ms))
    }
}

/// `head` holds at least the first OUTPUT_INLINE+1 bytes of the output (or all of it).
/// A task; `show_content` false blanks CommandDocument.Content.
pub fn task(t: &Task, inv: Option<&Invocation>, head: Option<&[u8]>, show_content: bool) -> Value {
    let (output, dropped) = match head {
        Some(h) => {
            let shown = inline_output(h);
            (
                base64::engine::general_purpose::STANDARD.encode(shown),
                t.output_len - shown.len() as i64 + t.missing_output(),
            )
        }
        None => (String::new(), 0),
    };
    let finished = t.status.is_final();
    json!({
        "InvocationId": t.invocation_id,
        "InvocationTaskId": t.id,
        "CommandId": t.command_id,
        "TaskStatus": t.status.as_str(),
        "InstanceId": t.instance_id,
        "TaskResult": {
            // Null when unknown (the task never ran, was killed by a
            // signal, or died with its agent): never a made-up 0.
            "ExitCode": t.exit_code,
            "Output": output,
            "ExecStartTime": iso_or_null(t.exec_start_ms),
            "ExecEndTime": if finished { iso_or_null(t.exec_end_ms) } else { Value::Null },
            "Dropped": dropped.max(0),
            "OutputUrl": "",
            "OutputUploadCOSErrorInfo": "",
        },
        "StartTime": iso_or_null(t.start_ms),
        "EndTime": iso_or_null(t.end_ms),
        "CreatedTime": iso(t.created_ms),
        "UpdatedTime": iso(t.updated_ms),
        "CommandDocument": inv.map(|i| json!({
            "Content": if show_content { i.content.as_str() } else { "" },
            "CommandType": i.command_type,
            "Timeout": i.timeout,
            "WorkingDirectory": i.working_directory,
            "Username": i.username,
            "OutputCOSBucketUrl": i.cos_bucket_url,
            "OutputCOSKeyPrefix": i.cos_key_prefix,
        })),
        "ErrorInfo": t.error_info,
        "InvocationSource": inv.map(|i| i.source.as_str()).unwrap_or("USER"),
        "CommandName": inv.map(|i| i.command_name.as_str()).unwrap_or(""),
    })
}

pub fn register_code(c: &RegisterCode) -> Value {
    let mut v = json!({
        "RegisterCodeId": c.id,
        "Description": c.description,
        "InstanceNamePrefix": c.instance_name_prefix,
        "RegisterLimit": c.register_limit,
        "ExpiredTime": if c.expired_ms > 0 { iso(c.expired_ms) } else { String::new() },
        "IpAddressRange": c.ip_range,
        "Enabled": c.enabled,
        "RegisteredCount": c.registered_count,
        "CreatedTime": iso(c.created_ms),
        "UpdatedTime": iso(c.updated_ms),
    });
    // drover extension, shown only when set: TAT's RegisterCodeInfo has no Tags.
    if !matches!(json_text(&c.tags), Value::Array(ref a) if a.is_empty()) {
        v["Tags"] = json_text(&c.tags);
    }
    if !matches!(json_text(&c.allowed_agent_tag_keys), Value::Array(ref a) if a.is_empty()) {
        v["AllowedAgentTagKeys"] = json_text(&c.allowed_agent_tag_keys);
    }
    v
}

pub fn instance(i: &Instance, online: bool) -> Value {
    json!({
        "RegisterCodeId": i.register_code_id,
        "InstanceId": i.id,
        "InstanceName": i.name,
        "MachineId": i.machine_id,
        "SystemName": i.system_name,
        "HostName": i.hostname,
        "LocalIp": i.local_ip,
        "PublicKey": i.public_key,
        "Status": if online { "Online" } else { "Offline" },
        "CreatedTime": iso(i.created_ms),
        "UpdatedTime": iso(i.updated_ms),
        "Tags": json_text(&i.tags),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_output_respects_utf8() {
        let mut v = vec![b'a'; OUTPUT_INLINE - 1];
        v.extend("é".as_bytes());
        v.extend(b"tail");
        let cut = inline_output(&v);
        assert_eq!(cut.len(), OUTPUT_INLINE - 1);
        let bin = vec![0x80u8; OUTPUT_INLINE + 10];
        assert_eq!(inline_output(&bin).len(), OUTPUT_INLINE);
    }
}
