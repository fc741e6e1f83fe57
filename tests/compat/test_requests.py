"""How requests are signed and read: the Python SDK's other documented
settings (reqMethod="GET", signMethod HmacSHA1/HmacSHA256, unsignedPayload),
the console still at `/`, and the replay guard (issue 8, "Requests"): a
captured signature cannot be re-bound to another action, a mutating request
cannot be replayed, identical reads within one second still work."""

import json
import time
from pathlib import Path

import pytest
import requests
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.tat.v20201028 import tat_client

import conftest
import tat
from tat import b64, call, expect_call_error, tc3_headers, uniq, unb64, wait_invocation


def sdk_client(server, req_method="POST", sign_method="TC3-HMAC-SHA256", unsigned=False):
    http = HttpProfile(endpoint=server.addr, certification=server.cert, reqTimeout=30, reqMethod=req_method)
    profile = ClientProfile(httpProfile=http, signMethod=sign_method)
    profile.unsignedPayload = unsigned
    return tat_client.TatClient(credential.Credential(server.secret_id, server.secret_key), tat.REGION, profile)


def post(server, headers, body):
    # requests.post opens a new connection each time, as a replaying attacker would.
    return requests.post(server.url + "/", data=body.encode(), headers=headers,
                         verify=server.cert, timeout=30).json()["Response"]


SETTINGS = [("GET", "TC3-HMAC-SHA256"), ("POST", "HmacSHA1"), ("POST", "HmacSHA256"),
            ("GET", "HmacSHA1"), ("GET", "HmacSHA256")]


@pytest.mark.parametrize("req_method,sign_method", SETTINGS)
def test_sdk_settings_drive_commands_and_runs(server, client, instance_ids, req_method, sign_method):
    c = sdk_client(server, req_method, sign_method)
    name = uniq("set")
    cid = call(c, "CreateCommand", CommandName=name, Content=b64("echo set-{{x}}"), Timeout=30,
               EnableParameter=True, DefaultParameters=json.dumps({"x": "d"}),
               Tags=[{"Key": "k", "Value": "v w"}]).CommandId
    got = call(c, "DescribeCommands", Filters=[{"Name": "command-name", "Values": [name]}])
    assert got.TotalCount == 1
    cmd = got.CommandSet[0]
    assert (cmd.CommandId, cmd.Timeout, cmd.EnableParameter) == (cid, 30, True)
    assert [(t.Key, t.Value) for t in cmd.Tags] == [("k", "v w")]
    inv = call(c, "InvokeCommand", CommandId=cid, InstanceIds=instance_ids,
               Parameters=json.dumps({"x": "é ok+1/%"})).InvocationId
    assert wait_invocation(client, inv).InvocationStatus == "SUCCESS"
    ts = call(c, "DescribeInvocationTasks", Filters=[{"Name": "invocation-id", "Values": [inv]}],
              HideOutput=False).InvocationTaskSet
    assert sorted(unb64(t.TaskResult.Output) for t in ts) == ["set-é ok+1/%\n".encode()] * 2
    expect_call_error("InvalidParameterValue.InvalidCommandId", c, "DescribeCommands", CommandIds=["bad"])
    call(c, "DeleteCommand", CommandId=cid)
    assert call(client, "DescribeCommands", CommandIds=[cid]).TotalCount == 0


@pytest.mark.parametrize("sign_method", ["HmacSHA1", "HmacSHA256"])
def test_v1_wrong_key_is_refused(server, client, sign_method):
    c = sdk_client(server, "POST", sign_method)
    c.credential = credential.Credential(server.secret_id, "not-the-key")
    before = tat.total_commands(client)
    expect_call_error("AuthFailure.SignatureFailure", c, "CreateCommand", CommandName=uniq("v1"),
                      Content=b64("true"))
    assert tat.total_commands(client) == before


def test_console_keeps_root_path(server):
    r = requests.get(server.url + "/", verify=server.cert, timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "<html" in r.text.lower()


def test_unsigned_payload_is_refused_by_default(server, client):
    c = sdk_client(server, unsigned=True)
    before = tat.total_commands(client)
    with pytest.raises(Exception) as ei:
        call(c, "CreateCommand", CommandName=uniq("unsigned"), Content=b64("true"))
    assert ei.value.code == "AuthFailure.InvalidAuthorization"
    assert "allow-unsigned-payload" in ei.value.message
    assert tat.total_commands(client) == before


@pytest.fixture(scope="module")
def unsigned_server(workdir):
    data = workdir / "server-unsigned"
    proc, addr = conftest.start_server(data, workdir / "server-unsigned.log",
                                       extra=["--allow-unsigned-payload"])
    try:
        sid, skey = conftest.create_key(data)
        yield conftest.Server(data, proc, addr, sid, skey)
    finally:
        proc.stop()


def test_unsigned_payload_works_when_allowed_and_still_binds_the_body(unsigned_server):
    c = sdk_client(unsigned_server, unsigned=True)
    name = uniq("unsigned")
    cid = call(c, "CreateCommand", CommandName=name, Content=b64("true")).CommandId
    assert call(c, "DescribeCommands", CommandIds=[cid]).CommandSet[0].CommandName == name
    # The body is not signed, so the replay guard binds it: the same
    # signature with another body is refused and creates nothing.
    body = json.dumps({"CommandName": uniq("u1"), "Content": b64("true")})
    # With the body unsigned, every request of a key in one second shares a
    # signature: sign for a later second than the SDK calls above.
    h = tc3_headers(unsigned_server.secret_id, unsigned_server.secret_key, unsigned_server.addr,
                    "CreateCommand", "UNSIGNED-PAYLOAD", timestamp=int(time.time()) + 2)
    h["X-TC-Content-SHA256"] = "UNSIGNED-PAYLOAD"
    # tc3_headers hashed the literal text "UNSIGNED-PAYLOAD", as the SDK does.
    assert "Error" not in post(unsigned_server, h, body)
    other = json.dumps({"CommandName": uniq("u2"), "Content": b64("true")})
    assert post(unsigned_server, h, other)["Error"]["Code"] == "AuthFailure.SignatureFailure"
    signed = sdk_client(unsigned_server)
    names = [x.CommandName for x in call(signed, "DescribeCommands", Limit=100).CommandSet]
    assert json.loads(body)["CommandName"] in names and json.loads(other)["CommandName"] not in names


# --- the replay guard -----------------------------------------------------

def test_enable_invoker_signature_replayed_as_delete_is_refused(server, client, one_instance):
    cid = call(client, "CreateCommand", CommandName=uniq("rb"), Content=b64("true")).CommandId
    ivk = call(client, "CreateInvoker", Name=uniq("rb"), Type="SCHEDULE", CommandId=cid,
               InstanceIds=[one_instance],
               ScheduleSettings={"Policy": "ONCE", "InvokeTime": "2099-01-01T00:00:00Z"}).InvokerId
    call(client, "DisableInvoker", InvokerId=ivk)
    body = json.dumps({"InvokerId": ivk})
    # A second after the SDK's DisableInvoker of the same body, whose
    # signature would otherwise be this one's.
    stamp = int(time.time()) + 1
    h = tc3_headers(server.secret_id, server.secret_key, server.addr, "EnableInvoker", body,
                    timestamp=stamp)
    assert "Error" not in post(server, h, body)
    for action in ("DeleteInvoker", "DisableInvoker"):
        r = post(server, dict(h, **{"X-TC-Action": action}), body)
        assert r["Error"]["Code"] == "AuthFailure.SignatureFailure", r
        assert r["RequestId"]
    # Another version is another binding too.
    r = post(server, dict(h, **{"X-TC-Version": "2019-01-16"}), body)
    assert r["Error"]["Code"] == "AuthFailure.SignatureFailure", r
    got = call(client, "DescribeInvokers", InvokerIds=[ivk])
    assert got.TotalCount == 1 and got.InvokerSet[0].Enable is True
    # The SDK's own DeleteInvoker of the same body would share the captured
    # signature within its second: the legitimate call comes after it.
    while int(time.time()) <= stamp:
        time.sleep(0.05)
    call(client, "DeleteInvoker", InvokerId=ivk)
    call(client, "DeleteCommand", CommandId=cid)


def test_replayed_run_command_is_refused_and_runs_once(server, client, one_instance, workdir):
    mark = Path(workdir) / ("replay-%s.log" % uniq("r"))
    body = json.dumps({"Content": b64("echo ran >> %s" % mark), "InstanceIds": [one_instance]})
    h = tc3_headers(server.secret_id, server.secret_key, server.addr, "RunCommand", body)
    before = tat.total_invocations(client)
    first = post(server, h, body)
    assert "Error" not in first, first
    again = post(server, h, body)
    assert again["Error"]["Code"] == "AuthFailure.SignatureFailure", again
    assert wait_invocation(client, first["InvocationId"]).InvocationStatus == "SUCCESS"
    # One invocation, and the agent machine ran the script exactly once.
    assert tat.total_invocations(client) == before + 1
    assert mark.read_text() == "ran\n"


def test_identical_reads_in_one_second_both_work(server):
    ts = int(time.time())
    body = json.dumps({"Limit": 1})
    h = tc3_headers(server.secret_id, server.secret_key, server.addr, "DescribeInvocations", body,
                    timestamp=ts)
    a, b = post(server, h, body), post(server, h, body)
    assert "Error" not in a and "Error" not in b, (a, b)
    assert a["TotalCount"] == b["TotalCount"] and a["RequestId"] != b["RequestId"]
    # The read's signature cannot become a delete.
    d = post(server, dict(h, **{"X-TC-Action": "DeleteCommands"}), body)
    assert d["Error"]["Code"] == "AuthFailure.SignatureFailure"


def test_v1_signature_cannot_be_replayed(server, client):
    # The v1 signature covers Action and a Nonce: a replay of the same
    # signed form is refused and creates nothing more.
    c = sdk_client(server, "POST", "HmacSHA256")
    sent = {}
    orig = c.request.send_request

    def capture(req):
        sent["data"], sent["headers"] = req.data, dict(req.header)
        return orig(req)
    c.request.send_request = capture
    name = uniq("v1once")
    call(c, "CreateCommand", CommandName=name, Content=b64("true"))
    r = requests.post(server.url + "/", data=sent["data"], headers=sent["headers"],
                      verify=server.cert, timeout=30).json()["Response"]
    assert r["Error"]["Code"] == "AuthFailure.SignatureFailure", r
    assert call(client, "DescribeCommands", Filters=[{"Name": "command-name", "Values": [name]}]).TotalCount == 1
