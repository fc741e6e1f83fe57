"""Every TAT action's response, walked against the Python SDK's own models:
each field a response model (and every nested model) documents must be
present, of the documented type (`:rtype:`), and null only where the
docstring says it may be ("此字段可能返回 null")."""

import json
import re
import time

import pytest
from tencentcloud.tat.v20201028 import models, tat_client

import conftest
import tat
from tat import b64, call, uniq, wait_invocation

NULLABLE = "可能返回 null"
# Deliberate deviations from the models, each with its reason (README).
# TaskResult.ExitCode is an int in the model, but a task whose exit status
# is unknown (never ran, killed by a signal, died with its agent) reports
# null rather than a made-up 0 (issue 9).
NULL_ALLOWED = {("TaskResult", "ExitCode")}

PRIMITIVES = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
}


def fields_of(cls):
    return [k[1:] for k in vars(cls())]


def spec(cls, field):
    doc = getattr(cls, field).__doc__ or ""
    m = re.search(r":rtype:\s*(.+)", doc)
    assert m, "%s.%s has no :rtype:" % (cls.__name__, field)
    return m.group(1).strip(), NULLABLE in doc


def model_class(name):
    m = re.match(r":class:`tencentcloud\.tat\.v20201028\.models\.(\w+)`", name)
    return getattr(models, m.group(1) if m else name, None)


def walk(cls, value, path, problems):
    if not isinstance(value, dict):
        problems.append("%s: expected an object for %s, got %r" % (path, cls.__name__, value))
        return
    for f in fields_of(cls):
        if f == "RequestId" and path != "":
            continue
        p = "%s.%s" % (path, f) if path else f
        rtype, nullable = spec(cls, f)
        if f not in value:
            problems.append("%s: missing" % p)
            continue
        v = value[f]
        if v is None:
            if not nullable and (cls.__name__, f) not in NULL_ALLOWED:
                problems.append("%s: null, but not documented as nullable" % p)
            continue
        check(rtype, v, p, problems)


def check(rtype, v, p, problems):
    if rtype.startswith("list of "):
        if not isinstance(v, list):
            problems.append("%s: expected a list (%s), got %r" % (p, rtype, v))
            return
        for i, item in enumerate(v):
            check(rtype[len("list of "):], item, "%s[%d]" % (p, i), problems)
        return
    if rtype in PRIMITIVES:
        if not PRIMITIVES[rtype](v):
            problems.append("%s: expected %s, got %r" % (p, rtype, v))
        return
    cls = model_class(rtype)
    if cls is None:
        problems.append("%s: unknown documented type %s" % (p, rtype))
        return
    walk(cls, v, p, problems)


def actions():
    return sorted(n for n in dir(tat_client.TatClient)
                  if n[0].isupper() and hasattr(models, n + "Response"))


@pytest.fixture(scope="module")
def walked(server, client, register_code, instance_ids, workdir):
    """Calls all 29 actions with valid input; returns {action: response JSON}."""
    out = {}

    def go(action, **fields):
        out[action] = client.call_json(action, fields)["Response"]
        assert "Error" not in out[action], (action, out[action])
        return out[action]

    go("DescribeRegions")
    go("DescribeQuotas", ResourceNames=["COMMAND", "REGISTER_CODE"])
    go("DescribeScenes")
    cid = go("CreateCommand", CommandName=uniq("walk"), Content=b64("echo {{a}}; sleep 30"),
             EnableParameter=True, DefaultParameterConfs=[
                 {"ParameterName": "a", "ParameterValue": "x", "ParameterDescription": "d"}],
             Tags=[{"Key": "walk", "Value": "1"}])["CommandId"]
    go("ModifyCommand", CommandId=cid, Description="walked")
    go("DescribeCommands", CommandIds=[cid])
    go("PreviewReplacedCommandContent", CommandId=cid, Parameters=json.dumps({"a": "y"}))
    # A task that is still running, so it has no end time yet, and one cancelled.
    inv = go("InvokeCommand", CommandId=cid, InstanceIds=instance_ids[:1])["InvocationId"]
    go("DescribeInvocations", InvocationIds=[inv])
    go("DescribeInvocationTasks", Filters=[{"Name": "invocation-id", "Values": [inv]}], HideOutput=False)
    go("CancelInvocation", InvocationId=inv, InstanceIds=instance_ids[:1])
    done = go("RunCommand", Content=b64("echo walked"), InstanceIds=instance_ids)["InvocationId"]
    wait_invocation(client, done)
    out["DescribeInvocationTasks.finished"] = client.call_json(
        "DescribeInvocationTasks", {"Filters": [{"Name": "invocation-id", "Values": [done]}],
                                    "HideOutput": False})["Response"]
    out["DescribeInvocations.finished"] = client.call_json(
        "DescribeInvocations", {"InvocationIds": [done]})["Response"]
    go("DescribeAutomationAgentStatus", InstanceIds=instance_ids)
    ivk = go("CreateInvoker", Name=uniq("walk"), Type="SCHEDULE", CommandId=cid,
             InstanceIds=instance_ids[:1],
             ScheduleSettings={"Policy": "RECURRENCE", "Recurrence": "0 0 1 1 *"})["InvokerId"]
    go("ModifyInvoker", InvokerId=ivk, Name=uniq("walk2"))
    go("DescribeInvokers", InvokerIds=[ivk])
    go("DisableInvoker", InvokerId=ivk)
    tat.next_second()
    go("EnableInvoker", InvokerId=ivk)
    go("DescribeInvokerRecords", InvokerIds=[ivk])
    tat.next_second()
    go("DeleteInvoker", InvokerId=ivk)
    tat.next_second()
    go("DeleteCommand", CommandId=cid)
    c2 = call(client, "CreateCommand", CommandName=uniq("walk"), Content=b64("true")).CommandId
    go("DeleteCommands", CommandIds=[c2])
    code = go("CreateRegisterCode", Description="walk", RegisterLimit=1, EffectiveTime=100000)
    go("DescribeRegisterCodes", RegisterCodeIds=[code["RegisterCodeId"]])
    # A third machine, registered for this walk and then deleted.
    agent = conftest.start_agent(server, code["RegisterCodeValue"], workdir / "walk-agent",
                                 workdir / "walk-agent.log")
    try:
        mi = conftest.wait_online(client, code["RegisterCodeId"], 1, deadline_s=40, procs=[agent])[0]
        go("DescribeRegisterInstances", InstanceIds=[mi])
        go("ModifyRegisterInstance", InstanceId=mi, InstanceName="walked")
        tat.next_second()
        go("DisableRegisterCodes", RegisterCodeIds=[code["RegisterCodeId"]])
        go("DeleteRegisterInstance", InstanceId=mi)
        tat.next_second()
        go("DeleteRegisterCodes", RegisterCodeIds=[code["RegisterCodeId"]])
    finally:
        agent.stop()
    return out


@pytest.mark.parametrize("action", actions())
def test_response_matches_the_sdk_model(walked, action):
    cls = getattr(models, action + "Response")
    problems = []
    walk(cls, walked[action], "", problems)
    assert not problems, problems


@pytest.mark.parametrize("action", ["DescribeInvocationTasks", "DescribeInvocations"])
def test_finished_runs_match_too(walked, action):
    problems = []
    walk(getattr(models, action + "Response"), walked[action + ".finished"], "", problems)
    assert not problems, problems


def test_times_that_do_not_exist_yet_are_null(walked):
    # The cancelled task never ended normally; times it lacks are null, not "".
    for t in walked["DescribeInvocationTasks"]["InvocationTaskSet"]:
        for v in (t["StartTime"], t["EndTime"], t["TaskResult"]["ExecStartTime"],
                  t["TaskResult"]["ExecEndTime"]):
            assert v is None or tat.TIME_RE.match(v), t
    for t in walked["DescribeInvocationTasks.finished"]["InvocationTaskSet"]:
        assert tat.TIME_RE.match(t["TaskResult"]["ExecEndTime"]), t


def test_schedule_settings_always_carry_both_fields(walked):
    s = walked["DescribeInvokers"]["InvokerSet"][0]["ScheduleSettings"]
    assert s["Policy"] == "RECURRENCE" and s["Recurrence"] == "0 0 1 1 *"
    assert s["InvokeTime"] == "" or tat.TIME_RE.match(s["InvokeTime"])


def test_long_term_register_code(walked):
    # EffectiveTime above 99999 hours means long-term.
    exp = walked["DescribeRegisterCodes"]["RegisterCodeSet"][0]["ExpiredTime"]
    years = (time.mktime(time.strptime(exp, "%Y-%m-%dT%H:%M:%SZ")) - time.time()) / (365 * 86400)
    assert years > 10, exp
