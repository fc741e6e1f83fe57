"""RunCommand end to end on real agents, plus the output extension."""

import json

import pytest

from tat import (ID_RE, TIME_RE, b64, call, describe_invocation, expect_call_error, run,
                 tasks, total_commands, unb64, uniq, wait_invocation, wait_tasks)

OUTPUT_LIMIT = 24 * 1024


def only_task(ts):
    assert len(ts) == 1, [t.InvocationTaskId for t in ts]
    return ts[0]


def test_echo_hello_on_both_agents(client, instance_ids):
    rsp, inv, ts = run(client, instance_ids, "echo hello")
    assert ID_RE["inv"].match(rsp.InvocationId), rsp.InvocationId
    assert ID_RE["cmd"].match(rsp.CommandId), rsp.CommandId
    assert inv.InvocationStatus == "SUCCESS"
    assert inv.CommandId == rsp.CommandId
    assert inv.CommandType == "SHELL"
    assert inv.Timeout == 60
    assert inv.InvocationSource == "USER"
    assert unb64(inv.CommandContent) == b"echo hello"
    assert sorted(b.InstanceId for b in inv.InvocationTaskBasicInfoSet) == instance_ids
    assert all(b.TaskStatus == "SUCCESS" for b in inv.InvocationTaskBasicInfoSet)
    for field in ("CreatedTime", "UpdatedTime", "StartTime", "EndTime"):
        assert TIME_RE.match(getattr(inv, field) or ""), (field, getattr(inv, field))
    assert sorted(t.InstanceId for t in ts) == instance_ids
    for t in ts:
        assert ID_RE["invt"].match(t.InvocationTaskId)
        assert t.InvocationId == rsp.InvocationId
        assert t.CommandId == rsp.CommandId
        assert t.TaskStatus == "SUCCESS"
        assert t.TaskResult.ExitCode == 0
        assert unb64(t.TaskResult.Output) == b"hello\n"
        assert t.TaskResult.Dropped == 0
        assert TIME_RE.match(t.TaskResult.ExecStartTime or "")
        assert TIME_RE.match(t.TaskResult.ExecEndTime or "")
        assert TIME_RE.match(t.StartTime or "") and TIME_RE.match(t.EndTime or "")
        assert t.CommandDocument.CommandType == "SHELL"
        assert unb64(t.CommandDocument.Content) == b"echo hello"
        assert t.CommandDocument.Timeout == 60


def test_run_command_not_saved_by_default(client, one_instance):
    before = total_commands(client)
    rsp, inv, ts = run(client, [one_instance], "true")
    assert inv.InvocationStatus == "SUCCESS"
    assert total_commands(client) == before, "SaveCommand defaults to false"


def test_run_command_save_command(client, one_instance):
    name = uniq("saved")
    rsp, inv, ts = run(client, [one_instance], "echo saved", SaveCommand=True, CommandName=name,
                       Description="kept")
    assert inv.CommandName == name
    got = call(client, "DescribeCommands", CommandIds=[rsp.CommandId])
    assert got.TotalCount == 1
    cmd = got.CommandSet[0]
    assert cmd.CommandName == name and cmd.Description == "kept"
    assert unb64(cmd.Content) == b"echo saved"
    assert cmd.CreatedBy == "USER"
    call(client, "DeleteCommand", CommandId=rsp.CommandId)


def test_exit_code_3_is_failed(client, one_instance):
    rsp, inv, ts = run(client, [one_instance], "echo out; exit 3")
    assert inv.InvocationStatus == "FAILED"
    t = only_task(ts)
    assert t.TaskStatus == "FAILED"
    assert t.TaskResult.ExitCode == 3
    assert unb64(t.TaskResult.Output) == b"out\n"


def test_timeout_kills_command(client, one_instance):
    rsp, inv, ts = run(client, [one_instance], "sleep 30", Timeout=1, deadline_s=15)
    assert inv.Timeout == 1
    assert inv.InvocationStatus == "TIMEOUT"
    assert only_task(ts).TaskStatus == "TIMEOUT"


def test_working_directory(client, one_instance):
    rsp, inv, ts = run(client, [one_instance], "pwd", WorkingDirectory="/tmp")
    assert inv.WorkingDirectory == "/tmp"
    t = only_task(ts)
    assert t.TaskStatus == "SUCCESS"
    assert unb64(t.TaskResult.Output) == b"/tmp\n"
    assert t.CommandDocument.WorkingDirectory == "/tmp"


def test_default_working_directory_is_root(client, one_instance):
    rsp, inv, ts = run(client, [one_instance], "pwd")
    assert unb64(only_task(ts).TaskResult.Output) == b"/root\n"


def test_username_nobody(client, one_instance):
    rsp, inv, ts = run(client, [one_instance], "id -un", Username="nobody", WorkingDirectory="/tmp")
    assert inv.Username == "nobody"
    t = only_task(ts)
    assert t.TaskStatus == "SUCCESS", t.ErrorInfo
    assert unb64(t.TaskResult.Output) == b"nobody\n"
    assert t.CommandDocument.Username == "nobody"


def test_default_username_is_root(client, one_instance):
    rsp, inv, ts = run(client, [one_instance], "id -un")
    assert unb64(only_task(ts).TaskResult.Output) == b"root\n"


def test_python_command_type(client, one_instance):
    script = "import sys\nprint('py', sys.version_info[0])\n"
    rsp, inv, ts = run(client, [one_instance], script, CommandType="PYTHON")
    assert inv.CommandType == "PYTHON"
    t = only_task(ts)
    assert t.TaskStatus == "SUCCESS", t.ErrorInfo
    assert unb64(t.TaskResult.Output) == b"py 3\n"


def test_parameters_override_defaults(client, one_instance):
    rsp, inv, ts = run(client, [one_instance], "echo {{greet}} {{name}}", EnableParameter=True,
                       DefaultParameters=json.dumps({"greet": "hi", "name": "world"}),
                       Parameters=json.dumps({"name": "drover"}))
    t = only_task(ts)
    assert unb64(t.TaskResult.Output) == b"hi drover\n"
    assert json.loads(inv.Parameters) == {"name": "drover"}
    assert json.loads(inv.DefaultParameters) == {"greet": "hi", "name": "world"}


def test_default_parameters_used_when_no_parameters(client, one_instance):
    rsp, inv, ts = run(client, [one_instance], "echo {{greet}} {{name}}", EnableParameter=True,
                       DefaultParameters=json.dumps({"greet": "hi", "name": "world"}))
    assert unb64(only_task(ts).TaskResult.Output) == b"hi world\n"


def test_default_parameter_confs(client, one_instance):
    confs = [{"ParameterName": "who", "ParameterValue": "conf", "ParameterDescription": "d"}]
    rsp, inv, ts = run(client, [one_instance], "echo {{who}}", EnableParameter=True,
                       DefaultParameterConfs=confs)
    assert unb64(only_task(ts).TaskResult.Output) == b"conf\n"
    rsp, inv, ts = run(client, [one_instance], "echo {{who}}", EnableParameter=True,
                       DefaultParameterConfs=confs, Parameters=json.dumps({"who": "override"}))
    assert unb64(only_task(ts).TaskResult.Output) == b"override\n"


def test_hidden_parameters_masked(client, one_instance):
    rsp, inv, ts = run(client, [one_instance], "echo {{tat-hidden:pw}} {{user}}", EnableParameter=True,
                       Parameters=json.dumps({"pw": "s3cret", "user": "bob"}))
    t = only_task(ts)
    assert unb64(t.TaskResult.Output) == b"s3cret bob\n"
    inv = describe_invocation(client, rsp.InvocationId)
    assert json.loads(inv.Parameters) == {"pw": "******", "user": "bob"}
    assert "s3cret" not in inv.to_json_string()


def test_hide_output_defaults_true(client, one_instance):
    rsp, inv, ts = run(client, [one_instance], "echo secret-output")
    got = call(client, "DescribeInvocationTasks",
               Filters=[{"Name": "invocation-id", "Values": [rsp.InvocationId]}])
    assert got.TotalCount == 1
    assert not got.InvocationTaskSet[0].TaskResult.Output
    got = call(client, "DescribeInvocationTasks", InvocationTaskIds=[ts[0].InvocationTaskId],
               HideOutput=False)
    assert unb64(got.InvocationTaskSet[0].TaskResult.Output) == b"secret-output\n"


BIG = bytes(range(256)) * 400  # 102400 bytes, not valid UTF-8


@pytest.fixture(scope="module")
def big_task(client, one_instance):
    script = "import sys\nsys.stdout.buffer.write(bytes(range(256)) * 400)\nsys.stdout.flush()\n"
    rsp, inv, ts = run(client, [one_instance], script, CommandType="PYTHON", deadline_s=30)
    return only_task(ts)


def test_large_output_truncated_to_24k(big_task):
    assert big_task.TaskStatus == "SUCCESS", big_task.ErrorInfo
    out = unb64(big_task.TaskResult.Output)
    assert len(out) == OUTPUT_LIMIT
    assert out == BIG[:OUTPUT_LIMIT]
    assert big_task.TaskResult.Dropped == len(BIG) - OUTPUT_LIMIT


def test_task_output_full_byte_exact(client, big_task):
    got = client.call_json("DescribeInvocationTaskOutput", {"InvocationTaskId": big_task.InvocationTaskId})
    r = got["Response"]
    assert r["TotalSize"] == len(BIG)
    assert r["Offset"] == 0
    assert unb64(r["Output"]) == BIG


def test_task_output_paging(client, big_task):
    got = client.call_json("DescribeInvocationTaskOutput",
                           {"InvocationTaskId": big_task.InvocationTaskId, "Offset": 1000, "Limit": 5000})
    r = got["Response"]
    assert r["Offset"] == 1000 and r["TotalSize"] == len(BIG)
    assert unb64(r["Output"]) == BIG[1000:6000]
    got = client.call_json("DescribeInvocationTaskOutput",
                           {"InvocationTaskId": big_task.InvocationTaskId, "Offset": len(BIG) - 10})
    assert unb64(got["Response"]["Output"]) == BIG[-10:]


def test_task_output_errors(client, big_task):
    from tat import expect_error
    expect_error({"InvalidParameterValue", "InvalidParameterValue.Range", "InvalidParameterValue.TooLarge",
                  "InvalidParameterValue.LimitExceeded"},
                 client.call_json, "DescribeInvocationTaskOutput",
                 {"InvocationTaskId": big_task.InvocationTaskId, "Limit": 1024 * 1024 + 1})
    expect_error("InvalidParameterValue.InvalidInvocationTaskId", client.call_json,
                 "DescribeInvocationTaskOutput", {"InvocationTaskId": "not-a-task"})
    expect_error("MissingParameter", client.call_json, "DescribeInvocationTaskOutput", {})


def test_multiline_and_stderr_output(client, one_instance):
    rsp, inv, ts = run(client, [one_instance], "echo a\necho b 1>&2\necho c")
    out = unb64(only_task(ts).TaskResult.Output)
    assert sorted(out.splitlines()) == [b"a", b"b", b"c"]
