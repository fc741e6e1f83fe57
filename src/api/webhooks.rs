//! Webhook notifications on the API (drover extensions): the `Webhook`
//! parameter of RunCommand, InvokeCommand, CreateInvoker and ModifyInvoker,
//! and DescribeWebhookDeliveries. The key goes in and never comes out: views
//! show `Webhook: {"Url"}` only.

use super::decided::{Named, Request};
use crate::gate::Authorized;
use std::collections::HashMap;

use serde_json::{json, Value};

use super::error::{ApiError, Code};
use super::request::{check_ids, Params, R};
use super::Api;
use crate::notify::Webhook;
use crate::store::invocations as invs;
use crate::store::webhooks::{self as hooks, DeliveryQuery};
use crate::timefmt::iso;

/// What a request's `Webhook` parameter asks for.
pub(crate) enum WebhookParam {
    Set(Webhook),
    /// `{}` on ModifyInvoker: remove the invoker's webhook.
    Clear,
}

/// Reads `Webhook: {"Url", "Secret"}`; `allow_clear` accepts `{}`. A URL
/// naming a literal address the server may not deliver to is refused here.
pub(crate) fn read_webhook(
    api: &Api,
    q: &mut Params,
    allow_clear: bool,
) -> R<Option<WebhookParam>> {
    let Some(v) = q.opt_value("Webhook") else {
        return Ok(None);
    };
    let Value::Object(mut m) = v else {
        return Err(ApiError::wrong_type(
            "Webhook",
            "an object {\"Url\", \"Secret\"}",
        ));
    };
    if m.is_empty() && allow_clear {
        return Ok(Some(WebhookParam::Clear));
    }
    let mut text = |name: &str| -> R<String> {
        match m.remove(name) {
            None | Some(Value::Null) => Err(ApiError::missing(&format!("Webhook.{name}"))),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(ApiError::wrong_type(&format!("Webhook.{name}"), "a string")),
        }
    };
    let url = text("Url")?;
    let secret = text("Secret")?;
    if let Some(k) = m.keys().next() {
        return Err(ApiError::unknown_param(&format!("Webhook.{k}")));
    }
    let hook = Webhook::new(&url, &secret)?;
    hook.check_destination(&api.webhook_allow)?;
    Ok(Some(WebhookParam::Set(hook)))
}

/// Reads a `Webhook` that must set one (RunCommand, InvokeCommand, CreateInvoker).
pub(crate) fn read_new_webhook(api: &Api, q: &mut Params) -> R<Option<Webhook>> {
    match read_webhook(api, q, false)? {
        Some(WebhookParam::Set(w)) => Ok(Some(w)),
        _ => Ok(None),
    }
}

/// Adds `Webhook: {"Url"}` (and, for an invocation, `WebhookStatus`) to a
/// view when the record has a webhook; records without one are unchanged.
pub(crate) fn decorate(view: &mut Value, url: Option<&String>, status: Option<&str>) {
    let Some(url) = url else {
        return;
    };
    view["Webhook"] = json!({ "Url": url });
    if let Some(s) = status {
        view["WebhookStatus"] = json!(s);
    }
}

/// The one-line delivery state of an invocation with a webhook: the
/// delivery's state, or WAITING while the invocation has not ended.
pub(crate) fn status_line(delivery: Option<&String>) -> &str {
    delivery.map(String::as_str).unwrap_or("WAITING")
}

pub async fn describe_deliveries(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let Named::Deliveries {
        invocation: inv,
        invoker: ivk,
    } = a.into_inner().named
    else {
        return Err(ApiError::internal());
    };
    let page = q.page()?;
    q.finish()?;
    let mut query = DeliveryQuery::default();
    match (inv, ivk) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                Code::InvalidParameter,
                "give either InvocationId or InvokerId, not both",
            ))
        }
        (None, None) => return Err(ApiError::missing("InvocationId")),
        (Some(id), None) => {
            check_ids(
                "InvocationId",
                std::slice::from_ref(&id),
                "inv",
                1,
                Code::InvalidParameterValueInvalidInvocationId,
            )?;
            let lookup = id.clone();
            api.store.read(move |c| invs::get(c, &lookup)).await?;
            query.invocation_ids = vec![id];
        }
        (None, Some(id)) => {
            check_ids(
                "InvokerId",
                std::slice::from_ref(&id),
                "ivk",
                1,
                Code::InvalidParameterValueInvalidInvokerId,
            )?;
            query.invoker_ids = vec![id];
        }
    }
    let (total, rows, attempts) = api
        .store
        .read(move |c| {
            let (total, rows) = hooks::list(c, &query, page)?;
            let ids: Vec<String> = rows.iter().map(|d| d.id.clone()).collect();
            Ok((total, rows, hooks::attempts_of(c, &ids)?))
        })
        .await?;
    let mut by_delivery: HashMap<&str, Vec<Value>> = HashMap::new();
    for a in &attempts {
        by_delivery
            .entry(a.delivery_id.as_str())
            .or_default()
            .push(json!({
                "Attempt": a.attempt,
                "Time": iso(a.at_ms),
                "HttpStatus": a.http_status,
                "Error": a.error,
            }));
    }
    let set: Vec<Value> = rows
        .iter()
        .map(|d| {
            let pending = d.status == hooks::PENDING;
            json!({
                "DeliveryId": d.id,
                "Event": crate::notify::EVENT_FINISHED,
                "InvocationId": d.invocation_id,
                "InvokerId": d.invoker_id,
                "Url": d.url,
                "Status": d.status,
                "Attempts": d.attempts,
                "NextAttemptTime": if pending { iso(d.next_ms) } else { String::new() },
                "CreatedTime": iso(d.created_ms),
                "UpdatedTime": iso(d.updated_ms),
                "AttemptSet": by_delivery.remove(d.id.as_str()).unwrap_or_default(),
            })
        })
        .collect();
    Ok(json!({ "TotalCount": total, "WebhookDeliverySet": set }))
}
