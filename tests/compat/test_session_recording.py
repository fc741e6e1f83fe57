"""Session recordings through the official TAT SDK (issue 11 item 5).

A console user opens a real shell on a real agent over the console's
WebSocket (a small RFC 6455 client on an ssl socket, as a browser would
speak it); the server records it. The account and sub-users then read it
with the SDK's `call_json` (DescribeSessions and DescribeSessionRecording
are drover extensions): the asciicast v2 text is parsed line by line, a
sub-user allowed on the instance reads it, one allowed elsewhere neither
lists nor reads it, and an unknown session id gets that same refusal.
"""

import base64
import json
import os
import socket
import ssl
import struct

from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

import tat
from test_cam import add_user, call, make_cam_client, name
from test_console import PASSWORD, login

DEADLINE = 30


def policy_user(cam, statements, **fields):
    """A sub-user with one policy of these statements."""
    u = add_user(cam, Name=name("rec"), **fields)
    doc = json.dumps({"version": "2.0", "statement": statements})
    pid = call(cam, "CreatePolicy", PolicyName=name("p_rec"), PolicyDocument=doc).PolicyId
    call(cam, "AttachUserPolicy", PolicyId=pid, AttachUin=u.Uin)
    return u


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        part = sock.recv(n - len(buf))
        if not part:
            raise AssertionError("the socket closed mid-frame")
        buf += part
    return buf


class Ws:
    """The client side of one WebSocket (unfragmented frames, as the
    server sends them)."""

    def __init__(self, server, session, query):
        host, port = server.addr.rsplit(":", 1)
        ctx = ssl.create_default_context(cafile=server.cert)
        raw = socket.create_connection((host, int(port)), timeout=DEADLINE)
        self.sock = ctx.wrap_socket(raw, server_hostname=host)
        cookie = "; ".join("%s=%s" % (c.name, c.value) for c in session.cookies)
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET /console/session?%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
               "Origin: https://%s\r\nCookie: %s\r\n\r\n") % (query, server.addr, key, server.addr, cookie)
        self.sock.sendall(req.encode())
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += recv_exact(self.sock, 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        self.screen = b""
        self.control = []
        self.closed = False

    def send(self, payload, opcode=2):
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            size = bytes([0x80 | n])
        else:
            size = bytes([0x80 | 126]) + struct.pack(">H", n)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x80 | opcode]) + size + mask + body)

    def pump(self):
        b0, b1 = recv_exact(self.sock, 2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", recv_exact(self.sock, 2))[0]
        elif n == 127:
            n = struct.unpack(">Q", recv_exact(self.sock, 8))[0]
        data = recv_exact(self.sock, n)
        op = b0 & 0x0F
        if op == 2:
            self.screen += data
        elif op == 1:
            self.control.append(json.loads(data))
        elif op == 8:
            self.closed = True

    def until(self, done):
        while not done():
            assert not self.closed, "closed early: %r %r" % (self.control, self.screen[-200:])
            self.pump()

    def control_of(self, kind):
        self.until(lambda: any(c.get("type") == kind for c in self.control))
        return next(c for c in self.control if c.get("type") == kind)


def sessions(client, **filters):
    body = {"Filters": [{"Name": k.replace("_", "-"), "Values": v} for k, v in filters.items()]}
    return client.call_json("DescribeSessions", body)["Response"]


def whole_cast(client, sid):
    cast, offset = "", 0
    while True:
        p = client.call_json("DescribeSessionRecording", {"SessionId": sid, "Offset": offset})["Response"]
        cast += p["Cast"]
        if p["Complete"]:
            return cast
        offset = p["NextOffset"]


def refused(client, action, body):
    try:
        client.call_json(action, body)
    except TencentCloudSDKException as e:
        return e.code, e.message
    raise AssertionError("%s %s was not refused" % (action, body))


def test_a_recorded_session_is_listed_and_replayed_through_the_sdk(server, client, instance_ids):
    inst, other = instance_ids
    cam = make_cam_client(server)
    tat.next_second()
    owner = call(cam, "GetUserAppId").OwnerUin
    opener = policy_user(cam, [{"effect": "allow", "action": ["tat:StartSession"], "resource": "*"}],
                         ConsoleLogin=1, Password=PASSWORD, NeedResetPassword=0)
    s, r = login(server, opener.Name, PASSWORD)
    assert r.status_code == 200, r.text

    ws = Ws(server, s, "InstanceId=%s&User=root&Cols=80&Rows=24" % inst)
    sid = ws.control_of("opened")["sessionId"]
    ws.send(b"printf 'compat-%s\\n' $((6*7))\r")
    ws.until(lambda: b"compat-42" in ws.screen)
    ws.send(json.dumps({"type": "resize", "cols": 90, "rows": 20}).encode(), opcode=1)
    ws.send(b"exit 4\r")
    assert ws.control_of("exit")["code"] == 4

    # The account: listed with who, where, as whom, how it ended.
    row = tat.poll(lambda: next((x for x in sessions(client, session_id=[sid])["SessionSet"]
                                 if x["State"] == "ENDED"), None), DEADLINE, what="the session to end")
    assert row["InstanceId"] == inst and row["UserName"] == opener.Name, row
    assert row["LoginUser"] == "root" and row["Via"] == "console" and row["ExitCode"] == 4, row
    assert row["BytesOut"] > 0 and row["BytesIn"] > 0 and row["Truncated"] is False, row
    # The recording, parsed line by line: a v2 header, then events in time order.
    cast = whole_cast(client, sid)
    lines = cast.splitlines()
    header = json.loads(lines[0])
    assert header["version"] == 2 and header["width"] == 80 and header["height"] == 24, header
    last, out, kinds = 0.0, "", set()
    for line in lines[1:]:
        t, kind, data = json.loads(line)
        assert t >= last, line
        last = t
        kinds.add(kind)
        if kind == "o":
            out += data
    assert "compat-42" in out, out
    assert "r" in kinds and "i" not in kinds, kinds

    # Sub-users: one allowed on this instance, one on another only.
    def reader(instance):
        res = "qcs::tat:%s:uin/%s:instance/%s" % (tat.REGION, owner, instance)
        u = policy_user(cam, [{"effect": "allow", "resource": [res],
                               "action": ["tat:DescribeSessions", "tat:DescribeSessionRecording"]}],
                        UseApi=1)
        return server.client(u.SecretId, u.SecretKey)

    ann, bob = reader(inst), reader(other)
    mine = sessions(ann, session_id=[sid])
    assert mine["TotalCount"] == 1 and mine["SessionSet"][0]["SessionId"] == sid, mine
    assert whole_cast(ann, sid) == cast
    assert sessions(bob, session_id=[sid])["TotalCount"] == 0
    denied = refused(bob, "DescribeSessionRecording", {"SessionId": sid})
    unknown = refused(bob, "DescribeSessionRecording", {"SessionId": "ses-zzzzzzzz"})
    assert denied[0] == "AuthFailure.UnauthorizedOperation", denied
    assert denied == unknown
    assert inst not in denied[1]
    # The account is told a session does not exist.
    assert refused(client, "DescribeSessionRecording",
                   {"SessionId": "ses-zzzzzzzz"})[0] == "ResourceNotFound.SessionNotFound"
