"""Console sessions hold only as long as what opened them (issue 8, finding
"console sessions"): a session ends when the user's password changes, console
login is turned off, a password reset is demanded, or the user is deleted;
and NeedResetPassword is enforced at sign-in, which then only lets the user
set a new password.

Real HTTP against a running server's /console/* endpoints; the account's
changes are made through the official CAM SDK. A dead session is refused
(401 AuthFailure.SessionExpired) and the call it carried changes nothing.
"""

import json

import pytest
import requests

import tat
from test_cam import add_user, call, make_cam_client, name
from test_console import PASSWORD, console_call, login, preset_id, url

FULL = "QcloudTATFullAccess"
NEW_PASSWORD = "N3w!Passw0rd-x"


@pytest.fixture(scope="module")
def cam(server):
    c = make_cam_client(server)
    tat.next_second()  # a new root connection (see tat.next_second)
    return c


def console_user(cam, **fields):
    fields.setdefault("NeedResetPassword", 0)
    u = add_user(cam, Name=name("sess"), ConsoleLogin=1, Password=PASSWORD, **fields)
    call(cam, "AttachUserPolicy", PolicyId=preset_id(cam, FULL), AttachUin=u.Uin)
    return u


def signed_in(server, user_name, password=PASSWORD):
    s, r = login(server, user_name, password)
    assert r.status_code == 200, r.text
    return s, r.json()["Response"]["CsrfToken"]


def session_alive(server, s):
    r = s.get(url(server, "/console/session"), verify=server.cert, timeout=30)
    if r.status_code == 401:
        assert r.json()["Response"]["Error"]["Code"] == "AuthFailure.SessionExpired", r.text
        return False
    assert r.status_code == 200, r.text
    return True


def try_create_command(server, s, csrf):
    return console_call(server, s, "CreateCommand", {"CommandName": tat.uniq("sess"),
                                                     "Content": tat.b64("echo x")}, csrf=csrf)


# (what the account does, how it is done). Each ends every console session.
EVENTS = [
    ("password changed", lambda cam, u: call(cam, "UpdateUser", Name=u.Name, Password=NEW_PASSWORD)),
    ("console login turned off", lambda cam, u: call(cam, "UpdateUser", Name=u.Name, ConsoleLogin=0)),
    ("reset demanded", lambda cam, u: call(cam, "UpdateUser", Name=u.Name, NeedResetPassword=1)),
    ("user deleted", lambda cam, u: call(cam, "DeleteUser", Name=u.Name, Force=1)),
]


@pytest.mark.parametrize("event", EVENTS, ids=[e[0] for e in EVENTS])
def test_sessions_end_when_what_opened_them_changes(server, client, cam, event):
    _, change = event
    u = console_user(cam)
    s1, csrf1 = signed_in(server, u.Name)
    s2, csrf2 = signed_in(server, u.Name)
    # Both sessions work before the change.
    r = try_create_command(server, s1, csrf1)
    assert "Error" not in r.json()["Response"], r.text
    assert session_alive(server, s2)
    # An unrelated change (Remark) ends nothing.
    call(cam, "UpdateUser", Name=u.Name, Remark="still signed in")
    assert session_alive(server, s1) and session_alive(server, s2)

    change(cam, u)
    n = tat.total_commands(client)
    for s, csrf in ((s1, csrf1), (s2, csrf2)):
        r = try_create_command(server, s, csrf)
        assert r.status_code == 401, r.text
        assert r.json()["Response"]["Error"]["Code"] == "AuthFailure.SessionExpired", r.text
        assert not session_alive(server, s)
    assert tat.total_commands(client) == n, "a dead session changed nothing"


def test_a_new_password_ends_the_session_even_when_set_by_the_user_itself(server, cam):
    u = console_user(cam)
    owner = call(cam, "GetUserAppId").OwnerUin
    self_service = {"version": "2.0", "statement": [{
        "effect": "allow", "action": ["cam:UpdateUser"],
        "resource": ["qcs::cam::uin/%s:uin/%s" % (owner, u.Uin)]}]}
    pid = call(cam, "CreatePolicy", PolicyName=name("self"),
               PolicyDocument=json.dumps(self_service)).PolicyId
    call(cam, "AttachUserPolicy", PolicyId=pid, AttachUin=u.Uin)
    s, csrf = signed_in(server, u.Name)
    r = console_call(server, s, "UpdateUser", {"Name": u.Name, "Password": NEW_PASSWORD}, csrf=csrf,
                     headers={"X-TC-Version": "2019-01-16"})
    assert "Error" not in r.json()["Response"], r.text
    assert not session_alive(server, s)
    _, old = login(server, u.Name, PASSWORD)
    assert old.status_code == 401
    signed_in(server, u.Name, NEW_PASSWORD)


def test_need_reset_password_allows_only_setting_a_new_one(server, client, cam):
    u = console_user(cam, NeedResetPassword=1)

    # The right password alone opens nothing; it says a reset is required.
    s, r = login(server, u.Name, PASSWORD)
    assert r.status_code == 401, r.text
    err = r.json()["Response"]["Error"]
    assert err["Code"] == "AuthFailure.PasswordResetRequired", err
    assert "NewPassword" in err["Message"]
    assert "Set-Cookie" not in r.headers
    assert not session_alive(server, s)
    n = tat.total_commands(client)
    assert try_create_command(server, s, "x" * 43).status_code == 401
    assert tat.total_commands(client) == n

    # A wrong password learns nothing about the reset.
    _, wrong = login(server, u.Name, "Wrong!Passw0rd")
    assert wrong.json()["Response"]["Error"]["Code"] == "AuthFailure.LoginFailed"

    def with_new(password, new):
        return requests.post(url(server, "/console/login"),
                             json={"UserName": u.Name, "Password": password, "NewPassword": new},
                             verify=server.cert, timeout=30)

    # (current password, new password, expected error code); none changes anything.
    refused = [
        ("Wrong!Passw0rd", NEW_PASSWORD, "AuthFailure.LoginFailed"),
        (PASSWORD, "short", "InvalidParameter.PasswordViolatedRules"),
        (PASSWORD, PASSWORD, "InvalidParameter.PasswordViolatedRules"),
    ]
    for current, new, code in refused:
        r = with_new(current, new)
        assert r.json()["Response"]["Error"]["Code"] == code, (current, new, r.text)
        assert "Set-Cookie" not in r.headers
        _, again = login(server, u.Name, PASSWORD)
        assert again.json()["Response"]["Error"]["Code"] == "AuthFailure.PasswordResetRequired"

    # Setting a new password signs in; the old one is gone, the new one works.
    r = with_new(PASSWORD, NEW_PASSWORD)
    assert r.status_code == 200, r.text
    s = requests.Session()
    s.cookies.update(r.cookies)
    assert session_alive(server, s)
    ok = try_create_command(server, s, r.json()["Response"]["CsrfToken"])
    assert "Error" not in ok.json()["Response"], ok.text
    _, old = login(server, u.Name, PASSWORD)
    assert old.json()["Response"]["Error"]["Code"] == "AuthFailure.LoginFailed"
    signed_in(server, u.Name, NEW_PASSWORD)
