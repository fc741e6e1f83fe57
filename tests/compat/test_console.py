"""Web-console sign-in: a sub-user's console password opens a session
cookie (HttpOnly, Secure, SameSite=Strict); console API calls need the
session and its CSRF token; sign-out and repeated failures end access."""

import requests

from test_cam import add_user, call, make_cam_client, name

PASSWORD = "Str0ng!Passw0rd"


def url(server, path):
    return "https://%s%s" % (server.addr, path)


def login(server, user, password, session=None):
    s = session or requests.Session()
    r = s.post(url(server, "/console/login"), json={"UserName": user, "Password": password},
               verify=server.cert, timeout=30)
    return s, r


def console_call(server, s, action, body=None, csrf=None, headers=None):
    h = {"X-TC-Action": action, "Content-Type": "application/json"}
    if csrf is not None:
        h["X-CSRF-Token"] = csrf
    h.update(headers or {})
    return s.post(url(server, "/console/api"), json=body or {}, headers=h, verify=server.cert, timeout=30)


def new_console_user(server, read_only=True):
    cam = make_cam_client(server)
    n = name("console")
    u = add_user(cam, Name=n, ConsoleLogin=1, Password=PASSWORD, NeedResetPassword=0)
    if read_only:
        cam_req = {"PolicyId": preset_id(cam, "QcloudTATReadOnlyAccess"), "AttachUin": u.Uin}
        call(cam, "AttachUserPolicy", **cam_req)
    return n


def preset_id(cam, preset):
    return {p.PolicyName: p.PolicyId for p in call(cam, "ListPolicies", Scope="QCS", Rp=200).List}[preset]


def test_sign_in_sets_a_locked_down_cookie_and_the_console_calls_the_api(server):
    user = new_console_user(server)
    s, r = login(server, user, PASSWORD)
    assert r.status_code == 200, r.text
    body = r.json()["Response"]
    assert body["UserName"] == user and body["CsrfToken"]
    set_cookie = r.headers["Set-Cookie"]
    for attr in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
        assert attr in set_cookie, set_cookie
    assert r.headers["Cache-Control"] == "no-store"

    who = s.get(url(server, "/console/session"), verify=server.cert, timeout=30).json()["Response"]
    assert who["UserName"] == user

    ok = console_call(server, s, "DescribeRegions", csrf=body["CsrfToken"]).json()["Response"]
    assert ok["TotalCount"] == 1, ok
    # The same engine decides for console calls: read-only may not write.
    no = console_call(server, s, "CreateRegisterCode", csrf=body["CsrfToken"]).json()["Response"]
    assert no["Error"]["Code"] == "AuthFailure.UnauthorizedOperation", no

    no_csrf = console_call(server, s, "DescribeRegions").json()["Response"]
    assert no_csrf["Error"]["Code"] == "UnauthorizedOperation"
    wrong_csrf = console_call(server, s, "DescribeRegions", csrf="x" * 43).json()["Response"]
    assert wrong_csrf["Error"]["Code"] == "UnauthorizedOperation"
    cross = console_call(server, s, "DescribeRegions", csrf=body["CsrfToken"],
                         headers={"Origin": "https://evil.example"}).json()["Response"]
    assert cross["Error"]["Code"] == "UnauthorizedOperation"

    out = s.post(url(server, "/console/logout"), headers={"X-CSRF-Token": body["CsrfToken"]},
                 verify=server.cert, timeout=30)
    assert out.status_code == 200, out.text
    assert "Max-Age=0" in out.headers["Set-Cookie"]
    # The old cookie value is dead on the server, not just in the browser.
    after = console_call(server, s, "DescribeRegions", csrf=body["CsrfToken"],
                         headers={"Cookie": "drover_session=" + r.cookies["drover_session"]})
    assert after.status_code == 401
    assert after.json()["Response"]["Error"]["Code"] == "AuthFailure.SessionExpired"


def test_failures_look_alike_and_lock_the_account(server):
    user = new_console_user(server)
    _, unknown = login(server, "no_such_user_" + user, PASSWORD)
    _, wrong = login(server, user, "Wrong!Passw0rd")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json()["Response"]["Error"] == wrong.json()["Response"]["Error"]
    assert "Set-Cookie" not in wrong.headers
    for _ in range(4):
        login(server, user, "Wrong!Passw0rd")
    _, locked = login(server, user, PASSWORD)
    assert locked.status_code == 401
    assert locked.json()["Response"]["Error"]["Code"] == "AuthFailure.LoginLocked"


def test_no_cookie_no_access_and_logins_are_audited(server, client):
    r = requests.post(url(server, "/console/api"), json={}, headers={"X-TC-Action": "DescribeRegions"},
                      verify=server.cert, timeout=30)
    assert r.status_code == 401
    user = new_console_user(server)
    login(server, user, PASSWORD)
    login(server, user, "Wrong!Passw0rd")
    ev = client.call_json("DescribeAuditEvents", {
        "Filters": [{"Name": "action", "Values": ["ConsoleLogin"]}], "Limit": 100})["Response"]["AuditEventSet"]
    mine = [e for e in ev if user in e["Resources"]]
    outcomes = sorted(e["Outcome"] for e in mine)
    assert outcomes == ["AuthFailure.LoginFailed", "Success"], mine
    assert all(PASSWORD not in str(e) for e in ev)
