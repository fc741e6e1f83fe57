"""Access management through the official CAM SDK (2019-01-16) on the same
endpoint as TAT: users, groups, policies, attachments and access keys, and
what a sub-user's key does against TAT. Failing requests change nothing."""

import json

import pytest
from tencentcloud.cam.v20190116 import cam_client
from tencentcloud.cam.v20190116 import models as cam_models
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

import tat
from tat import expect_error, uniq

DOC = {"version": "2.0", "statement": [{"effect": "allow", "action": ["tat:Describe*"], "resource": "*"}]}


def make_cam_client(server, secret_id=None, secret_key=None):
    """Built exactly as tat.make_client builds the TAT client."""
    cred = credential.Credential(secret_id or server.secret_id, secret_key or server.secret_key)
    http = HttpProfile(endpoint=server.addr, certification=server.cert, reqTimeout=30)
    return cam_client.CamClient(cred, tat.REGION, ClientProfile(httpProfile=http))


def call(client, action, **fields):
    req = getattr(cam_models, action + "Request")()
    req.from_json_string(json.dumps(fields))
    return getattr(client, action)(req)


def expect(codes, client, action, **fields):
    return expect_error(codes, call, client, action, **fields)


@pytest.fixture(scope="module")
def cam(server):
    return make_cam_client(server)


def name(prefix):
    # CAM names allow letters, digits and +=,.@_- only.
    return uniq(prefix).replace("-", "_")


def add_user(cam, **fields):
    fields.setdefault("Name", name("u"))
    return call(cam, "AddUser", **fields)


def user_names(cam):
    return [u.Name for u in call(cam, "ListUsers").Data]


def user_key_ids(cam, uin):
    return [k.AccessKeyId for k in call(cam, "ListAccessKeys", TargetUin=uin).AccessKeys]


# --- users and access keys ----------------------------------------------------

def test_user_crud(cam):
    r = add_user(cam, Remark="first", ConsoleLogin=1, PhoneNum="13800000000", CountryCode="86",
                 Email="ann@example.com")
    assert isinstance(r.Uin, int) and r.Uin > 0 and isinstance(r.Uid, int)
    assert len(r.Password) == 32, "ConsoleLogin=1 without Password generates one"
    assert r.SecretId is None and r.SecretKey is None, "UseApi not asked: no key"
    g = call(cam, "GetUser", Name=r.Name)
    assert (g.Uin, g.Name, g.Uid, g.Remark, g.ConsoleLogin) == (r.Uin, r.Name, r.Uid, "first", 1)
    assert (g.PhoneNum, g.CountryCode, g.Email) == ("13800000000", "86", "ann@example.com")
    listed = {u.Name: u for u in call(cam, "ListUsers").Data}
    assert listed[r.Name].Uin == r.Uin
    assert tat.TIME_RE.match(listed[r.Name].CreateTime.replace(" ", "T") + "Z")
    call(cam, "UpdateUser", Name=r.Name, Remark="second", ConsoleLogin=0, Password="New-pass-123")
    g = call(cam, "GetUser", Name=r.Name)
    assert (g.Remark, g.ConsoleLogin, g.Email) == ("second", 0, "ann@example.com")
    call(cam, "DeleteUser", Name=r.Name)
    assert r.Name not in user_names(cam)
    expect("ResourceNotFound.UserNotExist", cam, "GetUser", Name=r.Name)


def test_sub_user_key_works_against_tat_until_deactivated(server, cam):
    r = add_user(cam, UseApi=1)
    assert r.SecretId.startswith("AKID") and len(r.SecretKey) == 32
    assert r.Password is None, "no console login: no password"
    sub_tat = server.client(r.SecretId, r.SecretKey)
    # A new sub-user may do nothing until a policy says so.
    tat.expect_call_error("AuthFailure.UnauthorizedOperation", sub_tat, "DescribeRegions")
    presets = {p.PolicyName: p.PolicyId for p in call(cam, "ListPolicies", Scope="QCS", Rp=200).List}
    for preset in ("QcloudTATReadOnlyAccess", "QcloudCamReadOnlyAccess"):
        call(cam, "AttachUserPolicy", PolicyId=presets[preset], AttachUin=r.Uin)
    assert tat.call(sub_tat, "DescribeRegions").TotalCount == 1
    keys = call(cam, "ListAccessKeys", TargetUin=r.Uin).AccessKeys
    assert [(k.AccessKeyId, k.Status) for k in keys] == [(r.SecretId, "Active")]
    assert all(not hasattr(k, "SecretAccessKey") for k in keys)

    # The sub-user speaks CAM with its own key, and knows who it is.
    sub_cam = make_cam_client(server, r.SecretId, r.SecretKey)
    me = call(sub_cam, "GetUserAppId")
    root = call(cam, "GetUserAppId")
    assert me.Uin == str(r.Uin)
    assert me.OwnerUin == root.OwnerUin == root.Uin
    assert me.AppId == root.AppId and isinstance(me.AppId, int)

    call(cam, "UpdateAccessKey", AccessKeyId=r.SecretId, Status="Inactive", TargetUin=r.Uin)
    assert [k.Status for k in call(cam, "ListAccessKeys", TargetUin=r.Uin).AccessKeys] == ["Inactive"]
    tat.expect_call_error("AuthFailure.SecretIdNotFound", sub_tat, "DescribeRegions")
    expect("AuthFailure.SecretIdNotFound", sub_cam, "GetUserAppId")
    call(cam, "UpdateAccessKey", AccessKeyId=r.SecretId, Status="Active", TargetUin=r.Uin)
    assert tat.call(sub_tat, "DescribeRegions").TotalCount == 1
    expect("InvalidParameter.ParamError", cam, "UpdateAccessKey", AccessKeyId=r.SecretId,
           Status="Disabled", TargetUin=r.Uin)

    # Two keys per user, as CAM allows; the secret is shown only at creation.
    k2 = call(cam, "CreateAccessKey", TargetUin=r.Uin, Description="ci").AccessKey
    assert k2.AccessKeyId.startswith("AKID") and len(k2.SecretAccessKey) == 32
    assert (k2.Status, k2.Description) == ("Active", "ci")
    assert tat.call(server.client(k2.AccessKeyId, k2.SecretAccessKey), "DescribeRegions").TotalCount == 1
    expect("OperationDenied.AccessKeyOverLimit", cam, "CreateAccessKey", TargetUin=r.Uin)
    assert sorted(user_key_ids(cam, r.Uin)) == sorted([r.SecretId, k2.AccessKeyId])
    # A sub-user manages its own keys without TargetUin.
    assert sorted(k.AccessKeyId for k in call(sub_cam, "ListAccessKeys").AccessKeys) == \
        sorted([r.SecretId, k2.AccessKeyId])
    call(cam, "DeleteAccessKey", AccessKeyId=k2.AccessKeyId, TargetUin=r.Uin)
    assert user_key_ids(cam, r.Uin) == [r.SecretId]
    expect("ResourceNotFound.SecretNotExist", cam, "DeleteAccessKey", AccessKeyId=k2.AccessKeyId,
           TargetUin=r.Uin)
    # Another user's key is not reachable through this user.
    other = add_user(cam)
    expect("ResourceNotFound.SecretNotExist", cam, "UpdateAccessKey", AccessKeyId=r.SecretId,
           Status="Inactive", TargetUin=other.Uin)
    assert call(cam, "ListAccessKeys", TargetUin=r.Uin).AccessKeys[0].Status == "Active"
    # A sub-user cannot touch the account's own keys.
    expect("OperationDenied.SubUin", sub_cam, "ListAccessKeys", TargetUin=int(root.OwnerUin))

    # A user with keys survives DeleteUser without Force.
    expect("OperationDenied.HaveKeys", cam, "DeleteUser", Name=r.Name)
    assert r.Name in user_names(cam)
    call(cam, "DeleteUser", Name=r.Name, Force=1)
    assert r.Name not in user_names(cam)
    tat.expect_call_error("AuthFailure.SecretIdNotFound", sub_tat, "DescribeRegions")
    call(cam, "DeleteUser", Name=other.Name)


def test_root_keys(server, cam):
    root = call(cam, "GetUserAppId")
    own = call(cam, "ListAccessKeys").AccessKeys
    assert server.secret_id in [k.AccessKeyId for k in own]
    assert [k.AccessKeyId for k in call(cam, "ListAccessKeys", TargetUin=int(root.OwnerUin)).AccessKeys] == \
        [k.AccessKeyId for k in own]


# --- groups ---------------------------------------------------------------------

def test_group_membership_both_ways(cam):
    a, b = add_user(cam), add_user(cam)
    gname = name("ops")
    gid = call(cam, "CreateGroup", GroupName=gname, Remark="operators").GroupId
    other = call(cam, "CreateGroup", GroupName=name("dev")).GroupId
    expect("InvalidParameter.GroupNameInUse", cam, "CreateGroup", GroupName=gname)
    g = call(cam, "GetGroup", GroupId=gid)
    assert (g.GroupId, g.GroupName, g.Remark, g.GroupNum, g.UserInfo) == (gid, gname, "operators", 0, [])
    found = call(cam, "ListGroups", Keyword=gname)
    assert found.TotalNum == 1 and found.GroupInfo[0].GroupId == gid

    call(cam, "AddUserToGroup", Info=[{"GroupId": gid, "Uin": a.Uin}, {"GroupId": gid, "Uid": b.Uid},
                                      {"GroupId": other, "Uin": a.Uin}])
    m = call(cam, "ListUsersForGroup", GroupId=gid)
    assert m.TotalNum == 2 and sorted(u.Uin for u in m.UserInfo) == sorted([a.Uin, b.Uin])
    page = call(cam, "ListUsersForGroup", GroupId=gid, Page=2, Rp=1)
    assert page.TotalNum == 2 and len(page.UserInfo) == 1
    assert call(cam, "GetGroup", GroupId=gid).GroupNum == 2
    mine = call(cam, "ListGroupsForUser", SubUin=a.Uin)
    assert mine.TotalNum == 2 and sorted(x.GroupId for x in mine.GroupInfo) == sorted([gid, other])
    assert [x.GroupName for x in call(cam, "ListGroupsForUser", Uid=b.Uid).GroupInfo] == [gname]

    # One unknown user in Info: nothing changes.
    expect("ResourceNotFound.UserNotExist", cam, "AddUserToGroup",
           Info=[{"GroupId": other, "Uin": b.Uin}, {"GroupId": other, "Uin": 999999999999}])
    assert call(cam, "ListUsersForGroup", GroupId=other).TotalNum == 1
    expect("ResourceNotFound.GroupNotExist", cam, "AddUserToGroup", Info=[{"GroupId": 987654, "Uin": a.Uin}])

    call(cam, "RemoveUserFromGroup", Info=[{"GroupId": gid, "Uin": a.Uin}])
    assert [u.Uin for u in call(cam, "ListUsersForGroup", GroupId=gid).UserInfo] == [b.Uin]
    assert [x.GroupId for x in call(cam, "ListGroupsForUser", SubUin=a.Uin).GroupInfo] == [other]

    call(cam, "DeleteGroup", GroupId=gid)
    expect("ResourceNotFound.GroupNotExist", cam, "GetGroup", GroupId=gid)
    assert call(cam, "ListGroupsForUser", SubUin=b.Uin).TotalNum == 0
    call(cam, "DeleteGroup", GroupId=other)
    for u in (a, b):
        call(cam, "DeleteUser", Name=u.Name)


# --- policies -------------------------------------------------------------------

def test_list_policies_shows_presets_and_custom(cam):
    pname = name("p")
    pid = call(cam, "CreatePolicy", PolicyName=pname, PolicyDocument=json.dumps(DOC), Description="d").PolicyId
    qcs = call(cam, "ListPolicies", Scope="QCS", Rp=200)
    presets = {p.PolicyName: p for p in qcs.List}
    assert {"QcloudTATReadOnlyAccess", "QcloudTATFullAccess"} <= set(presets)
    assert all(p.Type == 2 for p in qcs.List) and qcs.TotalNum == len(qcs.List)
    local = call(cam, "ListPolicies", Scope="Local", Rp=200)
    assert all(p.Type == 1 for p in local.List)
    assert pid in [p.PolicyId for p in local.List]
    everything = call(cam, "ListPolicies", Rp=200)
    assert everything.TotalNum == qcs.TotalNum + local.TotalNum
    kw = call(cam, "ListPolicies", Keyword=pname)
    assert [(p.PolicyId, p.Type, p.Description) for p in kw.List] == [(pid, 1, "d")]
    assert call(cam, "ListPolicies", Rp=1, Page=2).List[0].PolicyId == everything.List[1].PolicyId
    ro = call(cam, "GetPolicy", PolicyId=presets["QcloudTATReadOnlyAccess"].PolicyId)
    assert ro.Type == 2 and "tat:Describe*" in json.loads(ro.PolicyDocument)["statement"][0]["action"]
    full = call(cam, "GetPolicy", PolicyId=presets["QcloudTATFullAccess"].PolicyId)
    assert "tat:*" in json.loads(full.PolicyDocument)["statement"][0]["action"]
    expect("InvalidParameter.PolicyIdError", cam, "UpdatePolicy",
           PolicyId=presets["QcloudTATFullAccess"].PolicyId, Description="mine now")
    expect("InvalidParameter.PolicyIdError", cam, "DeletePolicy",
           PolicyId=[presets["QcloudTATFullAccess"].PolicyId])
    expect("InvalidParameter.ScopeError", cam, "ListPolicies", Scope="Mine")
    call(cam, "DeletePolicy", PolicyId=[pid])


def test_policy_crud(cam):
    pname = name("p")
    pid = call(cam, "CreatePolicy", PolicyName=pname, PolicyDocument=json.dumps(DOC), Description="v1",
               Tags=[{"Key": "team", "Value": "ops"}]).PolicyId
    p = call(cam, "GetPolicy", PolicyId=pid)
    assert (p.PolicyName, p.Description, p.Type) == (pname, "v1", 1)
    assert json.loads(p.PolicyDocument) == DOC
    assert [(t.Key, t.Value) for t in p.Tags] == [("team", "ops")]
    assert p.AddTime and p.UpdateTime
    expect("FailedOperation.PolicyNameInUse", cam, "CreatePolicy", PolicyName=pname,
           PolicyDocument=json.dumps(DOC))

    doc2 = {"version": "2.0", "statement": [{"effect": "deny", "action": ["tat:RunCommand"], "resource": "*"}]}
    r = call(cam, "UpdatePolicy", PolicyId=pid, PolicyDocument=json.dumps(doc2))
    assert r.PolicyId is None, "PolicyId comes back only when the input was PolicyName"
    assert json.loads(call(cam, "GetPolicy", PolicyId=pid).PolicyDocument) == doc2
    assert call(cam, "UpdatePolicy", PolicyName=pname, Description="v2").PolicyId == pid
    assert call(cam, "GetPolicy", PolicyId=pid).Description == "v2"

    call(cam, "DeletePolicy", PolicyId=[pid])
    expect("ResourceNotFound.PolicyIdNotFound", cam, "GetPolicy", PolicyId=pid)
    expect("ResourceNotFound.PolicyIdNotFound", cam, "DeletePolicy", PolicyId=[pid])


def test_attachments_and_group_inherited_policies(cam):
    u = add_user(cam)
    gname = name("grp")
    gid = call(cam, "CreateGroup", GroupName=gname).GroupId
    call(cam, "AddUserToGroup", Info=[{"GroupId": gid, "Uin": u.Uin}])
    direct = call(cam, "CreatePolicy", PolicyName=name("direct"), PolicyDocument=json.dumps(DOC)).PolicyId
    via = call(cam, "CreatePolicy", PolicyName=name("via"), PolicyDocument=json.dumps(DOC)).PolicyId
    presets = {p.PolicyName: p.PolicyId for p in call(cam, "ListPolicies", Scope="QCS").List}
    ro = presets["QcloudTATReadOnlyAccess"]

    call(cam, "AttachUserPolicy", PolicyId=direct, AttachUin=u.Uin)
    call(cam, "AttachUserPolicy", PolicyId=ro, AttachUin=u.Uin)
    call(cam, "AttachGroupPolicy", PolicyId=via, AttachGroupId=gid)
    call(cam, "AttachGroupPolicy", PolicyId=ro, AttachGroupId=gid)

    mine = call(cam, "ListAttachedUserPolicies", TargetUin=u.Uin)
    assert mine.TotalNum == 2
    kinds = {p.PolicyId: p.PolicyType for p in mine.List}
    assert kinds == {direct: "User", ro: "QCS"}
    grp = call(cam, "ListAttachedGroupPolicies", TargetGroupId=gid)
    assert grp.TotalNum == 2 and {p.PolicyId for p in grp.List} == {via, ro}

    all_ = call(cam, "ListAttachedUserAllPolicies", TargetUin=u.Uin, Rp=20, Page=1, AttachType=0)
    assert all_.TotalNum == 3
    by_id = {int(p.PolicyId): p for p in all_.PolicyList}
    assert set(by_id) == {direct, via, ro}
    assert by_id[direct].Groups == [] and by_id[direct].StrategyType == "1"
    assert [(g.GroupId, g.GroupName) for g in by_id[via].Groups] == [(gid, gname)]
    assert [g.GroupId for g in by_id[ro].Groups] == [gid] and by_id[ro].StrategyType == "2"
    only_groups = call(cam, "ListAttachedUserAllPolicies", TargetUin=u.Uin, Rp=20, Page=1, AttachType=2)
    assert {int(p.PolicyId) for p in only_groups.PolicyList} == {via, ro}
    only_direct = call(cam, "ListAttachedUserAllPolicies", TargetUin=u.Uin, Rp=20, Page=1, AttachType=1)
    assert {int(p.PolicyId) for p in only_direct.PolicyList} == {direct, ro}
    presets_only = call(cam, "ListAttachedUserAllPolicies", TargetUin=u.Uin, Rp=20, Page=1, AttachType=0,
                        StrategyType=2)
    assert [int(p.PolicyId) for p in presets_only.PolicyList] == [ro]

    # Unknown policy or user: nothing attached.
    expect("ResourceNotFound.PolicyIdNotFound", cam, "AttachUserPolicy", PolicyId=123456789, AttachUin=u.Uin)
    expect("ResourceNotFound.UserNotExist", cam, "AttachUserPolicy", PolicyId=direct, AttachUin=999999999999)
    expect("ResourceNotFound.GroupNotExist", cam, "AttachGroupPolicy", PolicyId=direct, AttachGroupId=987654)
    assert call(cam, "ListAttachedUserPolicies", TargetUin=u.Uin).TotalNum == 2

    call(cam, "DetachUserPolicy", PolicyId=direct, DetachUin=u.Uin)
    call(cam, "DetachGroupPolicy", PolicyId=via, DetachGroupId=gid)
    assert [p.PolicyId for p in call(cam, "ListAttachedUserPolicies", TargetUin=u.Uin).List] == [ro]
    assert [p.PolicyId for p in call(cam, "ListAttachedGroupPolicies", TargetGroupId=gid).List] == [ro]
    after = call(cam, "ListAttachedUserAllPolicies", TargetUin=u.Uin, Rp=20, Page=1, AttachType=0)
    assert [int(p.PolicyId) for p in after.PolicyList] == [ro]
    # Leaving the group drops what it brought.
    call(cam, "RemoveUserFromGroup", Info=[{"GroupId": gid, "Uin": u.Uin}])
    after = call(cam, "ListAttachedUserAllPolicies", TargetUin=u.Uin, Rp=20, Page=1, AttachType=0)
    assert [(int(p.PolicyId), p.Groups) for p in after.PolicyList] == [(ro, [])]

    # Deleting a policy detaches it everywhere.
    call(cam, "AttachUserPolicy", PolicyId=via, AttachUin=u.Uin)
    call(cam, "DeletePolicy", PolicyId=[direct, via])
    assert [p.PolicyId for p in call(cam, "ListAttachedUserPolicies", TargetUin=u.Uin).List] == [ro]
    call(cam, "DeleteGroup", GroupId=gid)
    call(cam, "DeleteUser", Name=u.Name)


# --- bad input changes nothing ----------------------------------------------------

def test_bad_input_is_refused_and_changes_nothing(cam):
    u = add_user(cam, Remark="orig")
    before = user_names(cam)
    expect("InvalidParameter.SubUserNameInUse", cam, "AddUser", Name=u.Name, Remark="dup", UseApi=1)
    assert user_names(cam) == before
    assert call(cam, "GetUser", Name=u.Name).Remark == "orig"
    assert user_key_ids(cam, u.Uin) == []
    expect("InvalidParameter.UserNameIllegal", cam, "AddUser", Name="has space")
    expect("InvalidParameter.PasswordViolatedRules", cam, "AddUser", Name=name("weak"), ConsoleLogin=1,
           Password="password")
    assert user_names(cam) == before

    expect("ResourceNotFound.UserNotExist", cam, "GetUser", Name=name("nobody"))
    expect("ResourceNotFound.UserNotExist", cam, "UpdateUser", Name=name("nobody"), Remark="x")
    expect("ResourceNotFound.UserNotExist", cam, "DeleteUser", Name=name("nobody"))
    expect("ResourceNotFound.UserNotExist", cam, "ListAccessKeys", TargetUin=999999999999)
    expect("ResourceNotFound.UserNotExist", cam, "CreateAccessKey", TargetUin=999999999999)
    assert user_names(cam) == before

    local = call(cam, "ListPolicies", Scope="Local", Rp=200).TotalNum
    doc_errors = {"InvalidParameter.PolicyDocumentError", "InvalidParameter.VersionError",
                  "InvalidParameter.StatementError", "InvalidParameter.ActionError",
                  "InvalidParameter.ResourceError", "InvalidParameter.EffectError"}
    bad_docs = [
        ("{not json", "InvalidParameter.PolicyDocumentError"),
        ("[]", doc_errors),
        (json.dumps({"statement": []}), "InvalidParameter.VersionError"),
        (json.dumps({"version": "2.0"}), "InvalidParameter.StatementError"),
        (json.dumps({"version": "2.0", "statement": [{"effect": "allow", "action": ["tat>RunCommand"],
                                                      "resource": "*"}]}), "InvalidParameter.ActionError"),
        (json.dumps({"version": "2.0", "statement": [{"effect": "allow", "action": ["tat:RunCommand"],
                                                      "resource": ["qcs::tat:cmd"]}]}),
         "InvalidParameter.ResourceError"),
    ]
    for bad, codes in bad_docs:
        expect(codes, cam, "CreatePolicy", PolicyName=name("bad"), PolicyDocument=bad)
    expect("InvalidParameter.PolicyNameError", cam, "CreatePolicy", PolicyName="no spaces allowed",
           PolicyDocument=json.dumps(DOC))
    expect("InvalidParameter.PolicyDocumentLengthOverLimit", cam, "CreatePolicy", PolicyName=name("big"),
           PolicyDocument=json.dumps({"version": "2.0", "statement": [], "pad": "x" * 7000}))
    assert call(cam, "ListPolicies", Scope="Local", Rp=200).TotalNum == local

    pid = call(cam, "CreatePolicy", PolicyName=name("keep"), PolicyDocument=json.dumps(DOC)).PolicyId
    expect(doc_errors, cam, "UpdatePolicy", PolicyId=pid,
           PolicyDocument='{"version": "2.0", "statement": "oops"', Description="changed")
    p = call(cam, "GetPolicy", PolicyId=pid)
    assert json.loads(p.PolicyDocument) == DOC and p.Description == ""
    call(cam, "DeletePolicy", PolicyId=[pid])
    call(cam, "DeleteUser", Name=u.Name)


def test_cam_and_tat_stay_apart(cam, client):
    # A TAT action under CAM's scope, and CAM's version with the wrong scope, are refused.
    with pytest.raises(Exception) as ei:
        cam.call_json("DescribeRegions", {})
    assert getattr(ei.value, "code", None) == "InvalidAction"
    saved = cam._apiVersion
    try:
        # The version chooses the API, whatever service the scope names:
        # under TAT's version, ListUsers is no action at all.
        cam._apiVersion = tat.API_VERSION
        with pytest.raises(Exception) as ei:
            cam.call_json("ListUsers", {})
        assert getattr(ei.value, "code", None) == "InvalidAction"
        cam._apiVersion = "2017-01-01"
        with pytest.raises(Exception) as ei:
            cam.call_json("ListUsers", {"Limit": 7})
        assert getattr(ei.value, "code", None) == "NoSuchVersion"
    finally:
        cam._apiVersion = saved
    assert tat.call(client, "DescribeRegions").TotalCount == 1


def test_tccli_cam(tccli, cam):
    # The profile README documents sets cam.endpoint beside tat.endpoint, so
    # `tccli cam ...` reaches the appliance with no per-call --endpoint.
    def run(action, *args):
        return tccli.run("cam", action, *args)

    uname = name("cli")
    out = run("AddUser", "--Name", uname, "--Remark", "from-tccli")
    assert out["Name"] == uname and out["Uin"] > 0
    assert uname in [u["Name"] for u in run("ListUsers")["Data"]]
    assert run("GetUser", "--Name", uname)["Remark"] == "from-tccli"
    # tccli opens a new connection per command: GetUser and DeleteUser of the
    # same name in one second would share a signature (README: "Signatures
    # and replays").
    tat.next_second()
    run("DeleteUser", "--Name", uname)
    assert uname not in user_names(cam)
