"""Register codes, registered (managed) instances and agent status."""

import datetime
import socket
import subprocess

import pytest

from conftest import start_agent, wait_online
from tat import (ID_RE, TIME_RE, call, expect_call_error, poll, uniq)


def parse_time(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)


def describe_code(client, code_id):
    rsp = call(client, "DescribeRegisterCodes", RegisterCodeIds=[code_id])
    assert rsp.TotalCount == 1, code_id
    return rsp.RegisterCodeSet[0]


def total_codes(client):
    return call(client, "DescribeRegisterCodes", Limit=100).TotalCount


def test_create_register_code_defaults(client):
    now = datetime.datetime.now(datetime.timezone.utc)
    rsp = call(client, "CreateRegisterCode")
    assert rsp.RegisterCodeId and rsp.RegisterCodeValue
    c = describe_code(client, rsp.RegisterCodeId)
    assert c.RegisterLimit == 10
    assert c.Enabled is True
    assert c.RegisteredCount == 0
    assert c.IpAddressRange == ""
    assert TIME_RE.match(c.CreatedTime) and TIME_RE.match(c.UpdatedTime) and TIME_RE.match(c.ExpiredTime)
    delta = parse_time(c.ExpiredTime) - now
    assert abs(delta - datetime.timedelta(hours=4)) < datetime.timedelta(minutes=2), c.ExpiredTime


def test_create_register_code_fields(client):
    rsp = call(client, "CreateRegisterCode", Description="d" * 128, InstanceNamePrefix="p" * 32,
               RegisterLimit=10000, EffectiveTime=1, IpAddressRange="192.168.0.0/16")
    c = describe_code(client, rsp.RegisterCodeId)
    assert (c.Description, c.InstanceNamePrefix, c.RegisterLimit, c.IpAddressRange) == (
        "d" * 128, "p" * 32, 10000, "192.168.0.0/16")
    delta = parse_time(c.ExpiredTime) - datetime.datetime.now(datetime.timezone.utc)
    assert abs(delta - datetime.timedelta(hours=1)) < datetime.timedelta(minutes=2)


def test_register_code_long_term(client):
    rsp = call(client, "CreateRegisterCode", EffectiveTime=100000)
    c = describe_code(client, rsp.RegisterCodeId)
    delta = parse_time(c.ExpiredTime) - datetime.datetime.now(datetime.timezone.utc)
    assert delta > datetime.timedelta(hours=99999), c.ExpiredTime


def test_create_register_code_errors(client):
    before = total_codes(client)
    bad = {"InvalidParameterValue", "InvalidParameterValue.Range", "InvalidParameterValue.TooSmall",
           "InvalidParameterValue.TooLarge", "InvalidParameterValue.TooLong"}
    expect_call_error(bad, client, "CreateRegisterCode", RegisterLimit=0)
    expect_call_error(bad, client, "CreateRegisterCode", RegisterLimit=10001)
    expect_call_error(bad, client, "CreateRegisterCode", Description="d" * 129)
    expect_call_error(bad, client, "CreateRegisterCode", InstanceNamePrefix="p" * 33)
    expect_call_error(bad, client, "CreateRegisterCode", IpAddressRange="not-an-ip")
    expect_call_error(bad, client, "CreateRegisterCode", EffectiveTime=0)
    assert total_codes(client) == before


def test_describe_register_codes_paging(client):
    for _ in range(3):
        call(client, "CreateRegisterCode", Description="paging")
    total = total_codes(client)
    assert total >= 3
    page = call(client, "DescribeRegisterCodes", Limit=2, Offset=1)
    assert page.TotalCount == total and len(page.RegisterCodeSet) == 2
    page = call(client, "DescribeRegisterCodes", Limit=2, Offset=total)
    assert page.TotalCount == total and page.RegisterCodeSet == []
    expect_call_error({"InvalidParameterValue.Range", "InvalidParameterValue.LimitExceeded",
                       "InvalidParameterValue.TooLarge", "InvalidParameterValue"},
                      client, "DescribeRegisterCodes", Limit=101)
    expect_call_error("InvalidParameterValue.InvalidRegisterCodeId", client, "DescribeRegisterCodes",
                      RegisterCodeIds=["has spaces!"])


def test_registered_count_of_session_code(client, register_code, agents):
    assert describe_code(client, register_code[0]).RegisteredCount == 2


def test_disable_register_code_rejects_new_agent(server, client, workdir):
    rsp = call(client, "CreateRegisterCode", Description="to disable")
    call(client, "DisableRegisterCodes", RegisterCodeIds=[rsp.RegisterCodeId])
    c = describe_code(client, rsp.RegisterCodeId)
    assert c.Enabled is False
    agent = start_agent(server, rsp.RegisterCodeValue, workdir / "agent-disabled", workdir / "agent-disabled.log")
    try:
        rc = agent.p.wait(20)
    except subprocess.TimeoutExpired:
        rc = None
    finally:
        agent.stop()
    assert rc not in (None, 0), "agent with a disabled register code must exit non-zero:\n" + agent.tail()
    assert describe_code(client, rsp.RegisterCodeId).RegisteredCount == 0
    inst = call(client, "DescribeRegisterInstances",
                Filters=[{"Name": "register-code-id", "Values": [rsp.RegisterCodeId]}])
    assert inst.TotalCount == 0


def test_disable_register_codes_errors(client):
    rsp = call(client, "CreateRegisterCode")
    expect_call_error("ResourceNotFound.RegisterCodesNotFoundCode", client, "DisableRegisterCodes",
                      RegisterCodeIds=[rsp.RegisterCodeId, rsp.RegisterCodeId[:-1] + ("0" if rsp.RegisterCodeId[-1] != "0" else "1")])
    assert describe_code(client, rsp.RegisterCodeId).Enabled is True
    expect_call_error("MissingParameter", client, "DisableRegisterCodes")


def test_delete_register_codes(client):
    ids = [call(client, "CreateRegisterCode").RegisterCodeId for _ in range(2)]
    before = total_codes(client)
    call(client, "DeleteRegisterCodes", RegisterCodeIds=ids)
    assert total_codes(client) == before - 2
    listed = call(client, "DescribeRegisterCodes", Limit=100).RegisterCodeSet
    assert not set(ids) & {c.RegisterCodeId for c in listed}
    expect_call_error("ResourceNotFound.RegisterCodesNotFoundCode", client, "DeleteRegisterCodes",
                      RegisterCodeIds=ids[:1])
    expect_call_error("MissingParameter", client, "DeleteRegisterCodes")
    assert total_codes(client) == before - 2


def test_describe_register_instances(client, register_code, instance_ids):
    code_id = register_code[0]
    rsp = call(client, "DescribeRegisterInstances", InstanceIds=instance_ids)
    assert rsp.TotalCount == 2
    for i in rsp.RegisterInstanceSet:
        assert ID_RE["mi"].match(i.InstanceId), i.InstanceId
        assert i.RegisterCodeId == code_id
        assert i.Status == "Online"
        assert i.SystemName == "Linux"
        assert i.HostName == socket.gethostname()
        assert i.InstanceName
        assert TIME_RE.match(i.CreatedTime) and TIME_RE.match(i.UpdatedTime)
    for flt in ({"Name": "instance-id", "Values": [instance_ids[0]]},
                {"Name": "register-status", "Values": ["Online"]},
                {"Name": "sys-name", "Values": ["Linux"]},
                {"Name": "register-code-id", "Values": [code_id]}):
        got = call(client, "DescribeRegisterInstances", Filters=[flt], Limit=100)
        ids = [i.InstanceId for i in got.RegisterInstanceSet]
        assert instance_ids[0] in ids, flt
    got = call(client, "DescribeRegisterInstances", Filters=[{"Name": "register-status", "Values": ["Offline"]}],
               Limit=100)
    assert not set(instance_ids) & {i.InstanceId for i in got.RegisterInstanceSet}
    page = call(client, "DescribeRegisterInstances", InstanceIds=instance_ids, Limit=1, Offset=1)
    assert page.TotalCount == 2 and len(page.RegisterInstanceSet) == 1
    expect_call_error("InvalidParameter.ConflictParameter", client, "DescribeRegisterInstances",
                      InstanceIds=instance_ids, Filters=[{"Name": "sys-name", "Values": ["Linux"]}])


def test_modify_register_instance(client, instance_ids):
    iid = instance_ids[1]
    name = uniq("renamed")
    call(client, "ModifyRegisterInstance", InstanceId=iid, InstanceName=name)
    got = call(client, "DescribeRegisterInstances", InstanceIds=[iid]).RegisterInstanceSet[0]
    assert got.InstanceName == name
    got = call(client, "DescribeRegisterInstances", Filters=[{"Name": "instance-name", "Values": [name]}])
    assert [i.InstanceId for i in got.RegisterInstanceSet] == [iid]
    bad = {"InvalidParameterValue", "InvalidParameterValue.TooLong", "InvalidParameterValue.Range",
           "InvalidParameterValue.TooSmall"}
    expect_call_error(bad, client, "ModifyRegisterInstance", InstanceId=iid, InstanceName="n" * 61)
    expect_call_error(bad | {"MissingParameter"}, client, "ModifyRegisterInstance", InstanceId=iid, InstanceName="")
    expect_call_error("ResourceNotFound.RegisterInstanceNotFoundCode", client, "ModifyRegisterInstance",
                      InstanceId="mi-zzzzzzz0", InstanceName="x")
    expect_call_error({"InvalidParameterValue.InvalidRegisterInstanceId", "InvalidParameterValue.InvalidInstanceId"},
                      client, "ModifyRegisterInstance", InstanceId="i-bad", InstanceName="x")
    expect_call_error("MissingParameter", client, "ModifyRegisterInstance", InstanceId=iid)
    assert call(client, "DescribeRegisterInstances", InstanceIds=[iid]).RegisterInstanceSet[0].InstanceName == name
    call(client, "ModifyRegisterInstance", InstanceId=iid, InstanceName="n" * 60)


@pytest.fixture(scope="module")
def limited_agent(server, client, workdir):
    """A third agent registered with a RegisterLimit=1 code."""
    rsp = call(client, "CreateRegisterCode", RegisterLimit=1, InstanceNamePrefix="lim")
    agent = start_agent(server, rsp.RegisterCodeValue, workdir / "agent-lim", workdir / "agent-lim.log")
    try:
        ids = wait_online(client, rsp.RegisterCodeId, 1, deadline_s=30, procs=[agent])
        yield rsp, ids[0], agent
    finally:
        agent.stop()


def test_register_limit_enforced(server, client, workdir, limited_agent):
    code, iid, _ = limited_agent
    assert describe_code(client, code.RegisterCodeId).RegisteredCount == 1
    second = start_agent(server, code.RegisterCodeValue, workdir / "agent-lim2", workdir / "agent-lim2.log")
    try:
        rc = second.p.wait(20)
    except subprocess.TimeoutExpired:
        rc = None
    finally:
        second.stop()
    assert rc not in (None, 0), "second agent beyond RegisterLimit=1 must fail:\n" + second.tail()
    assert describe_code(client, code.RegisterCodeId).RegisteredCount == 1


def test_delete_register_instance(client, limited_agent):
    code, iid, _ = limited_agent
    call(client, "DeleteRegisterInstance", InstanceId=iid)
    got = call(client, "DescribeRegisterInstances", Filters=[{"Name": "instance-id", "Values": [iid]}])
    assert got.TotalCount == 0
    expect_call_error("ResourceNotFound.RegisterInstanceNotFoundCode", client, "DeleteRegisterInstance",
                      InstanceId=iid)
    expect_call_error("MissingParameter", client, "DeleteRegisterInstance")
    # A deleted instance can no longer be targeted.
    from tat import b64
    expect_call_error({"ResourceNotFound.InstanceNotFound"}, client, "RunCommand",
                      Content=b64("true"), InstanceIds=[iid])


def test_describe_automation_agent_status(client, instance_ids):
    rsp = call(client, "DescribeAutomationAgentStatus", InstanceIds=instance_ids)
    assert rsp.TotalCount == 2
    assert sorted(a.InstanceId for a in rsp.AutomationAgentSet) == instance_ids
    for a in rsp.AutomationAgentSet:
        assert a.AgentStatus == "Online"
        assert a.Environment == "Linux"
        assert a.Version
        assert TIME_RE.match(a.LastHeartbeatTime or ""), a.LastHeartbeatTime
        assert isinstance(a.SupportFeatures, list)
    got = call(client, "DescribeAutomationAgentStatus", Filters=[{"Name": "agent-status", "Values": ["Online"]}],
               Limit=100)
    assert set(instance_ids) <= {a.InstanceId for a in got.AutomationAgentSet}
    got = call(client, "DescribeAutomationAgentStatus", Filters=[{"Name": "instance-id", "Values": [instance_ids[0]]}])
    assert [a.InstanceId for a in got.AutomationAgentSet] == [instance_ids[0]]
    got = call(client, "DescribeAutomationAgentStatus", Filters=[{"Name": "environment", "Values": ["Windows"]}])
    assert not set(instance_ids) & {a.InstanceId for a in got.AutomationAgentSet}
    page = call(client, "DescribeAutomationAgentStatus", InstanceIds=instance_ids, Limit=1)
    assert page.TotalCount == 2 and len(page.AutomationAgentSet) == 1
    expect_call_error("InvalidParameter.ConflictParameter", client, "DescribeAutomationAgentStatus",
                      InstanceIds=instance_ids, Filters=[{"Name": "agent-status", "Values": ["Online"]}])
    expect_call_error("InvalidParameterValue.InvalidInstanceId", client, "DescribeAutomationAgentStatus",
                      InstanceIds=["junk"])


def test_stopped_agent_goes_offline(server, client, workdir):
    from tat import b64
    code = call(client, "CreateRegisterCode", InstanceNamePrefix="off")
    agent = start_agent(server, code.RegisterCodeValue, workdir / "agent-off", workdir / "agent-off.log")
    try:
        iid = wait_online(client, code.RegisterCodeId, 1, deadline_s=30, procs=[agent])[0]
    finally:
        agent.stop()

    def offline():
        i = call(client, "DescribeRegisterInstances", InstanceIds=[iid]).RegisterInstanceSet[0]
        return i if i.Status == "Offline" else None
    poll(offline, 20, what="instance Offline after agent stopped")
    st = call(client, "DescribeAutomationAgentStatus", InstanceIds=[iid]).AutomationAgentSet[0]
    assert st.AgentStatus == "Offline"
    got = call(client, "DescribeAutomationAgentStatus", Filters=[{"Name": "agent-status", "Values": ["Offline"]}],
               Limit=100)
    assert iid in [a.InstanceId for a in got.AutomationAgentSet]
    # drover queues work for an offline instance instead of refusing it: the
    # task waits as DELIVER_DELAYED until the agent returns or the deliver
    # timeout ends it as DELIVER_FAILED.
    r = call(client, "RunCommand", Content=b64("true"), InstanceIds=[iid])
    t = call(client, "DescribeInvocationTasks",
             Filters=[{"Name": "invocation-id", "Values": [r.InvocationId]}]).InvocationTaskSet[0]
    assert t.TaskStatus == "DELIVER_DELAYED"
    assert call(client, "DescribeInvocations", InvocationIds=[r.InvocationId]).InvocationSet[0].InvocationStatus == "PENDING"
