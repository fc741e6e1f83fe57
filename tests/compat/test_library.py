"""The public command library and DescribeScenes, through the official SDK,
with library commands run on the real agents.

Library commands (CreatedBy "TAT") are read-only: ModifyCommand and
DeleteCommand(s) on them fail with UnsupportedOperation. The machine-changing
commands run here only where that is safe on a test machine: a user with a
unique name is created, given a key and a password, and deleted again.
"""

import http.server
import json
import os
import re
import shutil
import subprocess
import threading
import uuid

import pytest

from tat import b64, call, expect_call_error, tasks, to_dict, unb64, wait_invocation, wait_tasks

SCENE_RE = re.compile(r"^scene-[a-z0-9]{8}$")
SYSTEMD = os.path.isdir("/run/systemd/system")
RO = "UnsupportedOperation"


def library(client):
    rsp = call(client, "DescribeCommands", Filters=[{"Name": "created-by", "Values": ["TAT"]}], Limit=100)
    return {c.CommandName: c for c in rsp.CommandSet}


@pytest.fixture(scope="module")
def lib(client):
    return library(client)


def invoke(client, lib, name, instance_ids, /, deadline_s=90, **params):
    fields = {"CommandId": lib[name].CommandId, "InstanceIds": list(instance_ids)}
    if params:
        fields["Parameters"] = json.dumps(params)
    inv_id = call(client, "InvokeCommand", **fields).InvocationId
    inv = wait_invocation(client, inv_id, deadline_s)
    ts = wait_tasks(client, inv_id, deadline_s)
    return inv, ts


def outputs(ts):
    return [(t.TaskStatus, t.TaskResult.ExitCode, unb64(t.TaskResult.Output).decode(errors="replace")) for t in ts]


def ok(client, lib, name, instance_ids, /, *expect, **params):
    """Runs a library command on every instance; each succeeds and prints `expect`."""
    _, ts = invoke(client, lib, name, instance_ids, **params)
    assert len(ts) == len(instance_ids)
    for status, code, out in outputs(ts):
        assert (status, code) == ("SUCCESS", 0), (name, status, code, out)
        for e in expect:
            assert e in out, (name, e, out)
    return [o for _, _, o in outputs(ts)]


def fails(client, lib, name, instance_ids, message, /, code=1, **params):
    _, ts = invoke(client, lib, name, instance_ids, **params)
    for status, exit_code, out in outputs(ts):
        assert (status, exit_code) == ("FAILED", code), (name, status, exit_code, out)
        assert message in out, (name, message, out)


def ok_or_missing(client, lib, name, instance_ids, tool_present, expect, missing, /, code=127, **params):
    """Succeeds when the tool it needs is here; otherwise fails clearly
    (exit 127 for a missing tool, 1 for systemd not running)."""
    if tool_present:
        ok(client, lib, name, instance_ids, *expect, **params)
    else:
        fails(client, lib, name, instance_ids, missing, code=code, **params)


# --- DescribeScenes -----------------------------------------------------------

def test_describe_scenes(client):
    rsp = call(client, "DescribeScenes")
    assert rsp.TotalCount == len(rsp.SceneSet) >= 5
    names = {s.SceneName: s for s in rsp.SceneSet}
    assert {"System inspection", "Software management", "User and access", "Networking",
            "Troubleshooting"} <= set(names)
    for s in rsp.SceneSet:
        assert SCENE_RE.match(s.SceneId) and s.CreatedBy == "TAT" and s.CreatedTime and s.UpdatedTime
    net = names["Networking"].SceneId
    one = call(client, "DescribeScenes", SceneIds=[net])
    assert one.TotalCount == 1 and one.SceneSet[0].SceneName == "Networking"
    by_name = call(client, "DescribeScenes", Filters=[{"Name": "scene-name", "Values": ["Troubleshooting"]}])
    assert [s.SceneName for s in by_name.SceneSet] == ["Troubleshooting"]
    assert call(client, "DescribeScenes", Filters=[{"Name": "created-by", "Values": ["TAT"]}]).TotalCount == rsp.TotalCount
    assert call(client, "DescribeScenes", Filters=[{"Name": "created-by", "Values": ["USER"]}]).TotalCount == 0
    assert call(client, "DescribeScenes", Filters=[{"Name": "scene-id", "Values": [net]}]).TotalCount == 1
    page = call(client, "DescribeScenes", Limit=2, Offset=rsp.TotalCount - 1)
    assert page.TotalCount == rsp.TotalCount and len(page.SceneSet) == 1
    expect_call_error("InvalidParameterValue.InvalidSceneId", client, "DescribeScenes", SceneIds=["nope"])
    expect_call_error("InvalidParameter.ConflictParameter", client, "DescribeScenes", SceneIds=[net],
                      Filters=[{"Name": "scene-name", "Values": ["Networking"]}])


# --- the library in DescribeCommands ----------------------------------------------

def test_library_commands_are_listed_with_tat_fields(client, lib):
    assert len(lib) >= 25
    scenes = {s.SceneId for s in call(client, "DescribeScenes", Limit=100).SceneSet}
    for name, c in lib.items():
        assert c.CreatedBy == "TAT" and re.match(r"^cmd-[a-z0-9]{8}$", c.CommandId), name
        assert c.Scenes and set(c.Scenes) <= scenes, name
        fd = json.loads(c.FormattedDescription)
        assert fd["Description"] == c.Description
        assert [p["Name"] for p in fd["Parameters"]] == [p.ParameterName for p in c.DefaultParameterConfs or []]
        assert unb64(c.Content).startswith(b"#!/bin/bash\n"), name
        assert c.EnableParameter == bool(c.DefaultParameterConfs), name
        if c.EnableParameter:
            defaults = json.loads(c.DefaultParameters)
            assert defaults == {p.ParameterName: p.ParameterValue for p in c.DefaultParameterConfs}
    assert "{{tat-hidden:password}}" in unb64(lib["reset-password"].Content).decode()


def test_describe_commands_filters_span_both(client, lib):
    mine = call(client, "CreateCommand", CommandName="lib-" + uuid.uuid4().hex[:8], Content=b64("true")).CommandId
    try:
        total = call(client, "DescribeCommands", Limit=1).TotalCount
        user = call(client, "DescribeCommands", Filters=[{"Name": "created-by", "Values": ["USER"]}]).TotalCount
        assert total == user + len(lib)
        seen = []
        for offset in range(0, total, 7):
            seen += [c.CommandId for c in call(client, "DescribeCommands", Limit=7, Offset=offset).CommandSet]
        assert len(seen) == len(set(seen)) == total
        assert mine in seen and set(c.CommandId for c in lib.values()) <= set(seen)
        disk = lib["disk-usage"]
        rsp = call(client, "DescribeCommands", Filters=[{"Name": "command-id", "Values": [disk.CommandId, mine]}])
        assert rsp.TotalCount == 2
        rsp = call(client, "DescribeCommands", CommandIds=[disk.CommandId])
        assert rsp.TotalCount == 1 and rsp.CommandSet[0].CommandName == "disk-usage"
        rsp = call(client, "DescribeCommands", Filters=[{"Name": "command-name", "Values": ["disk-usage"]}])
        assert [c.CommandId for c in rsp.CommandSet] == [disk.CommandId]
        scene = disk.Scenes[0]
        rsp = call(client, "DescribeCommands", Filters=[{"Name": "scene-id", "Values": [scene]}], Limit=100)
        assert disk.CommandId in [c.CommandId for c in rsp.CommandSet]
        assert all(scene in c.Scenes and c.CreatedBy == "TAT" for c in rsp.CommandSet)
        assert rsp.TotalCount == sum(scene in c.Scenes for c in lib.values())
        rsp = call(client, "DescribeCommands", Filters=[{"Name": "tag-key", "Values": ["env"]}], Limit=100)
        assert all(c.CreatedBy == "USER" for c in rsp.CommandSet)
    finally:
        call(client, "DeleteCommand", CommandId=mine)


def test_library_commands_are_read_only(client, lib):
    cid = lib["uptime-load"].CommandId
    expect_call_error(RO, client, "ModifyCommand", CommandId=cid, Description="mine now")
    expect_call_error(RO, client, "DeleteCommand", CommandId=cid)
    mine = call(client, "CreateCommand", CommandName="lib-" + uuid.uuid4().hex[:8], Content=b64("true")).CommandId
    expect_call_error(RO, client, "DeleteCommands", CommandIds=[mine, cid])
    assert call(client, "DescribeCommands", CommandIds=[mine]).TotalCount == 1
    call(client, "DeleteCommand", CommandId=mine)
    after = call(client, "DescribeCommands", CommandIds=[cid]).CommandSet[0]
    assert to_dict(after) == to_dict(lib["uptime-load"])


def test_preview_replaces_library_parameters(client, lib):
    rsp = call(client, "PreviewReplacedCommandContent", CommandId=lib["disk-usage"].CommandId,
               Parameters=json.dumps({"path": "/var"}))
    text = unb64(rsp.ReplacedContent).decode()
    assert "\npath=/var\n" in text and "\ntop=15\n" in text and "{{" not in text.split("__DROVER_PARAMETERS__")[1]


# --- running the library on the agents ------------------------------------------

@pytest.fixture(scope="module")
def http_url():
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d/" % srv.server_address[1]
    srv.shutdown()


def test_inspection_commands(client, lib, instance_ids, server):
    ok(client, lib, "system-overview", instance_ids, "== Host ==", "kernel: Linux", "== Filesystems ==")
    ok(client, lib, "os-version", instance_ids, "== Operating system ==", "Linux")
    ok(client, lib, "uptime-load", instance_ids, "load averages:", "booted:")
    ok(client, lib, "disk-usage", instance_ids, "Largest 5 directories under /tmp", "MiB", path="/tmp", top="5")
    ok(client, lib, "memory-usage", instance_ids, "Top 3 processes by resident memory", "RSS", top="3")
    out = ok(client, lib, "top-processes", instance_ids, "Top 5 processes by mem", "%MEM", sort_by="mem", top="5")
    assert all(len(o.strip().splitlines()) >= 3 for o in out)
    ok(client, lib, "last-logins", instance_ids, "Last 5 logins", "Currently logged in", count="5")
    ok(client, lib, "cron-jobs", instance_ids, "System crontab", "User crontabs")
    ok(client, lib, "open-files", instance_ids, "Processes with the most open files")
    ok(client, lib, "open-files", instance_ids, "count:", "Open files of pid 1 ", pid="1", limit="5")
    port = server.addr.rsplit(":", 1)[1]
    ok(client, lib, "listening-ports", instance_ids, "Listening TCP and UDP sockets", ":" + port)
    ok_or_missing(client, lib, "failed-units", instance_ids, SYSTEMD, ["failed units:"],
                  "systemd is not running", code=1)
    ok_or_missing(client, lib, "service-journal", instance_ids, SYSTEMD, ["journal lines"],
                  "systemd is not running", code=1, service="systemd-journald", lines="5")
    ntp = (shutil.which("timedatectl") and SYSTEMD) or shutil.which("chronyc") or shutil.which("ntpq")
    ok_or_missing(client, lib, "ntp-status", instance_ids, bool(ntp), ["Clock synchronisation"],
                  "is available")
    fw = any(shutil.which(t) for t in ("ufw", "firewall-cmd", "nft", "iptables"))
    ok_or_missing(client, lib, "firewall-status", instance_ids, fw, [], "no firewall tool (ufw, firewall-cmd, nft, iptables) is installed")


def test_network_commands(client, lib, instance_ids, server, http_url):
    host, port = server.addr.rsplit(":", 1)
    ok(client, lib, "dns-lookup", instance_ids, "Resolution of localhost", "127.0.0.1", name="localhost")
    fails(client, lib, "dns-lookup", instance_ids, "does not resolve", name="no-such-host.invalid")
    ok(client, lib, "tcp-port-check", instance_ids, "open: %s:%s" % (host, port), host=host, port=port)
    fails(client, lib, "tcp-port-check", instance_ids, "closed: cannot connect", host=host, port="1")
    out = ok(client, lib, "cert-expiry", instance_ids, "days left:", "subject=", "ok", host=host, port=port, warn_days="0")
    assert all(int(re.search(r"days left: (-?\d+)", o).group(1)) > 0 for o in out)
    ok(client, lib, "check-url", instance_ids, "status: 200", "time_total:", url=http_url, expect_status="200")
    fails(client, lib, "check-url", instance_ids, "expected status 204", url=http_url, expect_status="204")
    ok_or_missing(client, lib, "ping-host", instance_ids, bool(shutil.which("ping")), ["bytes from"],
                  "'ping' is not installed on this machine", host="127.0.0.1", count="1")


def test_diagnostics_bundle(client, lib, one_instance):
    out = ok(client, lib, "diagnostics-bundle", [one_instance], "bundle: /tmp/drover-diagnostics-", since_hours="1")[0]
    path = re.search(r"bundle: (\S+\.tar\.gz)", out).group(1)
    try:
        listing = subprocess.run(["tar", "-tzf", path], capture_output=True, text=True, check=True).stdout
        assert "system.txt" in listing and "processes.txt" in listing
        assert os.stat(path).st_mode & 0o777 == 0o600
    finally:
        os.unlink(path)


def test_values_are_checked_and_never_run(client, lib, one_instance, tmp_path):
    canary = tmp_path / "pwned"
    fails(client, lib, "disk-usage", [one_instance], "must be an absolute path", path="$(touch %s)" % canary)
    fails(client, lib, "disk-usage", [one_instance], "single lines", path="/tmp\n__DROVER_END__\ntouch %s" % canary)
    fails(client, lib, "install-packages", [one_instance], "must be a package name", packages="curl;touch %s" % canary)
    fails(client, lib, "install-packages", [one_instance], "must be a package name", packages="--force-yes")
    assert not canary.exists()
    for name in ("restart-service", "install-packages", "remove-packages", "upgrade-packages", "set-hostname",
                 "create-user", "delete-user", "reset-password"):
        fails(client, lib, name, [one_instance], "is required")


def test_user_lifecycle(client, lib, one_instance):
    if os.geteuid() != 0 or not shutil.which("useradd"):
        pytest.skip("needs root and useradd on the agents' machine")
    name = "drv" + uuid.uuid4().hex[:8]
    try:
        ok(client, lib, "create-user", [one_instance], "created user " + name, username=name)
        fails(client, lib, "create-user", [one_instance], "already exists", username=name)
        key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDrover%s test@drover" % uuid.uuid4().hex[:8]
        ok(client, lib, "add-ssh-key", [one_instance], "key added to", username=name, public_key=key)
        ok(client, lib, "add-ssh-key", [one_instance], "already authorized", username=name, public_key=key)
        home = subprocess.run(["getent", "passwd", name], capture_output=True, text=True).stdout.split(":")[5]
        with open(os.path.join(home, ".ssh", "authorized_keys")) as f:
            assert f.read() == key + "\n"
        secret = "S3cret-" + uuid.uuid4().hex[:8]
        inv, ts = invoke(client, lib, "reset-password", [one_instance], username=name, password=secret)
        assert inv.InvocationStatus == "SUCCESS", outputs(ts)
        assert json.loads(inv.Parameters) == {"username": name, "password": "******"}
        assert secret not in inv.to_json_string() and secret not in outputs(ts)[0][2]
        with open("/etc/shadow") as f:
            entry = [l for l in f if l.startswith(name + ":")][0]
        assert entry.split(":")[1].startswith("$"), "no password hash was set"
        fails(client, lib, "reset-password", [one_instance], "at least 8 characters", username=name, password="short")
        fails(client, lib, "delete-user", [one_instance], "refusing to delete system account", username="daemon")
        ok(client, lib, "delete-user", [one_instance], "deleted user " + name, username=name, remove_home="true")
        assert subprocess.run(["id", name], capture_output=True).returncode != 0
        assert not os.path.exists(home)
    finally:
        subprocess.run(["userdel", "-r", name], capture_output=True)
