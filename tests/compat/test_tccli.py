"""The tccli binary against drover, set up only as README's "tccli" section
documents (the `tccli` fixture in conftest.py): tccli in its own environment
whose certifi bundle also trusts the appliance, and a `tccli configure set`
profile that points both tat.endpoint and cam.endpoint at it."""

import json
import subprocess
import sys

from tat import b64, unb64, uniq, wait_invocation


def tccli_tat(t, action, *args):
    return t.run("tat", action, *args)


def test_tccli_describe_regions(tccli):
    out = tccli_tat(tccli, "DescribeRegions")
    assert out["TotalCount"] == len(out["RegionSet"]) >= 1
    assert out["RequestId"]


def test_tccli_commands_and_run(tccli, client, instance_ids):
    name = uniq("tccli")
    out = tccli_tat(tccli, "CreateCommand", "--CommandName", name,
                "--Content", b64("echo from-tccli"), "--Timeout", "30")
    cid = out["CommandId"]
    out = tccli_tat(tccli, "DescribeCommands", "--CommandIds", json.dumps([cid]))
    assert out["TotalCount"] == 1
    c = out["CommandSet"][0]
    assert (c["CommandName"], c["Timeout"], unb64(c["Content"])) == (name, 30, b"echo from-tccli")
    out = tccli_tat(tccli, "DescribeCommands", "--Filters",
                json.dumps([{"Name": "command-name", "Values": [name]}]))
    assert cid in [c["CommandId"] for c in out["CommandSet"]]
    out = tccli_tat(tccli, "RunCommand", "--Content", b64("echo run-tccli"),
                "--InstanceIds", json.dumps(instance_ids))
    inv_id = out["InvocationId"]
    assert wait_invocation(client, inv_id).InvocationStatus == "SUCCESS"
    out = tccli_tat(tccli, "DescribeInvocationTasks", "--Filters",
                json.dumps([{"Name": "invocation-id", "Values": [inv_id]}]), "--HideOutput", "false")
    assert out["TotalCount"] == 2
    assert all(unb64(t["TaskResult"]["Output"]) == b"run-tccli\n" for t in out["InvocationTaskSet"])


def test_tccli_error_output(tccli):
    p = tccli.run("tat", "DeleteCommand", "--CommandId", "cmd-00000000", check=False)
    assert p.returncode != 0
    assert b"ResourceNotFound.CommandNotFound" in p.stdout + p.stderr


def test_tccli_trust_is_contained(tccli, tccli_bin, server):
    # The same tccli outside its environment does not trust the appliance:
    # the trust step changed nothing else.
    p = subprocess.run([sys.executable, tccli_bin, "tat", "DescribeRegions", "--profile", tccli.profile],
                       capture_output=True, env=tccli.env, timeout=60)
    assert p.returncode != 0
    assert b"CERTIFICATE_VERIFY_FAILED" in p.stdout + p.stderr or b"SSL" in p.stdout + p.stderr
