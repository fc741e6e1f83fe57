//! DescribeRegions and DescribeQuotas: an appliance is one region.

use super::decided::Request;
use crate::gate::Authorized;
use serde_json::{json, Value};

use super::error::{ApiError, Code};
use super::request::{Params, R};
use super::Api;
use crate::store::{commands, instances};

/// Saved commands one account may keep (TAT's default quota).
pub const COMMAND_QUOTA: i64 = 500;

pub async fn regions(api: &Api, _a: Authorized<Request>, q: Params) -> R<Value> {
    q.finish()?;
    Ok(json!({
        "TotalCount": 1,
        "RegionSet": [{
            "Region": api.region,
            "RegionName": format!("drover ({})", api.region),
            "RegionState": "AVAILABLE",
        }],
    }))
}

pub async fn quotas(api: &Api, _a: Authorized<Request>, mut q: Params) -> R<Value> {
    let names = q
        .opt_str_list("ResourceNames")?
        .ok_or_else(|| ApiError::missing("ResourceNames"))?;
    q.finish()?;
    if names.is_empty() {
        return Err(ApiError::missing("ResourceNames"));
    }
    for n in &names {
        if n != "COMMAND" && n != "REGISTER_CODE" {
            return Err(ApiError::new(
                Code::ResourceUnavailableInvalidResourceQuotaResourceCode,
                format!("unknown resource name {n:?}; use COMMAND or REGISTER_CODE"),
            ));
        }
    }
    let (cmds, codes) = api
        .store
        .read(|c| Ok((commands::count_saved(c)?, instances::count_codes(c)?)))
        .await?;
    let set: Vec<Value> = names
        .iter()
        .map(|n| {
            let (used, total) = if n == "COMMAND" {
                (cmds, COMMAND_QUOTA)
            } else {
                (codes, instances::REGISTER_CODE_QUOTA)
            };
            json!({ "ResourceName": n, "ResourceQuotaUsed": used, "ResourceQuotaTotal": total })
        })
        .collect();
    Ok(json!({ "GeneralResourceQuotaSet": set }))
}
