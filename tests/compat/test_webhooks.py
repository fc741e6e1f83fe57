"""Webhook notifications (a drover extension) driven by the official SDK's
generic call_json: a RunCommand with a Webhook notifies a Python
http.server receiver, whose signature check is the recipe ARCHITECTURE.md
documents (HMAC-SHA256 over "<t>.<body>", hmac.compare_digest)."""

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

from tat import b64, expect_error, poll, total_invocations

KEY = "compat-webhook-key-5e1d"


def verify(headers, body, key):
    """The receiver's check: a fresh timestamp and a matching v1 HMAC."""
    sig = headers.get("x-drover-signature", "")
    fields = dict(p.split("=", 1) for p in sig.split(",") if "=" in p)
    t, v1 = fields.get("t", ""), fields.get("v1", "")
    if not t.isdigit() or abs(time.time() - int(t)) > 300:
        return False
    want = hmac.new(key.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, v1)


class Receiver:
    def __init__(self):
        self.hits = []
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                headers = {k.lower(): v for k, v in self.headers.items()}
                hits.append((headers, self.rfile.read(n)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/drover" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def ext(client, action, params):
    return client.call_json(action, params)["Response"]


def test_run_command_webhook_is_signed_and_recorded(client, instance_ids):
    rx = Receiver()
    try:
        inv = ext(client, "RunCommand", {
            "Content": b64("echo webhook"), "InstanceIds": instance_ids,
            "Webhook": {"Url": rx.url, "Secret": KEY},
        })["InvocationId"]
        hits = poll(lambda: rx.hits or None, 30, what="the webhook POST")
        headers, body = hits[0]
        assert verify(headers, body, KEY)
        assert not verify(headers, body, "not-the-right-key-123")
        assert headers["x-drover-event"] == "invocation.finished"
        sent = json.loads(body)
        assert sent["InvocationId"] == inv
        assert sent["InvocationStatus"] == "SUCCESS"
        assert sorted(t["InstanceId"] for t in sent["Tasks"]) == sorted(instance_ids)
        assert headers["x-drover-delivery"] == sent["DeliveryId"]

        d = poll(lambda: [x for x in ext(client, "DescribeWebhookDeliveries", {"InvocationId": inv})
                          ["WebhookDeliverySet"] if x["Status"] == "DELIVERED"] or None,
                 10, what="the delivery recorded")[0]
        assert d["Attempts"] == 1 and d["AttemptSet"][0]["HttpStatus"] == 204
        shown = ext(client, "DescribeInvocations", {"InvocationIds": [inv]})
        assert KEY not in json.dumps(shown)
        shown = shown["InvocationSet"][0]
        assert shown["Webhook"] == {"Url": rx.url}
        assert shown["WebhookStatus"] == "DELIVERED"
        assert len(rx.hits) == 1
    finally:
        rx.close()


def test_bad_webhook_is_refused_and_runs_nothing(client, instance_ids):
    before = total_invocations(client)
    expect_error("InvalidParameterValue.InvalidWebhookSecret", client.call_json, "RunCommand",
                 {"Content": b64("true"), "InstanceIds": instance_ids[:1],
                  "Webhook": {"Url": "https://example.com/hook", "Secret": "short"}})
    expect_error("InvalidParameterValue.InvalidWebhookUrl", client.call_json, "RunCommand",
                 {"Content": b64("true"), "InstanceIds": instance_ids[:1],
                  "Webhook": {"Url": "file:///etc/passwd", "Secret": KEY}})
    assert total_invocations(client) == before


def test_delivery_records_follow_job_read_access(server, client, instance_ids):
    from test_cam import add_user, make_cam_client
    rx = Receiver()
    try:
        inv = ext(client, "RunCommand", {
            "Content": b64("true"), "InstanceIds": instance_ids[:1],
            "Webhook": {"Url": rx.url, "Secret": KEY},
        })["InvocationId"]
        poll(lambda: rx.hits or None, 30, what="the webhook POST")
    finally:
        rx.close()
    u = add_user(make_cam_client(server), UseApi=1)
    sub = server.client(u.SecretId, u.SecretKey)
    expect_error("AuthFailure.UnauthorizedOperation", sub.call_json,
                 "DescribeWebhookDeliveries", {"InvocationId": inv})
    # Reader grants jobs/read, which is what DescribeWebhookDeliveries needs.
    ext(client, "CreateRoleAssignment", {"PrincipalType": "User", "PrincipalId": str(u.Uin),
                                         "RoleName": "Reader", "Scope": "account"})
    seen = ext(sub, "DescribeWebhookDeliveries", {"InvocationId": inv})
    assert seen["TotalCount"] == 1 and seen["WebhookDeliverySet"][0]["InvocationId"] == inv
    assert KEY not in json.dumps(seen)
