"""Role assignments and the policy simulator (drover extensions), driven
with the official SDKs' generic call_json by real sub-users."""

import json

from tat import b64, expect_error, uniq
from test_cam import add_user, call, make_cam_client


def ext(client, action, **params):
    return client.call_json(action, params)["Response"]


def test_a_role_grants_exactly_its_actions_until_removed(server, client, instance_ids):
    cam = make_cam_client(server)
    u = add_user(cam, UseApi=1)
    sub = server.client(u.SecretId, u.SecretKey)
    # With no grant at all for a list action, the list is refused (not an
    # empty success), so "why do I see nothing?" has an answer.
    expect_error("AuthFailure.UnauthorizedOperation", sub.call_json, "DescribeCommands", {})
    expect_error("AuthFailure.UnauthorizedOperation", sub.call_json, "DescribeRegions", {})

    ra = ext(client, "CreateRoleAssignment", PrincipalType="User", PrincipalId=str(u.Uin),
             RoleName="reader", Scope="account")["RoleAssignmentId"]
    again = ext(client, "CreateRoleAssignment", PrincipalType="User", PrincipalId=str(u.Uin),
                RoleName="Reader")["RoleAssignmentId"]
    assert again == ra, "the same assignment twice is one assignment"
    listed = ext(client, "ListRoleAssignments", PrincipalType="User", PrincipalId=str(u.Uin))
    assert listed["TotalCount"] == 1
    assert listed["RoleAssignmentSet"][0]["RoleName"] == "Reader"

    assert ext(sub, "DescribeCommands")["TotalCount"] == ext(client, "DescribeCommands")["TotalCount"]
    before = ext(client, "DescribeInvocations")["TotalCount"]
    err = expect_error("AuthFailure.UnauthorizedOperation", sub.call_json, "RunCommand",
                       {"Content": b64("true"), "InstanceIds": instance_ids[:1]})
    assert "tat:RunCommand" in err.message
    assert ext(client, "DescribeInvocations")["TotalCount"] == before

    sim = ext(client, "SimulatePrincipalPolicy", PrincipalId=str(u.Uin), Action="DescribeCommands")
    assert sim["Allowed"] is True
    assert sim["DecidingStatements"] and "Reader" in sim["DecidingStatements"][0]["PolicyName"]
    sim = ext(client, "SimulatePrincipalPolicy", PrincipalId=str(u.Uin), Action="tat:RunCommand",
              Resources=instance_ids[:1])
    assert sim["Allowed"] is False and sim["Reason"] == "ImplicitDeny"

    ext(client, "DeleteRoleAssignment", RoleAssignmentId=ra)
    expect_error("AuthFailure.UnauthorizedOperation", sub.call_json, "DescribeRegions", {})
    expect_error("ResourceNotFound.RoleAssignmentNotFound", client.call_json, "DeleteRoleAssignment",
                 {"RoleAssignmentId": ra})


def test_bad_assignments_are_refused(server, client):
    uin = str(add_user(make_cam_client(server)).Uin)
    expect_error("ResourceNotFound.RoleNotFound", client.call_json, "CreateRoleAssignment",
                 {"PrincipalType": "User", "PrincipalId": "1", "RoleName": "Emperor"})
    expect_error("ResourceNotFound.UserNotExist", client.call_json, "CreateRoleAssignment",
                 {"PrincipalType": "User", "PrincipalId": "999999999999", "RoleName": "Reader"})
    expect_error("InvalidParameterValue", client.call_json, "CreateRoleAssignment",
                 {"PrincipalType": "Robot", "PrincipalId": "1", "RoleName": "Reader"})
    expect_error("ResourceNotFound.CommandNotFound", client.call_json, "CreateRoleAssignment",
                 {"PrincipalType": "User", "PrincipalId": uin, "RoleName": "Reader", "Scope": "cmd-zzzzzzzz"})
    expect_error("InvalidParameterValue", client.call_json, "CreateRoleAssignment",
                 {"PrincipalType": "User", "PrincipalId": uin, "RoleName": "Reader", "Scope": "everything"})
    assert ext(client, "ListRoleAssignments", PrincipalId=uin)["TotalCount"] == 0


def test_explicit_deny_is_explained_and_audited(server, client):
    cam = make_cam_client(server)
    u = add_user(cam, UseApi=1)
    doc = {"version": "2.0", "statement": [
        {"effect": "allow", "action": ["tat:*"], "resource": "*"},
        {"effect": "deny", "action": ["tat:CreateRegisterCode"], "resource": "*"},
    ]}
    pid = call(cam, "CreatePolicy", PolicyName=uniq("deny").replace("-", "_"),
               PolicyDocument=json.dumps(doc)).PolicyId
    call(cam, "AttachUserPolicy", PolicyId=pid, AttachUin=u.Uin)
    sub = server.client(u.SecretId, u.SecretKey)
    err = expect_error("AuthFailure.UnauthorizedOperation", sub.call_json, "CreateRegisterCode", {})
    sim = ext(client, "SimulatePrincipalPolicy", PrincipalId=str(u.Uin), Action="CreateRegisterCode")
    assert sim["Allowed"] is False and sim["Reason"] == "ExplicitDeny"
    assert sim["DecidingStatements"] == [{"PolicyId": str(pid), "PolicyName": sim["DecidingStatements"][0]["PolicyName"],
                                         "StatementIndex": 1}]
    events = ext(client, "DescribeAuditEvents", Filters=[
        {"Name": "principal", "Values": [str(u.Uin)]}, {"Name": "decision", "Values": ["deny"]}])
    assert events["TotalCount"] >= 1
    assert "statement[1]" in events["AuditEventSet"][0]["DecidingStatement"]
    assert err.message.startswith("you are not authorized to perform tat:CreateRegisterCode")


def test_request_tag_condition_governs_what_may_be_created(server, client):
    cam = make_cam_client(server)
    u = add_user(cam, UseApi=1)
    doc = {"version": "2.0", "statement": [{
        "effect": "allow", "action": ["tat:CreateCommand"], "resource": "*",
        "condition": {"string_equal": {"qcs:request_tag": ["team&ops"]}},
    }]}
    pid = call(cam, "CreatePolicy", PolicyName=uniq("tags").replace("-", "_"),
               PolicyDocument=json.dumps(doc)).PolicyId
    call(cam, "AttachUserPolicy", PolicyId=pid, AttachUin=u.Uin)
    sub = server.client(u.SecretId, u.SecretKey)
    before = ext(client, "DescribeCommands")["TotalCount"]
    expect_error("AuthFailure.UnauthorizedOperation", sub.call_json, "CreateCommand",
                 {"CommandName": uniq("c"), "Content": b64("true"), "Tags": [{"Key": "team", "Value": "dev"}]})
    assert ext(client, "DescribeCommands")["TotalCount"] == before
    made = ext(sub, "CreateCommand", CommandName=uniq("c"), Content=b64("true"),
               Tags=[{"Key": "team", "Value": "ops"}])
    assert made["CommandId"].startswith("cmd-")


def test_an_operator_sees_invocations_but_never_the_script(server, client, instance_ids):
    cam = make_cam_client(server)
    u = add_user(cam, UseApi=1)
    ext(client, "CreateRoleAssignment", PrincipalType="User", PrincipalId=str(u.Uin),
        RoleName="Automation Operator")
    sub = server.client(u.SecretId, u.SecretKey)
    secret_script = b64("echo operator-must-not-read-this")
    cmd = ext(client, "CreateCommand", CommandName=uniq("op"), Content=secret_script)["CommandId"]
    inv = ext(sub, "InvokeCommand", CommandId=cmd, InstanceIds=instance_ids[:1])["InvocationId"]
    seen = json.dumps([
        ext(sub, "DescribeCommands", CommandIds=[cmd]),
        ext(sub, "DescribeInvocations", InvocationIds=[inv]),
        ext(sub, "DescribeInvocationTasks", Filters=[{"Name": "invocation-id", "Values": [inv]}]),
    ])
    assert inv in seen and cmd in seen
    assert secret_script not in seen
    # The account itself still reads it.
    assert ext(client, "DescribeInvocations", InvocationIds=[inv])["InvocationSet"][0]["CommandContent"] == secret_script
