"""Shared helpers for the TAT compatibility suite.

Everything here talks to drover only through the official Tencent Cloud
SDK (typed request models), tccli, or a hand-written TC3 signer.
"""

import base64
import datetime
import hashlib
import hmac
import json
import os
import re
import time
import uuid

import pytest
import requests
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
    TencentCloudSDKException,
)
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.tat.v20201028 import models, tat_client

REGION = "ap-guangzhou"
API_VERSION = "2020-10-28"
SERVICE = "tat"

TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
ID_RE = {
    "cmd": re.compile(r"^cmd-[a-z0-9]{8}$"),
    "inv": re.compile(r"^inv-[a-z0-9]{8}$"),
    "invt": re.compile(r"^invt-[a-z0-9]{8}$"),
    "mi": re.compile(r"^mi-[a-z0-9]{8}$"),
}

TASK_TERMINAL = {
    "SUCCESS", "FAILED", "TIMEOUT", "TASK_TIMEOUT", "CANCELLED", "TERMINATED",
    "DELIVER_FAILED", "START_FAILED",
}
TASK_STATES = TASK_TERMINAL | {"PENDING", "DELIVERING", "DELIVER_DELAYED", "RUNNING", "CANCELLING"}
INVOCATION_TERMINAL = {
    "SUCCESS", "FAILED", "TIMEOUT", "CANCELLED", "PARTIAL_FAILED", "PARTIAL_CANCELLED",
}
INVOCATION_STATES = INVOCATION_TERMINAL | {"PENDING", "RUNNING", "CANCELLING"}


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def unb64(s):
    return base64.b64decode(s or "")


def uniq(prefix="t"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def make_client(endpoint, cert, secret_id, secret_key, region=REGION):
    cred = credential.Credential(secret_id, secret_key)
    http = HttpProfile(endpoint=endpoint, certification=cert, reqTimeout=30)
    profile = ClientProfile(httpProfile=http)
    return tat_client.TatClient(cred, region, profile)


def build(action, **fields):
    """A typed <action>Request built from a JSON document, as tccli does."""
    req = getattr(models, action + "Request")()
    req.from_json_string(json.dumps(fields))
    return req


def call(client, action, **fields):
    """Call `action` through the SDK's typed method and return the typed response."""
    return getattr(client, action)(build(action, **fields))


def to_dict(model):
    return json.loads(model.to_json_string())


def expect_error(codes, fn, *args, **kwargs):
    """Run fn; it must raise TencentCloudSDKException whose code is in `codes`."""
    if isinstance(codes, str):
        codes = {codes}
    with pytest.raises(TencentCloudSDKException) as ei:
        fn(*args, **kwargs)
    err = ei.value
    assert err.code in codes, "expected error %s, got %s: %s" % (
        sorted(codes), err.code, err.message)
    assert err.requestId, "error response carries no RequestId"
    log = os.environ.get("COMPAT_CODES_LOG")
    if log and len(codes) > 1:
        with open(log, "a") as f:
            f.write("%s <- %s\n" % (err.code, sorted(codes)))
    return err


def expect_call_error(codes, client, action, **fields):
    return expect_error(codes, call, client, action, **fields)


def next_second():
    """Wait until the clock enters a new second. The SDKs sign neither the
    action nor a nonce, so two different actions with identical parameters
    signed by one key in the same second share a signature, and drover
    refuses such a signature from another connection when either use
    changes something (README: "Signatures and replays"). Tests that follow
    hand-signed or other clients' calls with the same parameters use this."""
    s = int(time.time())
    while int(time.time()) == s:
        time.sleep(0.02)


def poll(fn, deadline_s, interval=0.25, what="condition"):
    """Call fn until it returns a truthy value or the deadline passes."""
    end = time.monotonic() + deadline_s
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > end:
            raise AssertionError("timed out after %ss waiting for %s (last=%r)" % (deadline_s, what, last))
        time.sleep(interval)


def describe_invocation(client, inv_id):
    rsp = call(client, "DescribeInvocations", InvocationIds=[inv_id])
    assert rsp.TotalCount == 1, "invocation %s not found" % inv_id
    return rsp.InvocationSet[0]


def wait_invocation(client, inv_id, deadline_s=20, states=INVOCATION_TERMINAL):
    def check():
        inv = describe_invocation(client, inv_id)
        return inv if inv.InvocationStatus in states else None
    return poll(check, deadline_s, what="invocation %s in %s" % (inv_id, sorted(states)))


def tasks(client, inv_id, hide_output=False):
    fields = {"Filters": [{"Name": "invocation-id", "Values": [inv_id]}], "Limit": 100}
    if hide_output is not None:
        fields["HideOutput"] = hide_output
    rsp = call(client, "DescribeInvocationTasks", **fields)
    return rsp.InvocationTaskSet


def wait_tasks(client, inv_id, deadline_s=20, states=TASK_TERMINAL):
    def check():
        ts = tasks(client, inv_id)
        return ts if ts and all(t.TaskStatus in states for t in ts) else None
    return poll(check, deadline_s, what="tasks of %s in %s" % (inv_id, sorted(states)))


def run(client, instance_ids, script, deadline_s=20, **fields):
    """RunCommand and wait for the invocation to finish; returns (response, invocation, tasks)."""
    rsp = call(client, "RunCommand", Content=b64(script), InstanceIds=list(instance_ids), **fields)
    inv = wait_invocation(client, rsp.InvocationId, deadline_s)
    ts = wait_tasks(client, rsp.InvocationId, deadline_s)
    return rsp, inv, ts


def total_commands(client):
    return call(client, "DescribeCommands", Limit=100).TotalCount


def total_invocations(client):
    return call(client, "DescribeInvocations", Limit=100).TotalCount


# --- a hand-written TC3-HMAC-SHA256 signer ---------------------------------

def tc3_headers(secret_id, secret_key, host, action, payload, timestamp=None,
                content_type="application/json", region=REGION, version=API_VERSION):
    if timestamp is None:
        timestamp = int(time.time())
    if isinstance(payload, str):
        payload = payload.encode()
    date = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).strftime("%Y-%m-%d")
    canonical_headers = "content-type:%s\nhost:%s\n" % (content_type, host)
    signed_headers = "content-type;host"
    canonical_request = "\n".join([
        "POST", "/", "", canonical_headers, signed_headers, hashlib.sha256(payload).hexdigest()])
    scope = "%s/%s/tc3_request" % (date, SERVICE)
    string_to_sign = "\n".join([
        "TC3-HMAC-SHA256", str(timestamp), scope,
        hashlib.sha256(canonical_request.encode()).hexdigest()])

    def _h(key, msg):
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    k = _h(("TC3" + secret_key).encode(), date)
    k = _h(k, SERVICE)
    k = _h(k, "tc3_request")
    sig = hmac.new(k, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        "Authorization": "TC3-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
                         % (secret_id, scope, signed_headers, sig),
        "Content-Type": content_type,
        "Host": host,
        "X-TC-Action": action,
        "X-TC-Timestamp": str(timestamp),
        "X-TC-Version": version,
        "X-TC-Region": region,
    }


def raw_call(server, action, payload, timestamp=None, secret_id=None, secret_key=None):
    """POST a hand-signed request; returns the requests.Response."""
    host = server.addr
    headers = tc3_headers(secret_id or server.secret_id, secret_key or server.secret_key,
                          host, action, payload, timestamp=timestamp)
    return requests.post("https://%s/" % host, data=payload if isinstance(payload, bytes) else payload.encode(),
                         headers=headers, verify=server.cert, timeout=30)
