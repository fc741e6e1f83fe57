"""CAM actions are resource-scoped (issue 8, findings "CAM actions" and the
simulator): a policy's resource decides which user, group or policy an
access-management action reaches, as CAM names them:

    qcs::cam::uin/<OwnerUin>:uin/<Uin>          a user (the account: uin/<OwnerUin>)
    qcs::cam::uin/<OwnerUin>:group/<GroupId>    a group
    qcs::cam::uin/<OwnerUin>:policyid/<PolicyId> a policy

Table-driven with real sub-users and their own keys through the official CAM
SDK (and the TAT SDK's generic call for SimulatePrincipalPolicy). Allowed
calls succeed; denied calls get AuthFailure.UnauthorizedOperation and change
nothing: keys, passwords, attachments and memberships are checked after.
"""

import json
from dataclasses import dataclass

import pytest
import requests

import tat
from tat import expect_error
from test_cam import call, make_cam_client, name

UNAUTH = "AuthFailure.UnauthorizedOperation"
PASSWORD = "Old!Passw0rd-1"
NEW_PASSWORD = "N3w!Passw0rd-2"
FULL = "QcloudTATFullAccess"


@dataclass
class User:
    name: str
    uin: int
    uid: int
    cam: object
    tat: object


class World:
    def __init__(self, server):
        self.server = server
        self.root = make_cam_client(server)
        # A new root connection: let the previous module's last calls (same
        # key, maybe the same parameters) fall in an earlier second, or the
        # replay guard takes this one for a replay (tat.next_second).
        tat.next_second()
        self.owner = call(self.root, "GetUserAppId").OwnerUin
        self.presets = {p.PolicyName: p.PolicyId
                        for p in call(self.root, "ListPolicies", Scope="QCS", Rp=200).List}

    def res(self, kind, rid):
        return "qcs::cam::uin/%s:%s/%s" % (self.owner, kind, rid)

    def user(self, *statements):
        r = call(self.root, "AddUser", Name=name("scope"), UseApi=1, ConsoleLogin=1,
                 Password=PASSWORD, NeedResetPassword=0)
        u = User(r.Name, r.Uin, r.Uid, make_cam_client(self.server, r.SecretId, r.SecretKey),
                 self.server.client(r.SecretId, r.SecretKey))
        if statements:
            doc = {"version": "2.0", "statement": list(statements)}
            pid = call(self.root, "CreatePolicy", PolicyName=name("scope"),
                       PolicyDocument=json.dumps(doc)).PolicyId
            call(self.root, "AttachUserPolicy", PolicyId=pid, AttachUin=r.Uin)
        return u

    # --- what the root sees, to prove denied calls changed nothing -------------
    def keys(self, u):
        return sorted((k.AccessKeyId, k.Status)
                      for k in call(self.root, "ListAccessKeys", TargetUin=u.uin).AccessKeys)

    def policies_of(self, u):
        return sorted(p.PolicyId for p in
                      call(self.root, "ListAttachedUserPolicies", TargetUin=u.uin, Rp=200).List)

    def groups_of(self, u):
        return sorted(g.GroupId for g in
                      call(self.root, "ListGroupsForUser", SubUin=u.uin, Rp=200).GroupInfo)

    def remark(self, u):
        return call(self.root, "GetUser", Name=u.name).Remark

    def can_sign_in(self, u, password):
        r = requests.post("https://%s/console/login" % self.server.addr,
                          json={"UserName": u.name, "Password": password},
                          verify=self.server.cert, timeout=30)
        return r.status_code == 200

    def state(self, *users):
        """Everything a CAM call could have changed about these users."""
        return [(self.keys(u), self.policies_of(u), self.groups_of(u), self.remark(u)) for u in users]


def allow(actions, resources):
    return {"effect": "allow", "action": list(actions), "resource": list(resources)}


@pytest.fixture(scope="module")
def world(server):
    return World(server)


def sim(u, principal_id, action="tat:DescribeCommands"):
    return u.tat.call_json("SimulatePrincipalPolicy",
                           {"PrincipalId": str(principal_id), "Action": action})["Response"]


# =============================================================================
# Self-service: the resource is the caller's own uin.
# =============================================================================

SELF_ACTIONS = ["cam:CreateAccessKey", "cam:ListAccessKeys", "cam:UpdateAccessKey", "cam:DeleteAccessKey",
                "cam:UpdateUser", "cam:GetUser", "cam:ListGroupsForUser", "cam:ListAttachedUserPolicies",
                "cam:AttachUserPolicy", "cam:AddUserToGroup", "cam:SimulatePrincipalPolicy"]


def test_a_self_service_policy_reaches_only_oneself(world):
    w = world
    victim = w.user()
    victim_key = w.keys(victim)[0][0]
    group = call(w.root, "CreateGroup", GroupName=name("scope")).GroupId
    me = w.user()
    # The policy names the user's own uin, known once the user exists.
    doc = {"version": "2.0", "statement": [allow(SELF_ACTIONS, [w.res("uin", me.uin)])]}
    pid = call(w.root, "CreatePolicy", PolicyName=name("self"), PolicyDocument=json.dumps(doc)).PolicyId
    call(w.root, "AttachUserPolicy", PolicyId=pid, AttachUin=me.uin)

    # (description, call, allowed)
    rows = [
        ("own key list", lambda: call(me.cam, "ListAccessKeys"), True),
        ("own GetUser", lambda: call(me.cam, "GetUser", Name=me.name), True),
        ("own remark", lambda: call(me.cam, "UpdateUser", Name=me.name, Remark="mine"), True),
        ("own groups", lambda: call(me.cam, "ListGroupsForUser"), True),
        ("simulate self", lambda: sim(me, me.uin), True),
        ("mint a key for another", lambda: call(me.cam, "CreateAccessKey", TargetUin=victim.uin), False),
        ("list another's keys", lambda: call(me.cam, "ListAccessKeys", TargetUin=victim.uin), False),
        ("disable another's key", lambda: call(me.cam, "UpdateAccessKey", TargetUin=victim.uin,
                                              AccessKeyId=victim_key, Status="Inactive"), False),
        ("delete another's key", lambda: call(me.cam, "DeleteAccessKey", TargetUin=victim.uin,
                                             AccessKeyId=victim_key), False),
        ("reset another's password", lambda: call(me.cam, "UpdateUser", Name=victim.name,
                                                 Password=NEW_PASSWORD), False),
        ("read another user", lambda: call(me.cam, "GetUser", Name=victim.name), False),
        ("probe a name that does not exist", lambda: call(me.cam, "GetUser", Name=name("ghost")), False),
        ("another's policies", lambda: call(me.cam, "ListAttachedUserPolicies", TargetUin=victim.uin), False),
        ("attach full access to oneself", lambda: call(me.cam, "AttachUserPolicy",
                                                      PolicyId=w.presets[FULL], AttachUin=me.uin), False),
        ("join a group", lambda: call(me.cam, "AddUserToGroup",
                                      Info=[{"GroupId": group, "Uid": me.uid}]), False),
        ("simulate another", lambda: sim(me, victim.uin), False),
        ("simulate the account", lambda: sim(me, "root"), False),
    ]
    for what, fn, allowed in rows:
        before = w.state(me, victim)
        if allowed:
            r = fn()
            assert r is not None, what
        else:
            err = expect_error(UNAUTH, fn)
            assert err.message.startswith("you are not authorized to perform cam:"), (what, err.message)
            assert w.state(me, victim) == before, "%s changed something" % what
    assert w.can_sign_in(victim, PASSWORD), "the victim's password is unchanged"
    assert dict(w.keys(victim))[victim_key] == "Active"

    # Minting one's own key works (and only for oneself).
    n = len(w.keys(me))
    k = call(me.cam, "CreateAccessKey", Description="self").AccessKey
    assert len(w.keys(me)) == n + 1 and k.AccessKeyId in dict(w.keys(me))
    call(me.cam, "UpdateAccessKey", AccessKeyId=k.AccessKeyId, Status="Inactive")
    call(me.cam, "DeleteAccessKey", AccessKeyId=k.AccessKeyId)
    assert len(w.keys(me)) == n
    # The simulator explains the principal named, not the caller.
    assert sim(me, me.uin, "cam:CreateAccessKey")["Allowed"] is False  # no resource given: `*`


# =============================================================================
# A helpdesk granted on one user, one group and one policy.
# =============================================================================

def test_a_grant_on_one_user_group_and_policy_reaches_exactly_those(world):
    w = world
    target, other = w.user(), w.user()
    group = call(w.root, "CreateGroup", GroupName=name("scope")).GroupId
    other_group = call(w.root, "CreateGroup", GroupName=name("scope")).GroupId
    doc = {"version": "2.0", "statement": [{"effect": "allow", "action": ["tat:DescribeRegions"],
                                            "resource": ["*"]}]}
    pol = call(w.root, "CreatePolicy", PolicyName=name("scope"), PolicyDocument=json.dumps(doc)).PolicyId
    T, G, P = w.res("uin", target.uin), w.res("group", group), w.res("policyid", pol)
    desk = w.user(
        allow(["cam:UpdateUser", "cam:CreateAccessKey", "cam:ListAccessKeys", "cam:GetUser",
               "cam:SimulatePrincipalPolicy"], [T]),
        allow(["cam:AttachUserPolicy", "cam:DetachUserPolicy"], [P, T]),
        allow(["cam:AddUserToGroup", "cam:RemoveUserFromGroup"], [G, T]),
        allow(["cam:AttachGroupPolicy"], [G, P]),
        allow(["cam:GetGroup", "cam:ListUsersForGroup"], [G]),
        allow(["cam:GetPolicy"], [P]),
    )
    rows = [
        # (description, call, allowed)
        ("reset the granted user's password",
         lambda: call(desk.cam, "UpdateUser", Name=target.name, Password=NEW_PASSWORD), True),
        ("reset another's password",
         lambda: call(desk.cam, "UpdateUser", Name=other.name, Password=NEW_PASSWORD), False),
        ("mint a key for the granted user", lambda: call(desk.cam, "CreateAccessKey", TargetUin=target.uin), True),
        ("mint a key for another", lambda: call(desk.cam, "CreateAccessKey", TargetUin=other.uin), False),
        ("mint a key for oneself", lambda: call(desk.cam, "CreateAccessKey"), False),
        ("attach the granted policy to the granted user",
         lambda: call(desk.cam, "AttachUserPolicy", PolicyId=pol, AttachUin=target.uin), True),
        ("attach the granted policy to another",
         lambda: call(desk.cam, "AttachUserPolicy", PolicyId=pol, AttachUin=other.uin), False),
        ("attach the granted policy to oneself",
         lambda: call(desk.cam, "AttachUserPolicy", PolicyId=pol, AttachUin=desk.uin), False),
        ("attach full access to the granted user",
         lambda: call(desk.cam, "AttachUserPolicy", PolicyId=w.presets[FULL], AttachUin=target.uin), False),
        ("add the granted user to the granted group",
         lambda: call(desk.cam, "AddUserToGroup", Info=[{"GroupId": group, "Uid": target.uid}]), True),
        ("add the granted user to another group",
         lambda: call(desk.cam, "AddUserToGroup", Info=[{"GroupId": other_group, "Uid": target.uid}]), False),
        ("add another to the granted group",
         lambda: call(desk.cam, "AddUserToGroup", Info=[{"GroupId": group, "Uin": other.uin}]), False),
        ("one allowed and one denied pair: all or nothing",
         lambda: call(desk.cam, "RemoveUserFromGroup", Info=[{"GroupId": group, "Uid": target.uid},
                                                             {"GroupId": group, "Uid": other.uid}]), False),
        ("attach the granted policy to the granted group",
         lambda: call(desk.cam, "AttachGroupPolicy", PolicyId=pol, AttachGroupId=group), True),
        ("attach the granted policy to another group",
         lambda: call(desk.cam, "AttachGroupPolicy", PolicyId=pol, AttachGroupId=other_group), False),
        ("read the granted group", lambda: call(desk.cam, "GetGroup", GroupId=group), True),
        ("read another group", lambda: call(desk.cam, "GetGroup", GroupId=other_group), False),
        ("read the granted policy", lambda: call(desk.cam, "GetPolicy", PolicyId=pol), True),
        ("read a preset policy", lambda: call(desk.cam, "GetPolicy", PolicyId=w.presets[FULL]), False),
        ("simulate the granted user", lambda: sim(desk, target.uin), True),
        ("simulate another", lambda: sim(desk, other.uin), False),
    ]
    for what, fn, allowed in rows:
        before = w.state(target, other, desk)
        if allowed:
            fn()
        else:
            expect_error(UNAUTH, fn)
            assert w.state(target, other, desk) == before, "%s changed something" % what
    assert w.can_sign_in(target, NEW_PASSWORD) and not w.can_sign_in(target, PASSWORD)
    assert w.can_sign_in(other, PASSWORD)
    assert pol in w.policies_of(target) and pol not in w.policies_of(other)
    assert w.groups_of(target) == [group] and w.groups_of(other) == []
    # The simulator answers for the principal named: the target now holds
    # `pol` (DescribeRegions), the helpdesk does not.
    assert sim(desk, target.uin, "tat:DescribeRegions")["Allowed"] is True
    assert sim(desk, target.uin, "tat:RunCommand")["Allowed"] is False


def test_wildcards_follow_cam(world):
    w = world
    a, b = w.user(), w.user()
    any_user = w.user(allow(["cam:GetUser"], [w.res("uin", "*")]))
    whole_account = w.user(allow(["cam:GetUser"], ["qcs::cam::uin/%s:*" % w.owner]))
    other_account = w.user(allow(["cam:GetUser"], ["qcs::cam::uin/1:uin/*"]))
    wrong_kind = w.user(allow(["cam:GetUser"], [w.res("group", "*")]))
    for u, allowed in [(any_user, True), (whole_account, True), (other_account, False), (wrong_kind, False)]:
        for target in (a, b):
            if allowed:
                assert call(u.cam, "GetUser", Name=target.name).Uin == target.uin
            else:
                expect_error(UNAUTH, call, u.cam, "GetUser", Name=target.name)
    # Granted on every user, an unknown name is plainly not found.
    expect_error("ResourceNotFound.UserNotExist", call, any_user.cam, "GetUser", Name=name("ghost"))


def test_the_simulator_never_answers_with_the_callers_own_decision(world, client):
    w = world
    # A caller that may simulate itself and holds full TAT access...
    rich = w.user(allow(["cam:SimulatePrincipalPolicy"], [w.res("uin", "*")]))
    call(w.root, "AttachUserPolicy", PolicyId=w.presets[FULL], AttachUin=rich.uin)
    poor = w.user()
    # ...asks about a user with nothing: the answer is the poor user's.
    r = sim(rich, poor.uin, "tat:RunCommand")
    assert r["Allowed"] is False and r["Reason"] == "ImplicitDeny", r
    assert sim(rich, rich.uin, "tat:RunCommand")["Allowed"] is True
    # The account is explained as the account (allowed), not as the caller.
    assert sim(rich, "root", "cam:AddUser")["Allowed"] is True
    assert sim(rich, rich.uin, "cam:AddUser")["Allowed"] is False
    # A caller without the grant on a principal is refused for it.
    self_only = w.user()
    doc = {"version": "2.0", "statement": [allow(["cam:SimulatePrincipalPolicy"], [w.res("uin", self_only.uin)])]}
    pid = call(w.root, "CreatePolicy", PolicyName=name("sim"), PolicyDocument=json.dumps(doc)).PolicyId
    call(w.root, "AttachUserPolicy", PolicyId=pid, AttachUin=self_only.uin)
    for principal in (poor.uin, rich.uin, "root", w.owner):
        err = expect_error(UNAUTH, sim, self_only, principal)
        assert "cam:SimulatePrincipalPolicy" in err.message
    assert sim(self_only, self_only.uin, "tat:RunCommand")["Allowed"] is False
    # The root may simulate anyone.
    assert tat_sim(client, poor.uin)["Allowed"] is False


def tat_sim(client, principal_id):
    return client.call_json("SimulatePrincipalPolicy",
                            {"PrincipalId": str(principal_id), "Action": "tat:RunCommand"})["Response"]


def test_one_self_service_policy_for_a_group_with_policy_variables(world):
    """`${uin}` is each caller's own uin: one policy attached to a group lets
    every member manage only their own keys and password."""
    w = world
    doc = {"version": "2.0", "statement": [allow(
        ["cam:CreateAccessKey", "cam:ListAccessKeys", "cam:DeleteAccessKey", "cam:UpdateUser"],
        ["qcs::cam::uin/${owner_uin}:uin/${uin}"])]}
    pid = call(w.root, "CreatePolicy", PolicyName=name("vars"), PolicyDocument=json.dumps(doc)).PolicyId
    group = call(w.root, "CreateGroup", GroupName=name("vars")).GroupId
    call(w.root, "AttachGroupPolicy", PolicyId=pid, AttachGroupId=group)
    a, b = w.user(), w.user()
    call(w.root, "AddUserToGroup", Info=[{"GroupId": group, "Uid": a.uid}, {"GroupId": group, "Uid": b.uid}])
    for me, other in ((a, b), (b, a)):
        before = w.state(other)
        k = call(me.cam, "CreateAccessKey").AccessKey.AccessKeyId
        assert k in dict(w.keys(me))
        call(me.cam, "DeleteAccessKey", AccessKeyId=k)
        call(me.cam, "UpdateUser", Name=me.name, Remark="own")
        expect_error(UNAUTH, call, me.cam, "CreateAccessKey", TargetUin=other.uin)
        expect_error(UNAUTH, call, me.cam, "UpdateUser", Name=other.name, Password=NEW_PASSWORD)
        assert w.state(other) == before
        assert w.can_sign_in(other, PASSWORD)
