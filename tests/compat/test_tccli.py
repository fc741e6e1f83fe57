"""The tccli binary against drover.

tccli builds its HttpProfile without `certification`, so the SDK passes
certifi's bundle as `verify=` explicitly and requests ignores
REQUESTS_CA_BUNDLE. A sitecustomize shim on PYTHONPATH points certifi.where()
at REQUESTS_CA_BUNDLE, which is what tccli needs to trust drover's
self-signed certificate (the tccli binary itself is run unmodified).
"""

import json
import os
import subprocess

import pytest

from tat import b64, call, unb64, uniq, wait_invocation, wait_tasks

SHIM = """\
import os
_bundle = os.environ.get("REQUESTS_CA_BUNDLE")
if _bundle:
    import certifi
    certifi.where = lambda: _bundle
"""


@pytest.fixture(scope="module")
def tccli_env(server, tmp_path_factory):
    d = tmp_path_factory.mktemp("tccli")
    (d / "shim").mkdir()
    (d / "shim" / "sitecustomize.py").write_text(SHIM)
    (d / "home").mkdir()
    env = dict(os.environ)
    env.update({
        "HOME": str(d / "home"),
        "REQUESTS_CA_BUNDLE": server.cert,
        "PYTHONPATH": str(d / "shim") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""),
    })
    for k in ("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "TENCENTCLOUD_REGION"):
        env.pop(k, None)
    return env


def tccli(bin_, server, env, action, *args):
    cmd = [bin_, "tat", action, "--endpoint", server.addr, "--secretId", server.secret_id,
           "--secretKey", server.secret_key, "--region", "ap-guangzhou", *args]
    p = subprocess.run(cmd, capture_output=True, env=env, timeout=60)
    assert p.returncode == 0, (p.stdout + p.stderr).decode(errors="replace")
    return json.loads(p.stdout)


def test_tccli_describe_regions(tccli_bin, server, tccli_env):
    out = tccli(tccli_bin, server, tccli_env, "DescribeRegions")
    assert out["TotalCount"] == len(out["RegionSet"]) >= 1
    assert out["RequestId"]


def test_tccli_commands_and_run(tccli_bin, server, tccli_env, client, instance_ids):
    name = uniq("tccli")
    out = tccli(tccli_bin, server, tccli_env, "CreateCommand", "--CommandName", name,
                "--Content", b64("echo from-tccli"), "--Timeout", "30")
    cid = out["CommandId"]
    out = tccli(tccli_bin, server, tccli_env, "DescribeCommands", "--CommandIds", json.dumps([cid]))
    assert out["TotalCount"] == 1
    c = out["CommandSet"][0]
    assert (c["CommandName"], c["Timeout"], unb64(c["Content"])) == (name, 30, b"echo from-tccli")
    out = tccli(tccli_bin, server, tccli_env, "DescribeCommands", "--Filters",
                json.dumps([{"Name": "command-name", "Values": [name]}]))
    assert cid in [c["CommandId"] for c in out["CommandSet"]]
    out = tccli(tccli_bin, server, tccli_env, "RunCommand", "--Content", b64("echo run-tccli"),
                "--InstanceIds", json.dumps(instance_ids))
    inv_id = out["InvocationId"]
    assert wait_invocation(client, inv_id).InvocationStatus == "SUCCESS"
    out = tccli(tccli_bin, server, tccli_env, "DescribeInvocationTasks", "--Filters",
                json.dumps([{"Name": "invocation-id", "Values": [inv_id]}]), "--HideOutput", "false")
    assert out["TotalCount"] == 2
    assert all(unb64(t["TaskResult"]["Output"]) == b"run-tccli\n" for t in out["InvocationTaskSet"])


def test_tccli_error_output(tccli_bin, server, tccli_env):
    cmd = [tccli_bin, "tat", "DeleteCommand", "--endpoint", server.addr, "--secretId", server.secret_id,
           "--secretKey", server.secret_key, "--region", "ap-guangzhou", "--CommandId", "cmd-00000000"]
    p = subprocess.run(cmd, capture_output=True, env=tccli_env, timeout=60)
    assert p.returncode != 0
    assert b"ResourceNotFound.CommandNotFound" in p.stdout + p.stderr
