"""Invokers through the official SDK: CreateInvoker / ModifyInvoker /
DeleteInvoker / DescribeInvokers / EnableInvoker / DisableInvoker /
DescribeInvokerRecords, including bad input."""

import re
import time
from datetime import datetime, timedelta, timezone

import pytest

from tat import TIME_RE, b64, call, describe_invocation, expect_call_error, poll, uniq

IVK_RE = re.compile(r"^ivk-[a-z0-9]{8}$")


def later(seconds):
    t = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def command_id(client):
    return call(client, "CreateCommand", CommandName=uniq("ivk"), Content=b64("echo from-invoker")).CommandId


@pytest.fixture(scope="module")
def param_command_id(client):
    return call(client, "CreateCommand", CommandName=uniq("ivkp"), Content=b64("echo {{word}}"),
                EnableParameter=True, DefaultParameters='{"word": "x"}').CommandId


def create(client, command_id, instance_ids, **over):
    fields = dict(Name=uniq("ivk"), Type="SCHEDULE", CommandId=command_id, InstanceIds=instance_ids[:1],
                  ScheduleSettings={"Policy": "ONCE", "InvokeTime": later(3600)})
    fields.update(over)
    return call(client, "CreateInvoker", **fields).InvokerId


def records(client, ivk):
    return call(client, "DescribeInvokerRecords", InvokerIds=[ivk], Limit=100)


def test_create_describe_modify_delete(client, command_id, param_command_id, instance_ids):
    at = later(3600)
    ivk = create(client, command_id, instance_ids, Name="nightly", Username="root",
                 ScheduleSettings={"Policy": "ONCE", "InvokeTime": at},
                 Tags=[{"Key": "team", "Value": "ops"}])
    assert IVK_RE.match(ivk)
    got = call(client, "DescribeInvokers", InvokerIds=[ivk])
    assert got.TotalCount == 1
    i = got.InvokerSet[0]
    assert (i.InvokerId, i.Name, i.Type, i.CommandId, i.Username) == (ivk, "nightly", "SCHEDULE", command_id, "root")
    assert i.InstanceIds == instance_ids[:1] and i.Enable is True
    assert i.ScheduleSettings.Policy == "ONCE" and i.ScheduleSettings.InvokeTime == at
    assert TIME_RE.match(i.CreatedTime) and TIME_RE.match(i.UpdatedTime)
    assert [(t.Key, t.Value) for t in i.Tags] == [("team", "ops")]

    for name, value in (("invoker-id", ivk), ("command-id", command_id), ("invoker-type", "SCHEDULE")):
        got = call(client, "DescribeInvokers", Filters=[{"Name": name, "Values": [value]}], Limit=100)
        assert ivk in [x.InvokerId for x in got.InvokerSet]

    call(client, "ModifyInvoker", InvokerId=ivk, Name="renamed", CommandId=param_command_id,
         Parameters='{"word": "hi"}', InstanceIds=instance_ids,
         ScheduleSettings={"Policy": "RECURRENCE", "Recurrence": "0 3 * * *"})
    i = call(client, "DescribeInvokers", InvokerIds=[ivk]).InvokerSet[0]
    assert (i.Name, i.CommandId, i.Parameters) == ("renamed", param_command_id, '{"word": "hi"}')
    assert sorted(i.InstanceIds) == sorted(instance_ids)
    assert i.ScheduleSettings.Policy == "RECURRENCE" and i.ScheduleSettings.Recurrence == "0 3 * * *"

    call(client, "DisableInvoker", InvokerId=ivk)
    assert call(client, "DescribeInvokers", InvokerIds=[ivk]).InvokerSet[0].Enable is False
    call(client, "EnableInvoker", InvokerId=ivk)
    assert call(client, "DescribeInvokers", InvokerIds=[ivk]).InvokerSet[0].Enable is True

    call(client, "DeleteInvoker", InvokerId=ivk)
    assert call(client, "DescribeInvokers", InvokerIds=[ivk]).TotalCount == 0
    expect_call_error("ResourceNotFound", client, "DeleteInvoker", InvokerId=ivk)


def test_paging(client, command_id, instance_ids):
    ids = [create(client, command_id, instance_ids) for _ in range(3)]
    total = call(client, "DescribeInvokers").TotalCount
    assert total >= 3
    page = call(client, "DescribeInvokers", Limit=1, Offset=1)
    assert page.TotalCount == total and len(page.InvokerSet) == 1
    for ivk in ids:
        call(client, "DeleteInvoker", InvokerId=ivk)


def test_recurring_invoker_fires_and_records_show_results(client, command_id, instance_ids):
    ivk = create(client, command_id, instance_ids,
                 ScheduleSettings={"Policy": "RECURRENCE", "Recurrence": "* * * * * *"})

    def two_done():
        r = records(client, ivk)
        ok = [x for x in r.InvokerRecordSet if x.Result == "SUCCESS"]
        return r if len(ok) >= 2 else None

    r = poll(two_done, 30, what="two successful triggers")
    call(client, "DisableInvoker", InvokerId=ivk)
    assert r.TotalCount == len(r.InvokerRecordSet)
    rec = [x for x in r.InvokerRecordSet if x.Result == "SUCCESS"][0]
    assert rec.InvokerId == ivk and TIME_RE.match(rec.InvokeTime) and rec.Reason
    inv = describe_invocation(client, rec.InvocationId)
    assert inv.InvocationSource == "INVOKER" and inv.CommandId == command_id
    page = call(client, "DescribeInvokerRecords", InvokerIds=[ivk], Limit=1, Offset=0)
    assert len(page.InvokerRecordSet) == 1 and page.TotalCount >= 2
    n = records(client, ivk).TotalCount
    time.sleep(2)
    assert records(client, ivk).TotalCount == n
    call(client, "DeleteInvoker", InvokerId=ivk)


def test_bad_input(client, command_id, instance_ids):
    once = {"Policy": "ONCE", "InvokeTime": later(3600)}
    base = dict(Name="x", Type="SCHEDULE", CommandId=command_id, InstanceIds=instance_ids[:1], ScheduleSettings=once)

    def bad(codes, **over):
        fields = dict(base)
        fields.update(over)
        expect_call_error(codes, client, "CreateInvoker", **fields)

    bad("InvalidParameterValue.InvalidCronExpression",
        ScheduleSettings={"Policy": "RECURRENCE", "Recurrence": "61 * * * *"})
    bad("InvalidParameterValue.InvalidCronExpression",
        ScheduleSettings={"Policy": "RECURRENCE", "Recurrence": "every day"})
    bad("InvalidParameterValue.InvokeTimeExpired", ScheduleSettings={"Policy": "ONCE", "InvokeTime": later(-60)})
    bad("InvalidParameterValue.InvalidTimeFormat", ScheduleSettings={"Policy": "ONCE", "InvokeTime": "tomorrow"})
    bad("MissingParameter", ScheduleSettings={"Policy": "ONCE"})
    bad("InvalidParameterValue", ScheduleSettings={"Policy": "WEEKLY"})
    bad("InvalidParameterValue", Type="EVENT")
    bad("InvalidParameterValue.InvalidCommandId", CommandId="cmd-BAD")
    bad("ResourceNotFound.CommandNotFound", CommandId="cmd-00000000")
    bad("InvalidParameterValue.InvalidInstanceId", InstanceIds=["mi-BAD"])
    bad("ResourceNotFound.InstanceNotFound", InstanceIds=["mi-00000000"])
    bad("InvalidParameterValue.ParameterDisabled", Parameters='{"a": "b"}')
    bad("InvalidParameterValue.TooLong", Name="n" * 121)
    expect_call_error("MissingParameter", client, "CreateInvoker", Name="x", Type="SCHEDULE",
                      CommandId=command_id, InstanceIds=instance_ids[:1])

    for action in ("DeleteInvoker", "EnableInvoker", "DisableInvoker", "ModifyInvoker"):
        expect_call_error("InvalidParameterValue.InvalidInvokerId", client, action, InvokerId="ivk-BAD")
        expect_call_error("ResourceNotFound", client, action, InvokerId="ivk-00000000")
    expect_call_error("InvalidParameterValue.InvalidInvokerId", client, "DescribeInvokers", InvokerIds=["bad"])
    expect_call_error("InvalidParameterValue.InvalidInvokerId", client, "DescribeInvokerRecords",
                      InvokerIds=["bad"])
    expect_call_error("InvalidParameter.ConflictParameter", client, "DescribeInvokers", InvokerIds=["ivk-00000000"],
                      Filters=[{"Name": "command-id", "Values": [command_id]}])
    expect_call_error({"InvalidParameterValue.InvalidFilter", "InvalidFilter"}, client, "DescribeInvokers",
                      Filters=[{"Name": "bogus", "Values": ["x"]}])
    expect_call_error("InvalidParameterValue.Range", client, "DescribeInvokerRecords", Limit=101)

    ivk = create(client, command_id, instance_ids)
    expect_call_error("ResourceUnavailable.CommandInInvoker", client, "DeleteCommand", CommandId=command_id)
    expect_call_error("InvalidParameterValue.InvalidCronExpression", client, "ModifyInvoker", InvokerId=ivk,
                      ScheduleSettings={"Policy": "RECURRENCE", "Recurrence": "* *"})
    expect_call_error("InvalidParameterValue.InvokeTimeExpired", client, "ModifyInvoker", InvokerId=ivk,
                      ScheduleSettings={"Policy": "ONCE", "InvokeTime": later(-5)})
    call(client, "DeleteInvoker", InvokerId=ivk)
