"""DescribeInvocations / DescribeInvocationTasks / CancelInvocation."""

import time

import pytest

from tat import (INVOCATION_STATES, TASK_STATES, b64, call, describe_invocation, expect_call_error,
                 poll, run, tasks, unb64, uniq, wait_invocation, wait_tasks)


@pytest.fixture(scope="module")
def finished(client, instance_ids):
    rsp, inv, ts = run(client, instance_ids, "echo inv")
    return rsp, inv, ts


def test_describe_invocations_by_id_and_filters(client, finished):
    rsp, inv, ts = finished
    assert inv.InvocationStatus in INVOCATION_STATES
    got = call(client, "DescribeInvocations", Filters=[{"Name": "invocation-id", "Values": [rsp.InvocationId]}])
    assert got.TotalCount == 1 and got.InvocationSet[0].InvocationId == rsp.InvocationId
    got = call(client, "DescribeInvocations", Filters=[{"Name": "command-id", "Values": [rsp.CommandId]}])
    assert [i.InvocationId for i in got.InvocationSet] == [rsp.InvocationId]
    got = call(client, "DescribeInvocations", Filters=[{"Name": "command-created-by", "Values": ["USER"]}],
               Limit=100)
    assert rsp.InvocationId in [i.InvocationId for i in got.InvocationSet] or got.TotalCount > 100


def test_describe_invocations_paging(client, finished):
    total = call(client, "DescribeInvocations").TotalCount
    assert total >= 1
    page = call(client, "DescribeInvocations", Limit=1, Offset=0)
    assert page.TotalCount == total and len(page.InvocationSet) == 1
    page = call(client, "DescribeInvocations", Limit=1, Offset=total)
    assert page.TotalCount == total and page.InvocationSet == []


def test_describe_invocations_errors(client, finished):
    rsp = finished[0]
    expect_call_error("InvalidParameter.ConflictParameter", client, "DescribeInvocations",
                      InvocationIds=[rsp.InvocationId],
                      Filters=[{"Name": "command-id", "Values": [rsp.CommandId]}])
    expect_call_error("InvalidParameterValue.InvalidInvocationId", client, "DescribeInvocations",
                      InvocationIds=["inv-BAD"])
    expect_call_error({"InvalidParameterValue.InvalidFilter", "InvalidFilter"}, client, "DescribeInvocations",
                      Filters=[{"Name": "bogus", "Values": ["x"]}])
    expect_call_error({"InvalidParameterValue.Range", "InvalidParameterValue.LimitExceeded",
                       "InvalidParameterValue.TooLarge", "InvalidParameterValue"},
                      client, "DescribeInvocations", Limit=101)


def test_describe_invocation_tasks_filters(client, finished, instance_ids):
    rsp, inv, ts = finished
    task_ids = sorted(t.InvocationTaskId for t in ts)
    got = call(client, "DescribeInvocationTasks", InvocationTaskIds=task_ids)
    assert got.TotalCount == 2
    assert sorted(t.InvocationTaskId for t in got.InvocationTaskSet) == task_ids
    for name, value in (("invocation-task-id", task_ids[0]), ("instance-id", instance_ids[0]),
                        ("command-id", rsp.CommandId), ("invocation-id", rsp.InvocationId)):
        got = call(client, "DescribeInvocationTasks", Filters=[{"Name": name, "Values": [value]}], Limit=100)
        assert got.TotalCount >= 1, name
        for t in got.InvocationTaskSet:
            assert t.TaskStatus in TASK_STATES
            if name == "instance-id":
                assert t.InstanceId == value
            if name == "command-id":
                assert t.CommandId == value
            if name == "invocation-id":
                assert t.InvocationId == value
    got = call(client, "DescribeInvocationTasks", Filters=[{"Name": "invocation-id", "Values": [rsp.InvocationId]}],
               Limit=1, Offset=1)
    assert got.TotalCount == 2 and len(got.InvocationTaskSet) == 1


def test_describe_invocation_tasks_errors(client, finished):
    expect_call_error("InvalidParameterValue.InvalidInvocationTaskId", client, "DescribeInvocationTasks",
                      InvocationTaskIds=["invt-NOPE"])
    expect_call_error("InvalidParameter.ConflictParameter", client, "DescribeInvocationTasks",
                      InvocationTaskIds=[finished[2][0].InvocationTaskId],
                      Filters=[{"Name": "instance-id", "Values": [finished[2][0].InstanceId]}])
    expect_call_error({"InvalidParameterValue.Range", "InvalidParameterValue.LimitExceeded",
                       "InvalidParameterValue.TooLarge", "InvalidParameterValue"},
                      client, "DescribeInvocationTasks", Limit=101)


def test_cancel_running_invocation(client, instance_ids):
    rsp = call(client, "RunCommand", Content=b64("sleep 30"), InstanceIds=instance_ids, Timeout=60)

    def running():
        ts = tasks(client, rsp.InvocationId)
        return ts if len(ts) == 2 and all(t.TaskStatus == "RUNNING" for t in ts) else None
    poll(running, 15, what="both tasks RUNNING")
    t0 = time.monotonic()
    call(client, "CancelInvocation", InvocationId=rsp.InvocationId)
    ts = wait_tasks(client, rsp.InvocationId, deadline_s=15)
    assert time.monotonic() - t0 < 15
    assert all(t.TaskStatus == "TERMINATED" for t in ts), [t.TaskStatus for t in ts]
    inv = wait_invocation(client, rsp.InvocationId, deadline_s=10)
    assert inv.InvocationStatus == "CANCELLED"


def test_cancel_one_instance_partial(client, instance_ids):
    rsp = call(client, "RunCommand", Content=b64("sleep 30"), InstanceIds=instance_ids, Timeout=60)

    def running():
        ts = tasks(client, rsp.InvocationId)
        return ts if len(ts) == 2 and all(t.TaskStatus == "RUNNING" for t in ts) else None
    poll(running, 15, what="both tasks RUNNING")
    call(client, "CancelInvocation", InvocationId=rsp.InvocationId, InstanceIds=[instance_ids[0]])

    def first_done():
        ts = {t.InstanceId: t.TaskStatus for t in tasks(client, rsp.InvocationId)}
        return ts if ts[instance_ids[0]] == "TERMINATED" else None
    states = poll(first_done, 15, what="first task TERMINATED")
    assert states[instance_ids[1]] == "RUNNING"
    call(client, "CancelInvocation", InvocationId=rsp.InvocationId, InstanceIds=[instance_ids[1]])
    inv = wait_invocation(client, rsp.InvocationId, deadline_s=15)
    assert inv.InvocationStatus == "CANCELLED"


def test_cancel_errors(client, finished, instance_ids):
    rsp = finished[0]
    expect_call_error("ResourceNotFound.InvocationNotFound", client, "CancelInvocation",
                      InvocationId="inv-zzzzzzz0")
    expect_call_error("InvalidParameterValue.InvalidInvocationId", client, "CancelInvocation",
                      InvocationId="xyz")
    expect_call_error("MissingParameter", client, "CancelInvocation")
    expect_call_error("InvalidParameterValue.InstanceIsNotRelatedToInvocation", client, "CancelInvocation",
                      InvocationId=rsp.InvocationId, InstanceIds=["mi-zzzzzzz0"])
    # The finished invocation is untouched by the failed cancels.
    assert describe_invocation(client, rsp.InvocationId).InvocationStatus == "SUCCESS"


def test_partial_failed(client, instance_ids):
    # mkdir is atomic: exactly one of the two agents succeeds, the other fails.
    d = "/tmp/compat-%s" % uniq("once")
    rsp, inv, ts = run(client, instance_ids, "mkdir %s" % d)
    assert sorted(t.TaskStatus for t in ts) == ["FAILED", "SUCCESS"]
    assert inv.InvocationStatus == "PARTIAL_FAILED"
