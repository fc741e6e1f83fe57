"""Tag targeting and rate control (drover extensions) through the official SDK.

The SDK's typed request classes drop fields TAT does not define, so the
extension parameters go through the SDK's generic `client.call_json`; the
typed DescribeInvocations / DescribeInvocationTasks read the results
unchanged. The session's agents are shared with other test files, so every
tag set here is cleared again afterwards.
"""

import pytest

from tat import b64, describe_invocation, expect_error, tasks, total_invocations, uniq, wait_invocation

# The typed models warn about the extension fields they do not know.
pytestmark = pytest.mark.filterwarnings("ignore:.*fileds are useless")


def set_tags(client, instance_id, tags):
    client.call_json("ModifyInstanceTags", {"InstanceId": instance_id, "Tags": tags})


@pytest.fixture
def tagged(client, instance_ids):
    """The first agent tagged role=<unique>; the tag name is returned."""
    key = uniq("role").replace("-", "_")
    set_tags(client, instance_ids[0], [{"Key": key, "Value": "web"}])
    yield key
    set_tags(client, instance_ids[0], [])


def test_run_command_by_tag_with_rate_control(client, instance_ids, tagged):
    targets = [{"Key": "tag:" + tagged, "Values": ["web"]}]
    rsp = client.call_json("RunCommand", {
        "Content": b64("echo targeted"),
        "Targets": targets,
        "MaxConcurrency": "50%",
        "MaxErrors": 0,
    })
    inv_id = rsp["Response"]["InvocationId"]
    inv = wait_invocation(client, inv_id)
    assert inv.InvocationStatus == "SUCCESS"
    assert [b.InstanceId for b in inv.InvocationTaskBasicInfoSet] == [instance_ids[0]]
    ts = tasks(client, inv_id)
    assert [t.InstanceId for t in ts] == [instance_ids[0]]
    raw = client.call_json("DescribeInvocations", {"InvocationIds": [inv_id]})
    shown = raw["Response"]["InvocationSet"][0]
    assert shown["Targets"] == targets
    assert (shown["MaxConcurrency"], shown["MaxErrors"]) == ("50%", "0")


def test_rate_control_waves_over_the_fleet(client, instance_ids):
    rsp = client.call_json("RunCommand", {
        "Content": b64("exit 1"),
        "Targets": [{"Key": "all"}],
        "MaxConcurrency": 1,
        "MaxErrors": "0",
    })
    inv = wait_invocation(client, rsp["Response"]["InvocationId"])
    statuses = sorted(b.TaskStatus for b in inv.InvocationTaskBasicInfoSet)
    # One task failed; every other one was never started.
    assert statuses.count("FAILED") == 1
    assert statuses.count("CANCELLED") == len(statuses) - 1 >= 1
    for t in tasks(client, inv.InvocationId):
        if t.TaskStatus == "CANCELLED":
            assert t.ErrorInfo == "not started: 1 tasks failed, more than MaxErrors 0"


def test_targeting_errors_change_nothing(client, instance_ids, tagged):
    before = total_invocations(client)
    cases = [
        ({"Targets": [{"Key": "tag:" + tagged, "Values": ["nobody"]}]},
         "InvalidParameterValue.NoInstanceMatched"),
        ({"Targets": [{"Key": "tag:" + tagged, "Values": ["web"]}], "InstanceIds": instance_ids[:1]},
         "InvalidParameter"),
        ({"Targets": [{"Key": "hostname", "Values": ["x"]}]}, "InvalidParameterValue"),
        ({"InstanceIds": instance_ids[:1], "MaxConcurrency": "0%"}, "InvalidParameterValue"),
    ]
    for fields, code in cases:
        expect_error(code, client.call_json, "RunCommand", dict(Content=b64("true"), **fields))
    assert total_invocations(client) == before
    # A plain TAT call still has TAT's shape: no extension fields.
    rsp = client.call_json("RunCommand", {"Content": b64("true"), "InstanceIds": instance_ids[:1]})
    inv = describe_invocation(client, rsp["Response"]["InvocationId"])
    raw = client.call_json("DescribeInvocations", {"InvocationIds": [inv.InvocationId]})
    assert "Targets" not in raw["Response"]["InvocationSet"][0]
