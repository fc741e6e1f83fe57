"""CreateCommand / ModifyCommand / DescribeCommands / DeleteCommand(s) /
PreviewReplacedCommandContent / InvokeCommand."""

import json

import pytest

from tat import (ID_RE, TIME_RE, b64, call, describe_invocation, expect_call_error, total_commands,
                 unb64, uniq, wait_invocation, wait_tasks)

# errorcodes.py: LackOfParameterInfo "parameters enabled but parameter info missing",
# LackOfParameters "Parameters not provided"; the spec does not say which applies.
LACK = {"InvalidParameterValue.LackOfParameters", "InvalidParameterValue.LackOfParameterInfo"}
PARAM_OFF = {"InvalidParameterValue.SupportParametersOnlyIfEnableParameter",
             "InvalidParameterValue.ParameterDisabled"}


def create(client, **fields):
    fields.setdefault("CommandName", uniq("cmd"))
    fields.setdefault("Content", b64("echo hi"))
    return call(client, "CreateCommand", **fields).CommandId


def describe_one(client, cmd_id):
    rsp = call(client, "DescribeCommands", CommandIds=[cmd_id])
    assert rsp.TotalCount == 1
    return rsp.CommandSet[0]


def test_create_command_defaults(client):
    name = uniq("defaults")
    cid = create(client, CommandName=name, Content=b64("echo defaults"))
    assert ID_RE["cmd"].match(cid), cid
    c = describe_one(client, cid)
    assert c.CommandId == cid
    assert c.CommandName == name
    assert unb64(c.Content) == b"echo defaults"
    assert c.CommandType == "SHELL"
    assert c.Timeout == 60
    assert c.WorkingDirectory == "/root"
    assert c.EnableParameter is False
    assert c.CreatedBy == "USER"
    assert c.Description == ""
    assert TIME_RE.match(c.CreatedTime) and TIME_RE.match(c.UpdatedTime)


def test_create_command_all_fields(client):
    name = uniq("full")
    confs = [{"ParameterName": "a", "ParameterValue": "1", "ParameterDescription": "first"},
             {"ParameterName": "b", "ParameterValue": "2", "ParameterDescription": "second"}]
    cid = create(client, CommandName=name, Content=b64("echo {{a}} {{b}}"), Description="desc",
                 CommandType="SHELL", WorkingDirectory="/tmp", Timeout=120, EnableParameter=True,
                 DefaultParameterConfs=confs, Username="nobody")
    c = describe_one(client, cid)
    assert (c.Description, c.WorkingDirectory, c.Timeout, c.Username) == ("desc", "/tmp", 120, "nobody")
    assert c.EnableParameter is True
    got = [(p.ParameterName, p.ParameterValue, p.ParameterDescription) for p in c.DefaultParameterConfs]
    assert got == [("a", "1", "first"), ("b", "2", "second")]


def test_create_command_default_parameters(client):
    cid = create(client, Content=b64("echo {{x}}"), EnableParameter=True,
                 DefaultParameters=json.dumps({"x": "1"}))
    c = describe_one(client, cid)
    assert json.loads(c.DefaultParameters) == {"x": "1"}


def test_create_command_python_type(client):
    cid = create(client, Content=b64("print(1)"), CommandType="PYTHON")
    assert describe_one(client, cid).CommandType == "PYTHON"


@pytest.fixture(scope="module")
def five_commands(client):
    tag = uniq("page")
    ids = [create(client, CommandName="%s-%d" % (tag, i), Content=b64("echo %d" % i)) for i in range(5)]
    return ids


def test_describe_commands_filter_command_id_and_paging(client, five_commands):
    flt = [{"Name": "command-id", "Values": five_commands}]
    rsp = call(client, "DescribeCommands", Filters=flt)
    assert rsp.TotalCount == 5
    assert sorted(c.CommandId for c in rsp.CommandSet) == sorted(five_commands)
    seen = []
    for off in (0, 2, 4):
        page = call(client, "DescribeCommands", Filters=flt, Limit=2, Offset=off)
        assert page.TotalCount == 5
        assert len(page.CommandSet) == (1 if off == 4 else 2)
        seen += [c.CommandId for c in page.CommandSet]
    assert sorted(seen) == sorted(five_commands), "pages must not overlap"
    page = call(client, "DescribeCommands", Filters=flt, Limit=2, Offset=10)
    assert page.TotalCount == 5 and not page.CommandSet


def test_describe_commands_by_ids_paging(client, five_commands):
    rsp = call(client, "DescribeCommands", CommandIds=five_commands, Limit=3)
    assert rsp.TotalCount == 5 and len(rsp.CommandSet) == 3


def test_describe_commands_default_limit_20(client):
    for _ in range(max(0, 21 - total_commands(client))):
        create(client)
    rsp = call(client, "DescribeCommands")
    assert rsp.TotalCount >= 21
    assert len(rsp.CommandSet) == 20


def test_describe_commands_filter_name(client, five_commands):
    name = describe_one(client, five_commands[2]).CommandName
    rsp = call(client, "DescribeCommands", Filters=[{"Name": "command-name", "Values": [name]}])
    assert five_commands[2] in [c.CommandId for c in rsp.CommandSet]
    assert all(name in c.CommandName for c in rsp.CommandSet)


def test_describe_commands_filter_type(client):
    cid = create(client, CommandType="PYTHON", Content=b64("print(2)"))
    rsp = call(client, "DescribeCommands", Filters=[{"Name": "command-type", "Values": ["PYTHON"]}], Limit=100)
    assert cid in [c.CommandId for c in rsp.CommandSet]
    assert all(c.CommandType == "PYTHON" for c in rsp.CommandSet)
    rsp = call(client, "DescribeCommands", Filters=[{"Name": "command-type", "Values": ["POWERSHELL"]}])
    assert cid not in [c.CommandId for c in rsp.CommandSet]


def test_describe_commands_filter_created_by(client, five_commands):
    user = call(client, "DescribeCommands", Filters=[{"Name": "created-by", "Values": ["USER"]}], Limit=100)
    assert all(c.CreatedBy == "USER" for c in user.CommandSet)
    assert set(five_commands) <= {c.CommandId for c in user.CommandSet} or user.TotalCount > 100
    pub = call(client, "DescribeCommands", Filters=[{"Name": "created-by", "Values": ["TAT"]}], Limit=100)
    assert all(c.CreatedBy == "TAT" for c in pub.CommandSet)
    assert user.TotalCount + pub.TotalCount == total_commands(client)


def test_describe_commands_combined_filters_and(client, five_commands):
    rsp = call(client, "DescribeCommands", Filters=[
        {"Name": "command-id", "Values": five_commands[:2]},
        {"Name": "command-type", "Values": ["SHELL"]}])
    assert rsp.TotalCount == 2


def test_describe_commands_errors(client, five_commands):
    expect_call_error("InvalidParameter.ConflictParameter", client, "DescribeCommands",
                      CommandIds=five_commands[:1], Filters=[{"Name": "command-type", "Values": ["SHELL"]}])
    expect_call_error({"InvalidParameterValue.InvalidFilter", "InvalidFilter"}, client, "DescribeCommands",
                      Filters=[{"Name": "no-such-filter", "Values": ["x"]}])
    expect_call_error("LimitExceeded.FilterValueExceeded", client, "DescribeCommands",
                      Filters=[{"Name": "command-id", "Values": five_commands + ["cmd-00000000"]}])
    expect_call_error("InvalidParameterValue.InvalidCommandId", client, "DescribeCommands",
                      CommandIds=["bogus"])


def test_modify_command(client):
    cid = create(client, Content=b64("echo old"), Timeout=30)
    before = describe_one(client, cid)
    new_name = uniq("renamed")
    call(client, "ModifyCommand", CommandId=cid, CommandName=new_name, Description="new desc",
         Content=b64("echo new"), Timeout=90, WorkingDirectory="/tmp", Username="nobody")
    c = describe_one(client, cid)
    assert c.CommandName == new_name
    assert c.Description == "new desc"
    assert unb64(c.Content) == b"echo new"
    assert (c.Timeout, c.WorkingDirectory, c.Username) == (90, "/tmp", "nobody")
    assert c.CreatedTime == before.CreatedTime
    assert c.UpdatedTime >= before.UpdatedTime
    # Only given fields change.
    call(client, "ModifyCommand", CommandId=cid, Description="only desc")
    c2 = describe_one(client, cid)
    assert (c2.CommandName, c2.Timeout, c2.Description) == (new_name, 90, "only desc")


def test_modify_command_default_parameters(client):
    cid = create(client, Content=b64("echo {{a}}"), EnableParameter=True,
                 DefaultParameters=json.dumps({"a": "1"}))
    call(client, "ModifyCommand", CommandId=cid, DefaultParameters=json.dumps({"a": "2", "b": "3"}))
    assert json.loads(describe_one(client, cid).DefaultParameters) == {"a": "2", "b": "3"}


def test_modify_command_errors_change_nothing(client):
    cid = create(client, Content=b64("echo keep"))
    before = describe_one(client, cid).to_json_string()
    expect_call_error(PARAM_OFF, client, "ModifyCommand", CommandId=cid,
                      DefaultParameters=json.dumps({"a": "1"}))
    expect_call_error({"InvalidParameterValue.Range", "InvalidParameterValue.TooSmall",
                       "InvalidParameterValue"}, client, "ModifyCommand", CommandId=cid, Timeout=0)
    expect_call_error({"InvalidParameterValue.InvalidContent", "InvalidParameterValue.CommandContentInvalid"},
                      client, "ModifyCommand", CommandId=cid, Content="!!!not base64!!!")
    expect_call_error("ResourceNotFound.CommandNotFound", client, "ModifyCommand",
                      CommandId="cmd-zzzzzzz0", Description="x")
    expect_call_error("InvalidParameterValue.InvalidCommandId", client, "ModifyCommand",
                      CommandId="cmd-BAD", Description="x")
    expect_call_error("MissingParameter", client, "ModifyCommand", Description="x")
    assert describe_one(client, cid).to_json_string() == before


def test_command_name_duplicated(client):
    name = uniq("dup")
    create(client, CommandName=name)
    before = total_commands(client)
    expect_call_error("InvalidParameterValue.CommandNameDuplicated", client, "CreateCommand",
                      CommandName=name, Content=b64("echo x"))
    assert total_commands(client) == before


def test_delete_command(client):
    cid = create(client)
    before = total_commands(client)
    call(client, "DeleteCommand", CommandId=cid)
    assert total_commands(client) == before - 1
    rsp = call(client, "DescribeCommands", Filters=[{"Name": "command-id", "Values": [cid]}])
    assert rsp.TotalCount == 0
    expect_call_error("ResourceNotFound.CommandNotFound", client, "DeleteCommand", CommandId=cid)
    expect_call_error("InvalidParameterValue.InvalidCommandId", client, "DeleteCommand", CommandId="nope")
    expect_call_error("MissingParameter", client, "DeleteCommand")


def test_delete_commands(client):
    ids = [create(client) for _ in range(3)]
    before = total_commands(client)
    # One unknown id: the whole request fails and nothing is deleted.
    expect_call_error("ResourceNotFound.CommandNotFound", client, "DeleteCommands",
                      CommandIds=ids + ["cmd-zzzzzzz1"])
    assert total_commands(client) == before
    expect_call_error("InvalidParameterValue.InvalidCommandId", client, "DeleteCommands",
                      CommandIds=ids[:1] + ["BAD"])
    assert total_commands(client) == before
    call(client, "DeleteCommands", CommandIds=ids[:2])
    assert total_commands(client) == before - 2
    left = call(client, "DescribeCommands", Filters=[{"Name": "command-id", "Values": ids}])
    assert [c.CommandId for c in left.CommandSet] == [ids[2]]


def test_preview_replaced_command_content(client):
    cid = create(client, Content=b64("echo {{a}} {{b}}"), EnableParameter=True,
                 DefaultParameters=json.dumps({"a": "A", "b": "B"}))
    rsp = call(client, "PreviewReplacedCommandContent", CommandId=cid)
    assert unb64(rsp.ReplacedContent) == b"echo A B"
    rsp = call(client, "PreviewReplacedCommandContent", CommandId=cid, Parameters=json.dumps({"b": "x"}))
    assert unb64(rsp.ReplacedContent) == b"echo A x"
    rsp = call(client, "PreviewReplacedCommandContent", Content=b64("ls {{dir}}"),
               Parameters=json.dumps({"dir": "/etc"}))
    assert unb64(rsp.ReplacedContent) == b"ls /etc"


def test_preview_errors(client):
    cid = create(client, Content=b64("echo {{a}}"), EnableParameter=True, DefaultParameters='{"a": "1"}')
    expect_call_error({"InvalidParameter.ConflictParameter", "InvalidParameterValue"}, client,
                      "PreviewReplacedCommandContent", CommandId=cid, Content=b64("echo"))
    expect_call_error({"MissingParameter", "InvalidParameter.ConflictParameter"}, client,
                      "PreviewReplacedCommandContent", Parameters='{"a": "1"}')
    expect_call_error("ResourceNotFound.CommandNotFound", client, "PreviewReplacedCommandContent",
                      CommandId="cmd-zzzzzzz2")
    expect_call_error("InvalidParameterValue.ParameterInvalidJsonFormat", client,
                      "PreviewReplacedCommandContent", CommandId=cid, Parameters="{not json")


def test_invoke_command(client, instance_ids):
    cid = create(client, Content=b64("echo {{word}}"), EnableParameter=True,
                 DefaultParameters=json.dumps({"word": "default"}))
    rsp = call(client, "InvokeCommand", CommandId=cid, InstanceIds=instance_ids)
    assert ID_RE["inv"].match(rsp.InvocationId)
    inv = wait_invocation(client, rsp.InvocationId)
    assert inv.InvocationStatus == "SUCCESS"
    assert inv.CommandId == cid
    ts = wait_tasks(client, rsp.InvocationId)
    assert sorted(t.InstanceId for t in ts) == instance_ids
    assert all(unb64(t.TaskResult.Output) == b"default\n" for t in ts)
    # Parameters override; Timeout/WorkingDirectory/Username overrides are recorded.
    rsp = call(client, "InvokeCommand", CommandId=cid, InstanceIds=instance_ids[:1],
               Parameters=json.dumps({"word": "override"}), WorkingDirectory="/tmp", Timeout=33,
               Username="root")
    inv = wait_invocation(client, rsp.InvocationId)
    assert (inv.WorkingDirectory, inv.Timeout, inv.Username) == ("/tmp", 33, "root")
    ts = wait_tasks(client, rsp.InvocationId)
    assert unb64(ts[0].TaskResult.Output) == b"override\n"
    assert ts[0].CommandDocument.Timeout == 33


def test_invoke_command_errors(client, instance_ids):
    plain = create(client, Content=b64("echo plain"))
    param = create(client, Content=b64("echo {{need}}"), EnableParameter=True)
    before = call(client, "DescribeInvocations", Limit=1).TotalCount
    expect_call_error(PARAM_OFF, client, "InvokeCommand", CommandId=plain, InstanceIds=instance_ids,
                      Parameters='{"a": "b"}')
    expect_call_error(LACK, client, "InvokeCommand", CommandId=param,
                      InstanceIds=instance_ids)
    expect_call_error("ResourceNotFound.CommandNotFound", client, "InvokeCommand", CommandId="cmd-zzzzzzz3",
                      InstanceIds=instance_ids)
    expect_call_error("ResourceNotFound.InstanceNotFound", client, "InvokeCommand", CommandId=plain,
                      InstanceIds=["mi-zzzzzzz9"])
    expect_call_error("InvalidParameterValue.InvalidInstanceId", client, "InvokeCommand", CommandId=plain,
                      InstanceIds=["not-an-instance"])
    expect_call_error("MissingParameter", client, "InvokeCommand", CommandId=plain)
    expect_call_error({"InvalidParameterValue.Range", "InvalidParameterValue.TooLarge", "InvalidParameterValue"},
                      client, "InvokeCommand", CommandId=plain, InstanceIds=instance_ids, Timeout=86401)
    assert call(client, "DescribeInvocations", Limit=1).TotalCount == before
