"""Authentication and request validation. Every failing request must leave
state unchanged."""

import json
import time

import pytest

import tat
from tat import (b64, call, expect_call_error, expect_error, raw_call, total_commands, total_invocations,
                 uniq)

# errorcodes.py: LackOfParameterInfo "parameters enabled but parameter info missing",
# LackOfParameters "Parameters not provided"; the spec does not say which applies.
LACK = {"InvalidParameterValue.LackOfParameters", "InvalidParameterValue.LackOfParameterInfo"}
RANGE = {"InvalidParameterValue", "InvalidParameterValue.Range", "InvalidParameterValue.TooSmall",
         "InvalidParameterValue.TooLarge"}
LIMIT = {"InvalidParameterValue", "InvalidParameterValue.Range", "InvalidParameterValue.LimitExceeded",
         "InvalidParameterValue.TooLarge"}


# --- authentication ---------------------------------------------------------

def test_wrong_secret_key(server, client):
    bad = server.client(secret_key=server.secret_key[:-1] + ("A" if server.secret_key[-1] != "A" else "B"))
    before = total_commands(client)
    expect_call_error("AuthFailure.SignatureFailure", bad, "CreateCommand",
                      CommandName=uniq("auth"), Content=b64("true"))
    assert total_commands(client) == before


def test_unknown_secret_id(server):
    bad = server.client(secret_id="AKIDnotarealkey0000000000000000000", secret_key="x" * 32)
    expect_call_error("AuthFailure.SecretIdNotFound", bad, "DescribeRegions")


def test_hand_signed_request_works(server):
    r = raw_call(server, "DescribeRegions", "{}")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json", (
        "the SDK only raises errors when Content-Type is exactly application/json")
    body = r.json()["Response"]
    assert "Error" not in body and body["RequestId"]


def test_timestamp_ten_minutes_old(server, client):
    before = total_commands(client)
    payload = json.dumps({"CommandName": uniq("old"), "Content": b64("true")})
    r = raw_call(server, "CreateCommand", payload, timestamp=int(time.time()) - 600)
    assert r.status_code == 200
    assert r.json()["Response"]["Error"]["Code"] == "AuthFailure.SignatureExpire"
    r = raw_call(server, "CreateCommand", payload, timestamp=int(time.time()) + 600)
    assert r.json()["Response"]["Error"]["Code"] == "AuthFailure.SignatureExpire"
    assert total_commands(client) == before


def test_tampered_body_fails_signature(server):
    import requests
    from tat import tc3_headers
    headers = tc3_headers(server.secret_id, server.secret_key, server.addr, "DescribeRegions", "{}")
    r = requests.post(server.url + "/", data=b'{"X": 1}', headers=headers, verify=server.cert, timeout=30)
    assert r.json()["Response"]["Error"]["Code"] == "AuthFailure.SignatureFailure"


def test_missing_authorization(server):
    import requests
    r = requests.post(server.url + "/", data=b"{}", verify=server.cert, timeout=30,
                      headers={"Content-Type": "application/json", "X-TC-Action": "DescribeRegions",
                               "X-TC-Version": "2020-10-28", "X-TC-Timestamp": str(int(time.time()))})
    code = r.json()["Response"]["Error"]["Code"]
    assert code.startswith("AuthFailure"), code


def test_bad_json_body(server):
    r = raw_call(server, "DescribeCommands", "{not json")
    assert r.json()["Response"]["Error"]["Code"] == "InvalidParameter"


def test_invalid_action(client):
    tat.next_second()
    expect_error("InvalidAction", client.call_json, "NoSuchAction", {})


# --- parameter validation ---------------------------------------------------

def test_missing_required_parameters(client, instance_ids):
    tat.next_second()
    cmds, invs = total_commands(client), total_invocations(client)
    expect_call_error("MissingParameter", client, "CreateCommand", Content=b64("true"))
    expect_call_error("MissingParameter", client, "CreateCommand", CommandName=uniq("m"))
    expect_call_error("MissingParameter", client, "RunCommand", Content=b64("true"))
    expect_call_error("MissingParameter", client, "RunCommand", InstanceIds=instance_ids)
    expect_call_error("MissingParameter", client, "InvokeCommand", InstanceIds=instance_ids)
    expect_call_error("MissingParameter", client, "DeleteCommands")
    assert (total_commands(client), total_invocations(client)) == (cmds, invs)


def test_unknown_parameter(client, instance_ids):
    cmds, invs = total_commands(client), total_invocations(client)
    expect_error("UnknownParameter", client.call_json, "CreateCommand",
                 {"CommandName": uniq("u"), "Content": b64("true"), "Bogus": 1})
    expect_error("UnknownParameter", client.call_json, "RunCommand",
                 {"Content": b64("true"), "InstanceIds": instance_ids, "NotAField": "x"})
    expect_error("UnknownParameter", client.call_json, "DescribeRegions", {"Extra": True})
    # EnableParameter cannot be modified after creation: ModifyCommand has no such field.
    cid = call(client, "CreateCommand", CommandName=uniq("u"), Content=b64("true")).CommandId
    cmds += 1
    expect_error("UnknownParameter", client.call_json, "ModifyCommand", {"CommandId": cid, "EnableParameter": True})
    assert call(client, "DescribeCommands", CommandIds=[cid]).CommandSet[0].EnableParameter is False
    assert (total_commands(client), total_invocations(client)) == (cmds, invs)


def test_wrong_types(client, instance_ids):
    cmds = total_commands(client)
    expect_error("InvalidParameter", client.call_json, "CreateCommand",
                 {"CommandName": uniq("t"), "Content": b64("true"), "Timeout": "sixty"})
    expect_error("InvalidParameter", client.call_json, "RunCommand",
                 {"Content": b64("true"), "InstanceIds": instance_ids[0]})
    expect_error("InvalidParameter", client.call_json, "DescribeCommands", {"Limit": "ten"})
    assert total_commands(client) == cmds


def test_timeout_out_of_range(client, instance_ids):
    cmds, invs = total_commands(client), total_invocations(client)
    for t in (0, 86401):
        expect_call_error(RANGE, client, "CreateCommand", CommandName=uniq("to"), Content=b64("true"), Timeout=t)
        expect_call_error(RANGE, client, "RunCommand", Content=b64("true"), InstanceIds=instance_ids, Timeout=t)
    assert (total_commands(client), total_invocations(client)) == (cmds, invs)
    # The bounds themselves are accepted.
    for t in (1, 86400):
        cid = call(client, "CreateCommand", CommandName=uniq("tb"), Content=b64("true"), Timeout=t).CommandId
        call(client, "DeleteCommand", CommandId=cid)


def test_content_not_base64(client, instance_ids):
    cmds, invs = total_commands(client), total_invocations(client)
    codes = {"InvalidParameterValue.InvalidContent", "InvalidParameterValue.CommandContentInvalid"}
    expect_call_error(codes, client, "CreateCommand", CommandName=uniq("c"), Content="@@@ not base64 @@@")
    expect_call_error(codes, client, "RunCommand", Content="@@@", InstanceIds=instance_ids)
    expect_call_error(codes, client, "CreateCommand", CommandName=uniq("c"), Content="")
    assert (total_commands(client), total_invocations(client)) == (cmds, invs)


def test_content_over_64k(client, instance_ids):
    cmds, invs = total_commands(client), total_invocations(client)
    big = b64("#" * 49200)  # 65600 base64 chars > 64 KiB
    assert len(big) > 64 * 1024
    codes = {"InvalidParameterValue.TooLong", "InvalidParameterValue.TooLarge",
             "InvalidParameterValue.CommandContentInvalid", "InvalidParameterValue.InvalidContent"}
    expect_call_error(codes, client, "CreateCommand", CommandName=uniq("big"), Content=big)
    expect_call_error(codes, client, "RunCommand", Content=big, InstanceIds=instance_ids)
    assert (total_commands(client), total_invocations(client)) == (cmds, invs)
    ok = b64("#" * 49000)
    assert len(ok) <= 64 * 1024
    cid = call(client, "CreateCommand", CommandName=uniq("big-ok"), Content=ok).CommandId
    call(client, "DeleteCommand", CommandId=cid)


def test_invalid_command_name_and_type(client):
    cmds = total_commands(client)
    expect_call_error("InvalidParameterValue.InvalidCommandName", client, "CreateCommand",
                      CommandName="bad name!", Content=b64("true"))
    expect_call_error({"InvalidParameterValue.InvalidCommandName", "InvalidParameterValue.TooLong"}, client,
                      "CreateCommand", CommandName="n" * 61, Content=b64("true"))
    expect_call_error({"InvalidParameterValue", "InvalidParameterValue.Range"}, client, "CreateCommand",
                      CommandName=uniq("ty"), Content=b64("true"), CommandType="ZSH")
    expect_call_error({"InvalidParameterValue.TooLong", "InvalidParameterValue"}, client, "CreateCommand",
                      CommandName=uniq("d"), Content=b64("true"), Description="d" * 121)
    assert total_commands(client) == cmds


def test_parameter_validation(client, instance_ids):
    cmds, invs = total_commands(client), total_invocations(client)
    base = {"CommandName": uniq("p"), "Content": b64("echo {{a}}")}
    expect_call_error({"InvalidParameterValue.SupportParametersOnlyIfEnableParameter",
                       "InvalidParameterValue.ParameterDisabled"}, client, "CreateCommand",
                      DefaultParameters='{"a": "1"}', **base)
    expect_call_error("InvalidParameterValue.ParameterInvalidJsonFormat", client, "CreateCommand",
                      EnableParameter=True, DefaultParameters="{oops", **base)
    expect_call_error("InvalidParameterValue.ParameterValueNotString", client, "CreateCommand",
                      EnableParameter=True, DefaultParameters='{"a": 1}', **base)
    expect_call_error("InvalidParameterValue.ParameterKeyContainsInvalidChar", client, "CreateCommand",
                      EnableParameter=True, DefaultParameters='{"a b": "1"}', **base)
    expect_call_error("InvalidParameterValue.ParameterKeyLenExceeded", client, "CreateCommand",
                      EnableParameter=True, DefaultParameters=json.dumps({"k" * 65: "1"}), **base)
    expect_call_error("InvalidParameterValue.ParameterNumberExceeded", client, "CreateCommand",
                      EnableParameter=True, DefaultParameters=json.dumps({"k%d" % i: "v" for i in range(21)}), **base)
    expect_call_error("InvalidParameter.ConflictParameter", client, "CreateCommand", EnableParameter=True,
                      DefaultParameters='{"a": "1"}',
                      DefaultParameterConfs=[{"ParameterName": "a", "ParameterValue": "1"}], **base)
    expect_call_error({"InvalidParameterValue.ParameterKeyDuplicated", "InvalidParameter.ParameterNameDuplicated"},
                      client, "CreateCommand", EnableParameter=True,
                      DefaultParameterConfs=[{"ParameterName": "a", "ParameterValue": "1"},
                                             {"ParameterName": "a", "ParameterValue": "2"}], **base)
    expect_call_error(LACK, client, "RunCommand", Content=b64("echo {{a}}"),
                      InstanceIds=instance_ids, EnableParameter=True)
    expect_call_error({"InvalidParameterValue.SupportParametersOnlyIfEnableParameter",
                       "InvalidParameterValue.ParameterDisabled"}, client, "RunCommand",
                      Content=b64("echo {{a}}"), InstanceIds=instance_ids, Parameters='{"a": "1"}')
    assert (total_commands(client), total_invocations(client)) == (cmds, invs)


def test_malformed_and_unknown_ids(client, instance_ids):
    cmds, invs = total_commands(client), total_invocations(client)
    expect_call_error("InvalidParameterValue.InvalidCommandId", client, "DeleteCommand", CommandId="cmd-12")
    expect_call_error("ResourceNotFound.CommandNotFound", client, "DeleteCommand", CommandId="cmd-00000000")
    expect_call_error("InvalidParameterValue.InvalidInvocationId", client, "DescribeInvocations",
                      InvocationIds=["inv_123"])
    got = call(client, "DescribeInvocations", InvocationIds=["inv-00000000"])
    assert got.TotalCount == 0
    expect_call_error("InvalidParameterValue.InvalidInstanceId", client, "RunCommand", Content=b64("true"),
                      InstanceIds=["ins-???"])
    expect_call_error("ResourceNotFound.InstanceNotFound", client, "RunCommand", Content=b64("true"),
                      InstanceIds=["mi-00000000"])
    expect_call_error("ResourceNotFound.InstanceNotFound", client, "RunCommand", Content=b64("true"),
                      InstanceIds=[instance_ids[0], "mi-00000000"])
    expect_call_error("InvalidParameterValue.InvalidCommandId", client, "InvokeCommand", CommandId="c-1",
                      InstanceIds=instance_ids)
    assert (total_commands(client), total_invocations(client)) == (cmds, invs)


def test_limit_101(client):
    for action in ("DescribeCommands", "DescribeInvocations", "DescribeInvocationTasks",
                   "DescribeRegisterCodes", "DescribeRegisterInstances", "DescribeAutomationAgentStatus"):
        expect_call_error(LIMIT, client, action, Limit=101)
        assert call(client, action, Limit=100).TotalCount >= 0


def test_negative_offset(client):
    expect_call_error(RANGE | {"InvalidParameterValue.LimitExceeded"}, client, "DescribeCommands", Offset=-1)


def test_too_many_instances(client, instance_ids):
    invs = total_invocations(client)
    ids = ["mi-%08d" % i for i in range(201)]
    expect_call_error({"InvalidParameterValue.LimitExceeded", "InvalidParameterValue", "LimitExceeded",
                       "InvalidParameterValue.Range", "InvalidParameterValue.TooLarge"},
                      client, "RunCommand", Content=b64("true"), InstanceIds=ids)
    assert total_invocations(client) == invs


def test_agent_unsupported_command_type(client, instance_ids):
    invs = total_invocations(client)
    expect_call_error("InvalidParameterValue.AgentUnsupportedCommandType", client, "RunCommand",
                      Content=b64("Write-Host hi"), InstanceIds=instance_ids, CommandType="POWERSHELL")
    assert total_invocations(client) == invs
