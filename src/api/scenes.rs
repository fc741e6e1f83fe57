//! DescribeScenes: the scenes that group the public command library. Every
//! scene is TAT's own (CreatedBy "TAT") and ships with the binary.

use super::decided::Request;
use crate::gate::Authorized;
use serde_json::{json, Value};

use super::error::Code;
use super::request::{IdList, Params, R};
use super::Api;
use crate::library::{self, Scene};
use crate::timefmt::iso;

pub async fn describe(_api: &Api, _a: Authorized<Request>, mut q: Params) -> R<Value> {
    let (ids, filters) = q.ids_or_filters(
        IdList {
            name: "SceneIds",
            prefix: "scene",
            code: Code::InvalidParameterValueInvalidSceneId,
        },
        &["scene-id", "scene-name", "created-by"],
        false,
    )?;
    let page = q.page()?;
    q.finish()?;
    let mut ids = ids;
    ids.extend(filters.get("scene-id"));
    let names = filters.get("scene-name");
    let owners = filters.get("created-by");
    let any = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
    let lib = library::library();
    let matching: Vec<&Scene> = lib
        .scenes
        .iter()
        .filter(|s| {
            any(&ids, &s.scene_id)
                && any(&names, &s.scene_name)
                && any(&owners, library::CREATED_BY)
        })
        .collect();
    let time = iso(lib.created_ms);
    let set: Vec<Value> = matching
        .iter()
        .skip(page.offset as usize)
        .take(page.limit as usize)
        .map(|s| {
            json!({
                "SceneId": s.scene_id,
                "SceneName": s.scene_name,
                "CreatedBy": library::CREATED_BY,
                "CreatedTime": time,
                "UpdatedTime": time,
            })
        })
        .collect();
    Ok(json!({ "TotalCount": matching.len(), "SceneSet": set }))
}
