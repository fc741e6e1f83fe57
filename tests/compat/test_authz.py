"""Authorization end to end: real sub-users with real keys, created through the
official CAM SDK, call TAT against a running server with two real agents.

Table-driven over
  * the fifteen worked policy examples of the TAT access-management seed
    (shared/seeds/000_067afd971f31eadb.txt, 授权方案示例), in the seed's order;
  * the role rows of the Azure Automation seed (004_3239eddc559e54b4.txt),
    bound with drover's CreateRoleAssignment;
plus tag conditions, wildcards, deny-overrides-allow, group inheritance, key
deactivation, list filtering, the simulator's explanations and the audit log.

Allowed calls succeed (and runs really run: SUCCESS); denied calls get
AuthFailure.UnauthorizedOperation naming the action and resource, and change
nothing (the root's counts before and after are equal).

`$account` in the seed is `uin/<OwnerUin>` (OwnerUin from CAM GetUserAppId);
the region is the server's, ap-guangzhou. drover manages no CVM (`ins-`) or
Lighthouse (`lhins-`) instances: where an example names one, its drover
counterpart names one of the real managed instances,
`qcs::tat:ap-guangzhou:uin/<OwnerUin>:instance/mi-...`.
"""

import json
from dataclasses import dataclass, field
from typing import Callable

import pytest

import tat
from tat import b64, uniq
from test_cam import call as cam_call
from test_cam import make_cam_client

UNAUTH = "AuthFailure.UnauthorizedOperation"
FULL = "QcloudTATFullAccess"
READ_ONLY = "QcloudTATReadOnlyAccess"
DOC_ERRORS = {"InvalidParameter.PolicyDocumentError", "InvalidParameter.VersionError",
              "InvalidParameter.StatementError", "InvalidParameter.ActionError",
              "InvalidParameter.ResourceError", "InvalidParameter.EffectError"}


def cam_name(prefix):
    return uniq(prefix).replace("-", "_")


def doc(*statements):
    return {"version": "2.0", "statement": list(statements)}


def stmt(effect, actions, resources, condition=None):
    s = {"effect": effect, "action": list(actions), "resource": list(resources)}
    if condition:
        s["condition"] = condition
    return s


@dataclass
class Sub:
    """A sub-user with its own key and clients."""
    name: str
    uin: int
    secret_id: str
    secret_key: str
    tat: object
    cam: object
    policy_ids: list = field(default_factory=list)

    def call(self, action, **fields):
        return tat.call(self.tat, action, **fields)

    def json(self, action, **fields):
        return self.tat.call_json(action, fields)["Response"]


class Env:
    def __init__(self, server, cam, instances, root=None):
        self.server = server
        self.cam = cam
        # The suite's one root client: a second root client would open a
        # second connection, and two different calls with identical
        # parameters signed in the same second by one key on two
        # connections are refused by the replay guard.
        self.root = root or server.client()
        self.owner = cam_call(cam, "GetUserAppId").OwnerUin
        self.a, self.b = instances
        self.presets = {p.PolicyName: p.PolicyId
                        for p in cam_call(cam, "ListPolicies", Scope="QCS", Rp=200).List}

    # --- resource names as policies write them --------------------------------
    def qcs(self, kind, rid):
        return "qcs::tat:%s:uin/%s:%s/%s" % (tat.REGION, self.owner, kind, rid)

    def cmd(self, cid):
        return self.qcs("command", cid)

    def mi(self, iid):
        return self.qcs("instance", iid)

    # --- principals -----------------------------------------------------------
    def policy(self, document):
        return cam_call(self.cam, "CreatePolicy", PolicyName=cam_name("authz"),
                        PolicyDocument=json.dumps(document)).PolicyId

    def user(self, *documents, presets=()):
        """A fresh sub-user with an API key, each document a policy attached to it."""
        r = cam_call(self.cam, "AddUser", Name=cam_name("authz"), UseApi=1)
        sub = Sub(r.Name, r.Uin, r.SecretId, r.SecretKey,
                  self.server.client(r.SecretId, r.SecretKey),
                  make_cam_client(self.server, r.SecretId, r.SecretKey))
        for d in documents:
            pid = self.policy(d)
            sub.policy_ids.append(pid)
            cam_call(self.cam, "AttachUserPolicy", PolicyId=pid, AttachUin=r.Uin)
        for p in presets:
            cam_call(self.cam, "AttachUserPolicy", PolicyId=self.presets[p], AttachUin=r.Uin)
        return sub

    # --- root-side fixtures and counters ----------------------------------------
    def command(self, script="echo authz", tags=None, **fields):
        f = {"CommandName": uniq("authz"), "Content": b64(script)}
        if tags:
            f["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
        f.update(fields)
        return tat.call(self.root, "CreateCommand", **f).CommandId

    def commands(self, n):
        return [self.command("echo authz-%d" % i) for i in range(n)]

    def get_command(self, cid):
        rsp = tat.call(self.root, "DescribeCommands", CommandIds=[cid])
        return rsp.CommandSet[0] if rsp.TotalCount else None

    def n_commands(self):
        return tat.total_commands(self.root)

    def n_invocations(self):
        return tat.total_invocations(self.root)

    def invoke(self, cid, instances):
        """Root invokes and waits; returns (invocation id, {instance: task id})."""
        inv = tat.call(self.root, "InvokeCommand", CommandId=cid, InstanceIds=list(instances)).InvocationId
        self.succeeded(inv)
        return inv, {t.InstanceId: t.InvocationTaskId for t in tat.tasks(self.root, inv)}

    def succeeded(self, inv_id):
        """The invocation (whoever started it) really ran: SUCCESS everywhere."""
        i = tat.wait_invocation(self.root, inv_id, deadline_s=30)
        assert i.InvocationStatus == "SUCCESS", i.InvocationStatus
        ts = tat.wait_tasks(self.root, inv_id, deadline_s=30)
        assert ts and all(t.TaskStatus == "SUCCESS" for t in ts), [t.TaskStatus for t in ts]
        return ts


def denied(fn, *args, action=None, resource=None, **kwargs):
    """The call is refused with UnauthorizedOperation naming action and resource."""
    err = tat.expect_error(UNAUTH, fn, *args, **kwargs)
    if action:
        assert action in err.message, err.message
    if resource:
        assert resource in err.message, err.message
    return err


def sub_denied(sub, action, resource=None, **fields):
    return denied(sub.call, action, action="tat:" + action, resource=resource, **fields)


@pytest.fixture(scope="module")
def env(server, instance_ids, client):
    return Env(server, make_cam_client(server), instance_ids, client)


# =============================================================================
# The fifteen worked examples of the TAT seed
# =============================================================================

@dataclass
class Example:
    no: int
    title: str
    documents: Callable  # (env, ids) -> [policy document]
    with_full: bool      # deny examples are shown beside QcloudTATFullAccess
    check: Callable      # (env, sub, ids) -> None


def res_cmd(*names):
    return lambda e, ids: [e.cmd(ids[n]) for n in names]


def check_01(e, u, ids):
    x, y = ids["X"], ids["Y"]
    u.call("ModifyCommand", CommandId=x, Description="modified by sub-user")
    assert e.get_command(x).Description == "modified by sub-user"
    before = e.get_command(y)
    sub_denied(u, "ModifyCommand", e.cmd(y), CommandId=y, Description="nope")
    sub_denied(u, "DeleteCommand", e.cmd(y), CommandId=y)
    after = e.get_command(y)
    assert after is not None and after.Description == before.Description
    n = e.n_invocations()
    sub_denied(u, "RunCommand", Content=b64("echo no"), InstanceIds=[e.a])
    sub_denied(u, "InvokeCommand", CommandId=x, InstanceIds=[e.a])
    assert e.n_invocations() == n
    n = e.n_commands()
    u.call("DeleteCommand", CommandId=x)
    assert e.get_command(x) is None and e.n_commands() == n - 1


def check_02(e, u, ids):
    x, y = ids["X"], ids["Y"]
    assert e.n_commands() >= 2
    listed = u.call("DescribeCommands", Limit=100)
    assert listed.TotalCount == 1 and [c.CommandId for c in listed.CommandSet] == [x]
    assert listed.CommandSet[0].Content == "", "DescribeCommandContent not granted: Content blank"
    assert u.call("DescribeCommands", CommandIds=[x]).CommandSet[0].CommandId == x
    sub_denied(u, "DescribeCommands", e.cmd(y), CommandIds=[y])
    sub_denied(u, "DescribeCommands", e.cmd(y), CommandIds=[x, y])
    desc = e.get_command(x).Description
    sub_denied(u, "ModifyCommand", e.cmd(x), CommandId=x, Description="nope")
    assert e.get_command(x).Description == desc


def check_03(e, u, ids):
    x, y = ids["X"], ids["Y"]
    inv_x, tasks_x = e.invoke(x, [e.a, e.b])
    inv_y, tasks_y = e.invoke(y, [e.a])
    invs = u.call("DescribeInvocations", Limit=100)
    assert {i.CommandId for i in invs.InvocationSet} == {x}
    assert invs.TotalCount == len(invs.InvocationSet) and inv_x in [i.InvocationId for i in invs.InvocationSet]
    assert u.call("DescribeInvocations", InvocationIds=[inv_x]).TotalCount == 1
    sub_denied(u, "DescribeInvocations", e.cmd(y), InvocationIds=[inv_y])
    ts = tat.tasks(u.tat, inv_x)
    assert sorted(t.InstanceId for t in ts) == sorted([e.a, e.b])
    assert all(t.TaskStatus == "SUCCESS" for t in ts)
    assert tat.tasks(u.tat, inv_y) == []
    got = u.call("DescribeInvocationTasks", InvocationTaskIds=[tasks_x[e.a]])
    assert got.TotalCount == 1
    sub_denied(u, "DescribeInvocationTasks", e.cmd(y), InvocationTaskIds=[tasks_y[e.a]])
    n = e.n_invocations()
    sub_denied(u, "InvokeCommand", CommandId=x, InstanceIds=[e.a])
    assert e.n_invocations() == n


def check_04(e, u, ids):
    x, y = ids["X"], ids["Y"]
    # The seed prints this example split over a page break: the first block
    # has no action, the second names `tat:InvokeCommands`, no action at all.
    # Both printed forms are refused by CreatePolicy, pointing at the action.
    for printed in (doc({"effect": "deny", "resource": [e.cmd(x)]}),
                    doc(stmt("deny", ["tat:InvokeCommands"], [e.cmd(x)]))):
        err = tat.expect_error(DOC_ERRORS, cam_call, e.cam, "CreatePolicy", PolicyName=cam_name("printed"),
                               PolicyDocument=json.dumps(printed))
        assert "action" in err.message, err.message
    n = e.n_invocations()
    sub_denied(u, "InvokeCommand", e.cmd(x), CommandId=x, InstanceIds=[e.a])
    assert e.n_invocations() == n
    e.succeeded(u.call("InvokeCommand", CommandId=y, InstanceIds=[e.a]).InvocationId)
    assert u.call("DescribeCommands", CommandIds=[x]).TotalCount == 1


def check_05(e, u, ids):
    x = ids["X"]
    n = e.n_invocations()
    sub_denied(u, "RunCommand", Content=b64("echo no"), InstanceIds=[e.a])
    sub_denied(u, "InvokeCommand", e.cmd(x), CommandId=x, InstanceIds=[e.b])
    assert e.n_invocations() == n
    # Everything else FullAccess grants still works.
    mine = u.call("CreateCommand", CommandName=uniq("authz"), Content=b64("echo mine")).CommandId
    sub_denied(u, "InvokeCommand", e.cmd(mine), CommandId=mine, InstanceIds=[e.a])
    assert e.n_invocations() == n
    u.call("DescribeInvocations", Limit=10)


def deny_run_on_one_instance(inst):
    def check(e, u, ids):
        x = ids["X"]
        target = getattr(e, inst)
        other = e.b if target == e.a else e.a
        n = e.n_invocations()
        sub_denied(u, "InvokeCommand", e.mi(target), CommandId=x, InstanceIds=[target])
        sub_denied(u, "InvokeCommand", e.mi(target), CommandId=x, InstanceIds=[other, target])
        assert e.n_invocations() == n
        e.succeeded(u.call("InvokeCommand", CommandId=x, InstanceIds=[other]).InvocationId)
        n = e.n_invocations()
        sub_denied(u, "RunCommand", e.mi(target), Content=b64("echo no"), InstanceIds=[e.a, e.b])
        assert e.n_invocations() == n
        e.succeeded(u.call("RunCommand", Content=b64("echo ok"), InstanceIds=[other]).InvocationId)
    return check


def check_deny_run_on_any_instance(e, u, ids):
    x = ids["X"]
    n = e.n_invocations()
    sub_denied(u, "RunCommand", Content=b64("echo no"), InstanceIds=[e.a])
    sub_denied(u, "InvokeCommand", CommandId=x, InstanceIds=[e.b])
    assert e.n_invocations() == n
    u.call("CreateCommand", CommandName=uniq("authz"), Content=b64("echo fine"))
    assert u.call("DescribeCommands", CommandIds=[x]).TotalCount == 1


def allow_invoke_on_one_instance(inst):
    def check(e, u, ids):
        x, y, z = ids["X"], ids["Y"], ids["Z"]
        target = getattr(e, inst)
        other = e.b if target == e.a else e.a
        e.succeeded(u.call("InvokeCommand", CommandId=x, InstanceIds=[target]).InvocationId)
        e.succeeded(u.call("InvokeCommand", CommandId=y, InstanceIds=[target]).InvocationId)
        n = e.n_invocations()
        # Every resource must be allowed: another command, or another instance.
        sub_denied(u, "InvokeCommand", e.cmd(z), CommandId=z, InstanceIds=[target])
        sub_denied(u, "InvokeCommand", e.mi(other), CommandId=x, InstanceIds=[target, other])
        sub_denied(u, "RunCommand", Content=b64("echo no"), InstanceIds=[target])
        assert e.n_invocations() == n
    return check


def deny_tasks_on_one_instance(inst):
    def check(e, u, ids):
        target = getattr(e, inst)
        other = e.b if target == e.a else e.a
        inv, task = e.invoke(ids["X"], [e.a, e.b])
        ts = tat.tasks(u.tat, inv)
        assert [t.InstanceId for t in ts] == [other], "the denied instance's task is not listed"
        rsp = u.call("DescribeInvocationTasks", Filters=[{"Name": "invocation-id", "Values": [inv]}])
        assert rsp.TotalCount == 1
        sub_denied(u, "DescribeInvocationTasks", e.mi(target), InvocationTaskIds=[task[target]])
        assert u.call("DescribeInvocationTasks", InvocationTaskIds=[task[other]]).TotalCount == 1
        # Other actions on the same instance are untouched.
        assert u.call("DescribeInvocations", InvocationIds=[inv]).TotalCount == 1
    return check


def deny_agent_status_of_one_instance(inst):
    def check(e, u, ids):
        target = getattr(e, inst)
        other = e.b if target == e.a else e.a
        seen = {a.InstanceId for a in u.call("DescribeAutomationAgentStatus", Limit=100).AutomationAgentSet}
        assert other in seen and target not in seen
        sub_denied(u, "DescribeAutomationAgentStatus", e.mi(target), InstanceIds=[target])
        sub_denied(u, "DescribeAutomationAgentStatus", e.mi(target), InstanceIds=[other, target])
        got = u.call("DescribeAutomationAgentStatus", InstanceIds=[other]).AutomationAgentSet
        assert [(a.InstanceId, a.AgentStatus) for a in got] == [(other, "Online")]
        # Other actions on the same instance are untouched.
        e.succeeded(u.call("RunCommand", Content=b64("echo ok"), InstanceIds=[target]).InvocationId)
    return check


RUN = ["tat:InvokeCommand", "tat:RunCommand"]

EXAMPLES = [
    Example(1, "allow_modify_and_delete_command",
            # The seed prints `tat>DeleteCommand` (a typesetting slip); see
            # test_seed_example_01_printed_document_is_refused.
            lambda e, i: [doc(stmt("allow", ["tat:ModifyCommand", "tat:DeleteCommand"], [e.cmd(i["X"])]))],
            False, check_01),
    Example(2, "allow_describe_command",
            lambda e, i: [doc(stmt("allow", ["tat:DescribeCommands"], [e.cmd(i["X"])]))],
            False, check_02),
    Example(3, "allow_describe_command_results",
            lambda e, i: [doc(stmt("allow", ["tat:DescribeInvocations", "tat:DescribeInvocationTasks"],
                                   [e.cmd(i["X"])]))],
            False, check_03),
    Example(4, "deny_invoking_a_command",
            # What the split, misprinted example means: no running cmd-X.
            lambda e, i: [doc(stmt("deny", RUN, [e.cmd(i["X"])]))],
            True, check_04),
    Example(5, "deny_invoking_any_command",
            lambda e, i: [doc(stmt("deny", RUN, [e.cmd("*")]))],
            True, check_05),
    Example(6, "deny_running_on_a_cvm_instance",
            # CVM ins-xxxxxxxx -> drover's managed instance mi-A.
            lambda e, i: [doc(stmt("deny", RUN, [e.mi(e.a)]))],
            True, deny_run_on_one_instance("a")),
    Example(7, "deny_running_on_any_cvm_instance",
            # qcs::cvm:...:instance/* -> qcs::tat:...:instance/* (managed instances).
            lambda e, i: [doc(stmt("deny", RUN, [e.mi("*")]))],
            True, check_deny_run_on_any_instance),
    Example(8, "deny_running_on_a_lighthouse_instance",
            # Lighthouse lhins-xxxxxxxx -> drover's managed instance mi-B.
            lambda e, i: [doc(stmt("deny", RUN, [e.mi(e.b)]))],
            True, deny_run_on_one_instance("b")),
    Example(9, "deny_running_on_any_lighthouse_instance",
            # qcs::lighthouse:...:instance/* -> qcs::tat:...:instance/*.
            lambda e, i: [doc(stmt("deny", RUN, [e.mi("*")]))],
            True, check_deny_run_on_any_instance),
    Example(10, "allow_invoking_commands_on_a_cvm_instance",
            # ins-xxxxxxxx -> mi-A.
            lambda e, i: [doc(stmt("allow", ["tat:InvokeCommand"],
                                   [e.mi(e.a), e.cmd(i["X"]), e.cmd(i["Y"])]))],
            False, allow_invoke_on_one_instance("a")),
    Example(11, "allow_invoking_commands_on_a_lighthouse_instance",
            # lhins-xxxxxxxxx -> mi-B.
            lambda e, i: [doc(stmt("allow", ["tat:InvokeCommand"],
                                   [e.mi(e.b), e.cmd(i["X"]), e.cmd(i["Y"])]))],
            False, allow_invoke_on_one_instance("b")),
    Example(12, "deny_describing_tasks_on_a_cvm_instance",
            lambda e, i: [doc(stmt("deny", ["tat:DescribeInvocationTasks"], [e.mi(e.a)]))],
            True, deny_tasks_on_one_instance("a")),
    Example(13, "deny_describing_tasks_on_a_lighthouse_instance",
            lambda e, i: [doc(stmt("deny", ["tat:DescribeInvocationTasks"], [e.mi(e.b)]))],
            True, deny_tasks_on_one_instance("b")),
    Example(14, "deny_agent_status_of_a_cvm_instance",
            lambda e, i: [doc(stmt("deny", ["tat:DescribeAutomationAgentStatus"], [e.mi(e.a)]))],
            True, deny_agent_status_of_one_instance("a")),
    Example(15, "deny_agent_status_of_a_lighthouse_instance",
            lambda e, i: [doc(stmt("deny", ["tat:DescribeAutomationAgentStatus"], [e.mi(e.b)]))],
            True, deny_agent_status_of_one_instance("b")),
]


@pytest.mark.parametrize("ex", EXAMPLES,
                         ids=lambda ex: "%02d_%s" % (ex.no, ex.title))
def test_tat_seed_example(env, ex):
    ids = dict(zip("XYZ", env.commands(3)))
    u = env.user(*ex.documents(env, ids), presets=[FULL] if ex.with_full else [])
    ex.check(env, u, ids)


def test_seed_example_01_printed_document_is_refused(env):
    """The seed prints `tat>DeleteCommand`; CreatePolicy refuses it and points at it."""
    x = env.command()
    n = cam_call(env.cam, "ListPolicies", Scope="Local", Rp=200).TotalNum
    printed = doc(stmt("allow", ["tat:ModifyCommand", "tat>DeleteCommand"], [env.cmd(x)]))
    err = tat.expect_error("InvalidParameter.ActionError", cam_call, env.cam, "CreatePolicy",
                           PolicyName=cam_name("printed"), PolicyDocument=json.dumps(printed))
    assert "action[1]" in err.message, err.message
    assert cam_call(env.cam, "ListPolicies", Scope="Local", Rp=200).TotalNum == n


def test_full_access_sub_user_runs_a_command(env):
    """QcloudTATFullAccess lets a sub-user run a command on an instance."""
    u = env.user(presets=[FULL])
    env.succeeded(u.call("RunCommand", Content=b64("echo ok"), InstanceIds=[env.a]).InvocationId)


def test_seed_cvm_and_lighthouse_resources_do_not_name_managed_instances(env):
    """The seed's literal CVM/Lighthouse resources name other services'
    instances: a deny on `qcs::cvm:...:instance/*` leaves drover's mi- alone."""
    u = env.user(doc(stmt("deny", RUN, ["qcs::cvm:ap-guangzhou:uin/%s:instance/*" % env.owner,
                                        "qcs::lighthouse:ap-guangzhou:uin/%s:instance/*" % env.owner])),
                 presets=[FULL])
    env.succeeded(u.call("RunCommand", Content=b64("echo ok"), InstanceIds=[env.a]).InvocationId)


# =============================================================================
# Azure Automation roles, bound with CreateRoleAssignment
# =============================================================================

def assign(env, principal, role, scope="account", kind="User"):
    r = env.root.call_json("CreateRoleAssignment", {"PrincipalType": kind, "PrincipalId": str(principal),
                                                    "RoleName": role, "Scope": scope})["Response"]
    assert r["RoleAssignmentId"]
    return r["RoleAssignmentId"]


def role_user(env, *assignments):
    """A fresh sub-user holding only the given (role, scope) assignments."""
    u = env.user()
    for role, scope in assignments:
        assign(env, u.uin, role, scope)
    return u


def n_local_policies(env):
    return cam_call(env.cam, "ListPolicies", Scope="Local", Rp=200).TotalNum


def n_assignments(env):
    return env.root.call_json("ListRoleAssignments", {"Limit": 100})["Response"]["TotalCount"]


def cam_denied(u, action, **fields):
    return denied(cam_call, u.cam, action, action="cam:" + action, **fields)


def suspend_and_resume(env, u, inv):
    """Job control (drover extension, sent with call_json) as `u`."""
    u.json("SuspendInvocation", InvocationId=inv)
    tat.poll(lambda: tat.describe_invocation(env.root, inv).InvocationStatus == "SUSPENDED", 15,
             what="invocation SUSPENDED")
    u.json("ResumeInvocation", InvocationId=inv)
    tat.poll(lambda: tat.describe_invocation(env.root, inv).InvocationStatus == "RUNNING", 15,
             what="invocation RUNNING again")


def running_invocation(env, instances):
    rsp = tat.call(env.root, "RunCommand", Content=b64("sleep 30"), InstanceIds=list(instances), Timeout=60)

    def running():
        ts = tat.tasks(env.root, rsp.InvocationId)
        return ts if len(ts) == len(instances) and all(t.TaskStatus == "RUNNING" for t in ts) else None
    tat.poll(running, 15, what="tasks RUNNING")
    return rsp.InvocationId


def cannot_change_access(env, u):
    """CreatePolicy, AttachUserPolicy and CreateRoleAssignment are all refused and change nothing."""
    victim = env.user()
    np_, na = n_local_policies(env), n_assignments(env)
    cam_denied(u, "CreatePolicy", PolicyName=cam_name("x"), PolicyDocument=json.dumps(
        doc(stmt("allow", ["*"], ["*"]))))
    cam_denied(u, "AttachUserPolicy", PolicyId=env.presets[FULL], AttachUin=victim.uin)
    denied(u.json, "CreateRoleAssignment", action="CreateRoleAssignment", PrincipalType="User",
           PrincipalId=str(u.uin), RoleName="Owner", Scope="account")
    assert (n_local_policies(env), n_assignments(env)) == (np_, na)
    assert cam_call(env.cam, "ListAttachedUserPolicies", TargetUin=victim.uin).TotalNum == 0


def role_owner(env, u, x, y):
    e = env
    e.succeeded(u.call("InvokeCommand", CommandId=y, InstanceIds=[e.a]).InvocationId)
    assert u.call("DescribeCommands", CommandIds=[x]).CommandSet[0].Content == b64("echo authz-0")
    pid = cam_call(u.cam, "CreatePolicy", PolicyName=cam_name("own"),
                   PolicyDocument=json.dumps(doc(stmt("allow", ["tat:Describe*"], ["*"])))).PolicyId
    other = e.user()
    cam_call(u.cam, "AttachUserPolicy", PolicyId=pid, AttachUin=other.uin)
    rid = u.json("CreateRoleAssignment", PrincipalType="User", PrincipalId=str(other.uin),
                 RoleName="Reader", Scope="account")["RoleAssignmentId"]
    u.json("DeleteRoleAssignment", RoleAssignmentId=rid)
    e.succeeded(u.call("RunCommand", Content=b64("echo owner"), InstanceIds=[e.a]).InvocationId)


def role_contributor(env, u, x, y):
    e = env
    mine = u.call("CreateCommand", CommandName=uniq("authz"), Content=b64("echo contrib")).CommandId
    e.succeeded(u.call("InvokeCommand", CommandId=mine, InstanceIds=[e.a, e.b]).InvocationId)
    u.call("ModifyCommand", CommandId=x, Description="contrib")
    u.call("DeleteCommand", CommandId=mine)
    assert e.get_command(mine) is None
    assert u.call("DescribeCommands", CommandIds=[y]).CommandSet[0].Content == b64("echo authz-1")
    cannot_change_access(e, u)
    e.succeeded(u.call("RunCommand", Content=b64("echo c"), InstanceIds=[e.b]).InvocationId)


def role_reader(env, u, x, y):
    e = env
    inv, task = e.invoke(x, [e.a])
    assert u.call("DescribeCommands", Limit=100).TotalCount == e.n_commands()
    assert u.call("DescribeInvocations", InvocationIds=[inv]).TotalCount == 1
    assert [t.TaskStatus for t in tat.tasks(u.tat, inv)] == ["SUCCESS"]
    assert u.call("DescribeAutomationAgentStatus", InstanceIds=[e.a]).AutomationAgentSet
    nc, ni = e.n_commands(), e.n_invocations()
    sub_denied(u, "RunCommand", Content=b64("echo no"), InstanceIds=[e.a])
    sub_denied(u, "InvokeCommand", CommandId=x, InstanceIds=[e.a])
    sub_denied(u, "CreateCommand", CommandName=uniq("no"), Content=b64("echo no"))
    sub_denied(u, "DeleteCommand", CommandId=y)
    sub_denied(u, "ModifyCommand", CommandId=y, Description="no")
    assert (e.n_commands(), e.n_invocations()) == (nc, ni)
    cannot_change_access(e, u)


def role_automation_operator(env, u, x, y):
    e = env
    listed = u.call("DescribeCommands", Limit=100)
    assert listed.TotalCount == e.n_commands(), "lists every command's name and properties"
    mine = {c.CommandId: c for c in listed.CommandSet}
    assert mine[x].CommandName and all(c.Content == "" for c in listed.CommandSet), "never sees Content"
    assert u.call("DescribeCommands", CommandIds=[x]).CommandSet[0].Content == ""
    inv = u.call("InvokeCommand", CommandId=x, InstanceIds=[e.a, e.b]).InvocationId
    ts = e.succeeded(inv)
    assert u.call("DescribeInvocations", InvocationIds=[inv]).InvocationSet[0].InvocationStatus == "SUCCESS"
    assert len(tat.tasks(u.tat, inv)) == 2
    out = u.json("DescribeInvocationTaskOutput", InvocationTaskId=ts[0].InvocationTaskId)
    assert "authz" in json.dumps(out) or out  # the task's output is readable
    running = running_invocation(e, [e.a])
    suspend_and_resume(e, u, running)
    u.call("CancelInvocation", InvocationId=running)
    assert tat.wait_invocation(e.root, running, deadline_s=20).InvocationStatus == "CANCELLED"
    nc, ni = e.n_commands(), e.n_invocations()
    sub_denied(u, "CreateCommand", CommandName=uniq("no"), Content=b64("echo no"))
    sub_denied(u, "DeleteCommand", CommandId=y)
    sub_denied(u, "ModifyCommand", CommandId=y, Content=b64("echo changed"))
    sub_denied(u, "PreviewReplacedCommandContent", CommandId=y)
    sub_denied(u, "RunCommand", Content=b64("echo no"), InstanceIds=[e.a])
    assert (e.n_commands(), e.n_invocations()) == (nc, ni)
    assert e.get_command(y).Content == b64("echo authz-1")
    cannot_change_access(e, u)


def role_job_operator(env, u, x, y):
    """Jobs on every runbook, but starting one also needs reading it
    (runbooks/read, the seed's individual-runbook control): alone, the Job
    Operator starts nothing, and manages the jobs others started."""
    e = env
    ni = e.n_invocations()
    sub_denied(u, "InvokeCommand", e.cmd(y), CommandId=y, InstanceIds=[e.b])
    assert e.n_invocations() == ni
    running = running_invocation(e, [e.b])
    suspend_and_resume(e, u, running)
    u.call("CancelInvocation", InvocationId=running)
    assert tat.wait_invocation(e.root, running, deadline_s=20).InvocationStatus == "CANCELLED"
    # Jobs only: no runbook properties, so listing them is refused.
    sub_denied(u, "DescribeCommands", Limit=100)
    nc = e.n_commands()
    sub_denied(u, "CreateCommand", CommandName=uniq("no"), Content=b64("echo no"))
    sub_denied(u, "DeleteCommand", CommandId=x)
    assert e.n_commands() == nc


def role_runbook_operator_at_x(env, u, x, y):
    e = env
    listed = u.call("DescribeCommands", Limit=100)
    assert [c.CommandId for c in listed.CommandSet] == [x] and listed.TotalCount == 1
    assert listed.CommandSet[0].Content == ""
    sub_denied(u, "DescribeCommands", e.cmd(y), CommandIds=[y])
    ni = e.n_invocations()
    sub_denied(u, "InvokeCommand", CommandId=x, InstanceIds=[e.a])
    sub_denied(u, "ModifyCommand", CommandId=x, Description="no")
    assert e.n_invocations() == ni


def role_job_plus_runbook_operator(env, u, x, y):
    """The seed's script: Job Operator on the account, Runbook Operator on one runbook."""
    e = env
    assert [c.CommandId for c in u.call("DescribeCommands", Limit=100).CommandSet] == [x]
    e.succeeded(u.call("InvokeCommand", CommandId=x, InstanceIds=[e.a]).InvocationId)
    assert u.call("DescribeCommands", CommandIds=[x]).CommandSet[0].Content == ""
    sub_denied(u, "DescribeCommands", e.cmd(y), CommandIds=[y])
    # Only that one: starting another runbook needs reading it.
    ni = e.n_invocations()
    sub_denied(u, "InvokeCommand", e.cmd(y), CommandId=y, InstanceIds=[e.a])
    assert e.n_invocations() == ni


def role_operator_at_x(env, u, x, y):
    """Automation Operator at one runbook's scope: start it and view its jobs, nothing else."""
    e = env
    inv = u.call("InvokeCommand", CommandId=x, InstanceIds=[e.a, e.b]).InvocationId
    e.succeeded(inv)
    other_inv, _ = e.invoke(y, [e.a])
    seen = u.call("DescribeInvocations", Limit=100)
    assert {i.CommandId for i in seen.InvocationSet} == {x} and inv in [i.InvocationId for i in seen.InvocationSet]
    sub_denied(u, "DescribeInvocations", e.cmd(y), InvocationIds=[other_inv])
    ni = e.n_invocations()
    sub_denied(u, "InvokeCommand", e.cmd(y), CommandId=y, InstanceIds=[e.a])
    assert e.n_invocations() == ni


def role_user_access_admin(env, u, x, y):
    e = env
    other = e.user()
    pid = cam_call(u.cam, "CreatePolicy", PolicyName=cam_name("uaa"),
                   PolicyDocument=json.dumps(doc(stmt("allow", ["tat:DescribeRegions"], ["*"])))).PolicyId
    cam_call(u.cam, "AttachUserPolicy", PolicyId=pid, AttachUin=other.uin)
    assert tat.call(other.tat, "DescribeRegions").TotalCount == 1
    rid = u.json("CreateRoleAssignment", PrincipalType="User", PrincipalId=str(other.uin),
                 RoleName="Reader", Scope="account")["RoleAssignmentId"]
    listed = u.json("ListRoleAssignments", PrincipalType="User", PrincipalId=str(other.uin), Limit=10)
    assert [a["RoleAssignmentId"] for a in listed["RoleAssignmentSet"]] == [rid]
    u.json("DeleteRoleAssignment", RoleAssignmentId=rid)
    nc, ni = e.n_commands(), e.n_invocations()
    sub_denied(u, "RunCommand", Content=b64("echo no"), InstanceIds=[e.a])
    sub_denied(u, "InvokeCommand", CommandId=x, InstanceIds=[e.a])
    sub_denied(u, "CreateCommand", CommandName=uniq("no"), Content=b64("echo no"))
    sub_denied(u, "ModifyCommand", CommandId=x, Description="no")
    assert (e.n_commands(), e.n_invocations()) == (nc, ni)


def role_monitoring_reader(env, u, x, y):
    e = env
    inv, _ = e.invoke(x, [e.a])
    assert u.call("DescribeInvocations", InvocationIds=[inv]).TotalCount == 1
    assert u.call("DescribeAutomationAgentStatus", InstanceIds=[e.a]).AutomationAgentSet
    ev = u.json("DescribeAuditEvents", Filters=[{"Name": "action", "Values": ["InvokeCommand"]}], Limit=10)
    assert ev["TotalCount"] >= 1
    running = running_invocation(e, [e.a])
    try:
        sub_denied(u, "CancelInvocation", InvocationId=running)
        for action in ("SuspendInvocation", "ResumeInvocation"):
            denied(u.tat.call_json, action, {"InvocationId": running}, action="tat:" + action)
        assert tat.describe_invocation(e.root, running).InvocationStatus == "RUNNING"
    finally:
        tat.call(e.root, "CancelInvocation", InvocationId=running)
    ni = e.n_invocations()
    sub_denied(u, "RunCommand", Content=b64("echo no"), InstanceIds=[e.a])
    assert e.n_invocations() == ni
    cannot_change_access(e, u)


ROLE_ROWS = [
    ("owner", [("Owner", "account")], role_owner),
    ("contributor", [("Contributor", "account")], role_contributor),
    ("reader", [("Reader", "account")], role_reader),
    ("automation_operator", [("Automation Operator", "account")], role_automation_operator),
    ("automation_operator_at_one_command", [("Automation Operator", "X")], role_operator_at_x),
    ("automation_job_operator", [("Automation Job Operator", "account")], role_job_operator),
    ("automation_runbook_operator_at_one_command", [("Automation Runbook Operator", "X")],
     role_runbook_operator_at_x),
    ("job_operator_plus_runbook_operator", [("Automation Job Operator", "account"),
                                            ("Automation Runbook Operator", "X")],
     role_job_plus_runbook_operator),
    ("user_access_administrator", [("User Access Administrator", "account")], role_user_access_admin),
    ("monitoring_reader", [("Monitoring Reader", "account")], role_monitoring_reader),
]


@pytest.mark.parametrize("row", [pytest.param(r, id=r[0]) for r in ROLE_ROWS])
def test_azure_role(env, row):
    _, assignments, check = row
    x, y = env.command("echo authz-0"), env.command("echo authz-1")
    u = role_user(env, *[(role, x if scope == "X" else scope) for role, scope in assignments])
    check(env, u, x, y)


def test_role_assignment_to_group_and_its_removal(env):
    x = env.command()
    u = env.user()
    gid = cam_call(env.cam, "CreateGroup", GroupName=cam_name("ops")).GroupId
    cam_call(env.cam, "AddUserToGroup", Info=[{"GroupId": gid, "Uin": u.uin}])
    rid = assign(env, gid, "Automation Operator", x, kind="Group")
    listed = env.root.call_json("ListRoleAssignments", {"PrincipalType": "Group", "PrincipalId": str(gid),
                                                        "Offset": 0, "Limit": 10})["Response"]
    assert listed["TotalCount"] == 1
    a = listed["RoleAssignmentSet"][0]
    assert (a["RoleAssignmentId"], a["PrincipalType"], a["PrincipalId"], a["RoleName"], a["Scope"]) == \
        (rid, "Group", str(gid), "Automation Operator", x)
    env.succeeded(u.call("InvokeCommand", CommandId=x, InstanceIds=[env.a]).InvocationId)
    env.root.call_json("DeleteRoleAssignment", {"RoleAssignmentId": rid})
    ni = env.n_invocations()
    sub_denied(u, "InvokeCommand", CommandId=x, InstanceIds=[env.a])
    assert env.n_invocations() == ni


# =============================================================================
# Conditions, wildcards, deny-overrides, groups, keys, lists
# =============================================================================

def test_tag_condition_allows_only_commands_tagged_env_dev(env):
    dev = env.command("echo dev", tags={"env": "dev"})
    prod = env.command("echo prod", tags={"env": "prod"})
    plain = env.command("echo plain")
    cond = {"string_equal": {"qcs:resource_tag": ["env&dev"]}}
    u = env.user(doc(stmt("allow", ["tat:DescribeCommands", "tat:InvokeCommand", "tat:ModifyCommand"],
                          [env.cmd("*")], cond),
                     stmt("allow", ["tat:InvokeCommand"], [env.mi("*")])))
    listed = u.call("DescribeCommands", Limit=100)
    assert [c.CommandId for c in listed.CommandSet] == [dev] and listed.TotalCount == 1
    env.succeeded(u.call("InvokeCommand", CommandId=dev, InstanceIds=[env.a]).InvocationId)
    ni = env.n_invocations()
    sub_denied(u, "InvokeCommand", env.cmd(prod), CommandId=prod, InstanceIds=[env.a])
    sub_denied(u, "InvokeCommand", env.cmd(plain), CommandId=plain, InstanceIds=[env.a])
    assert env.n_invocations() == ni
    sub_denied(u, "ModifyCommand", env.cmd(prod), CommandId=prod, Description="no")
    assert env.get_command(prod).Description != "no"
    u.call("ModifyCommand", CommandId=dev, Description="yes")
    assert env.get_command(dev).Description == "yes"


def test_request_tag_condition_on_create(env):
    """qcs:request_tag: CreateCommand is allowed only when it sets env=dev."""
    u = env.user(doc(stmt("allow", ["tat:CreateCommand"], ["*"],
                          {"string_equal": {"qcs:request_tag": ["env&dev"]}})))
    nc = env.n_commands()
    sub_denied(u, "CreateCommand", CommandName=uniq("no"), Content=b64("echo no"))
    sub_denied(u, "CreateCommand", CommandName=uniq("no"), Content=b64("echo no"),
               Tags=[{"Key": "env", "Value": "prod"}])
    assert env.n_commands() == nc
    cid = u.call("CreateCommand", CommandName=uniq("ok"), Content=b64("echo ok"),
                 Tags=[{"Key": "env", "Value": "dev"}]).CommandId
    assert [(t.Key, t.Value) for t in env.get_command(cid).Tags] == [("env", "dev")]


def test_source_ip_condition(env):
    """ip_equal / ip_not_equal on qcs:ip: the suite calls from 127.0.0.1."""
    here = env.user(doc(stmt("allow", ["tat:DescribeRegions"], ["*"], {"ip_equal": {"qcs:ip": ["127.0.0.1/32"]}})))
    assert here.call("DescribeRegions").TotalCount == 1
    elsewhere = env.user(doc(stmt("allow", ["tat:DescribeRegions"], ["*"], {"ip_equal": {"qcs:ip": ["10.0.0.0/8"]}})))
    sub_denied(elsewhere, "DescribeRegions")
    fenced = env.user(doc(stmt("deny", ["tat:*"], ["*"], {"ip_not_equal": {"qcs:ip": ["10.0.0.0/8"]}})),
                      presets=[FULL])
    sub_denied(fenced, "DescribeRegions")


def test_wildcard_describe_star(env):
    x = env.command()
    u = env.user(doc(stmt("allow", ["tat:Describe*"], ["*"])))
    assert u.call("DescribeCommands", Limit=100).TotalCount == env.n_commands()
    assert u.call("DescribeInvocations", Limit=100).TotalCount == env.n_invocations()
    assert u.call("DescribeRegions").TotalCount == 1
    assert u.call("DescribeAutomationAgentStatus", InstanceIds=[env.a, env.b]).AutomationAgentSet
    nc, ni = env.n_commands(), env.n_invocations()
    sub_denied(u, "CreateCommand", CommandName=uniq("no"), Content=b64("echo no"))
    sub_denied(u, "DeleteCommand", CommandId=x)
    sub_denied(u, "RunCommand", Content=b64("echo no"), InstanceIds=[env.a])
    assert (env.n_commands(), env.n_invocations()) == (nc, ni)


def test_explicit_deny_overrides_full_access(env):
    x, y = env.command(), env.command()
    u = env.user(doc(stmt("deny", ["tat:DeleteCommand"], [env.cmd(x)])), presets=[FULL])
    err = sub_denied(u, "DeleteCommand", env.cmd(x), CommandId=x)
    assert env.get_command(x) is not None
    u.call("DeleteCommand", CommandId=y)
    assert env.get_command(y) is None
    u.call("ModifyCommand", CommandId=x, Description="still modifiable")
    assert env.get_command(x).Description == "still modifiable"
    assert err.requestId


def test_group_policy_is_inherited_and_leaves_with_the_group(env):
    x = env.command()
    u = env.user()
    gid = cam_call(env.cam, "CreateGroup", GroupName=cam_name("grp")).GroupId
    pid = env.policy(doc(stmt("allow", ["tat:InvokeCommand"], [env.cmd(x), env.mi(env.a)])))
    cam_call(env.cam, "AttachGroupPolicy", PolicyId=pid, AttachGroupId=gid)
    ni = env.n_invocations()
    sub_denied(u, "InvokeCommand", CommandId=x, InstanceIds=[env.a])
    assert env.n_invocations() == ni
    cam_call(env.cam, "AddUserToGroup", Info=[{"GroupId": gid, "Uin": u.uin}])
    env.succeeded(u.call("InvokeCommand", CommandId=x, InstanceIds=[env.a]).InvocationId)
    cam_call(env.cam, "RemoveUserFromGroup", Info=[{"GroupId": gid, "Uin": u.uin}])
    ni = env.n_invocations()
    sub_denied(u, "InvokeCommand", CommandId=x, InstanceIds=[env.a])
    assert env.n_invocations() == ni


def test_inactive_key_is_refused(env):
    u = env.user(presets=[FULL])
    assert u.call("DescribeRegions").TotalCount == 1
    cam_call(env.cam, "UpdateAccessKey", AccessKeyId=u.secret_id, Status="Inactive", TargetUin=u.uin)
    nc = env.n_commands()
    tat.expect_call_error("AuthFailure.SecretIdNotFound", u.tat, "CreateCommand",
                          CommandName=uniq("no"), Content=b64("echo no"))
    assert env.n_commands() == nc
    cam_call(env.cam, "UpdateAccessKey", AccessKeyId=u.secret_id, Status="Active", TargetUin=u.uin)
    assert u.call("DescribeRegions").TotalCount == 1


def test_list_filtering_counts_only_what_the_caller_may_read(env):
    cmds = env.commands(4)
    mine = cmds[2]
    u = env.user(doc(stmt("allow", ["tat:DescribeCommands"], [env.cmd(mine)])))
    assert env.n_commands() >= 4
    for page in ({"Limit": 100}, {"Limit": 1, "Offset": 0}):
        rsp = u.call("DescribeCommands", **page)
        assert rsp.TotalCount == 1 and [c.CommandId for c in rsp.CommandSet] == [mine]
    assert u.call("DescribeCommands", Limit=1, Offset=1).CommandSet == []
    err = sub_denied(u, "DescribeCommands", env.cmd(cmds[0]), CommandIds=[cmds[0]])
    assert cmds[1] not in err.message and mine not in err.message


def test_denied_calls_by_policy_less_user_change_nothing(env):
    x = env.command()
    u = env.user()
    nc, ni = env.n_commands(), env.n_invocations()
    sub_denied(u, "CreateCommand", CommandName=uniq("no"), Content=b64("echo no"))
    sub_denied(u, "RunCommand", Content=b64("echo no"), InstanceIds=[env.a])
    sub_denied(u, "InvokeCommand", CommandId=x, InstanceIds=[env.a])
    sub_denied(u, "DeleteCommand", CommandId=x)
    assert (env.n_commands(), env.n_invocations()) == (nc, ni)
    # No permission at all for a list: refused, not an empty success.
    sub_denied(u, "DescribeCommands", Limit=100)


# =============================================================================
# The simulator and the audit log
# =============================================================================

def simulate(env, u, action, resources, **extra):
    body = {"PrincipalType": "User", "PrincipalId": str(u.uin), "Action": action, "Resources": resources}
    body.update(extra)
    return env.root.call_json("SimulatePrincipalPolicy", body)["Response"]


def test_simulator_names_the_deciding_policy_and_statement(env):
    x = env.command()
    pname = cam_name("sim")
    d = doc(stmt("allow", ["tat:DescribeCommands"], [env.cmd("*")]),
            stmt("allow", ["tat:InvokeCommand"], [env.cmd(x), env.mi("*")]),
            stmt("deny", ["tat:InvokeCommand"], [env.mi(env.b)]))
    pid = cam_call(env.cam, "CreatePolicy", PolicyName=pname, PolicyDocument=json.dumps(d)).PolicyId
    u = env.user()
    cam_call(env.cam, "AttachUserPolicy", PolicyId=pid, AttachUin=u.uin)

    ok = simulate(env, u, "tat:InvokeCommand", [env.cmd(x), env.mi(env.a)])
    assert ok["Allowed"] is True
    assert [(str(s["PolicyId"]), s["PolicyName"], s["StatementIndex"]) for s in ok["DecidingStatements"]] == \
        [(str(pid), pname, 1)]
    assert pname in ok["Explanation"]
    # ...and the real call agrees.
    env.succeeded(u.call("InvokeCommand", CommandId=x, InstanceIds=[env.a]).InvocationId)

    no = simulate(env, u, "tat:InvokeCommand", [env.cmd(x), env.mi(env.a), env.mi(env.b)])
    assert no["Allowed"] is False
    assert no["DeniedResource"] == env.mi(env.b)
    assert [(str(s["PolicyId"]), s["PolicyName"], s["StatementIndex"]) for s in no["DecidingStatements"]] == \
        [(str(pid), pname, 2)]
    assert "deny" in (no["Reason"] + no["Explanation"]).lower()
    assert pname in no["Explanation"]
    sub_denied(u, "InvokeCommand", env.mi(env.b), CommandId=x, InstanceIds=[env.a, env.b])

    none = simulate(env, u, "tat:DeleteCommand", [env.cmd(x)])
    assert none["Allowed"] is False and none["DecidingStatements"] == []


def test_audit_records_a_deny_with_its_deciding_statement(env):
    x = env.command()
    pname = cam_name("aud")
    d = doc(stmt("allow", ["tat:*"], ["*"]), stmt("deny", ["tat:DeleteCommand"], [env.cmd(x)]))
    pid = cam_call(env.cam, "CreatePolicy", PolicyName=pname, PolicyDocument=json.dumps(d)).PolicyId
    u = env.user()
    cam_call(env.cam, "AttachUserPolicy", PolicyId=pid, AttachUin=u.uin)
    err = sub_denied(u, "DeleteCommand", env.cmd(x), CommandId=x)
    ok_id = u.json("DescribeCommands", CommandIds=[x])["RequestId"]

    def event(request_id):
        r = env.root.call_json("DescribeAuditEvents",
                               {"Filters": [{"Name": "request-id", "Values": [request_id]}]})["Response"]
        assert r["TotalCount"] == 1, r
        return r["AuditEventSet"][0]

    ev = event(err.requestId)
    assert (ev["Action"], ev["Decision"], ev["Outcome"]) == ("DeleteCommand", "deny", UNAUTH)
    assert ev["SecretId"] == u.secret_id
    assert pname in ev["DecidingStatement"] and "statement[1]" in ev["DecidingStatement"], ev
    assert x in ev["Resources"]
    ok = event(ok_id)
    assert (ok["Decision"], ok["Outcome"]) == ("allow", "Success")
    assert "statement[0]" in ok["DecidingStatement"], ok


# =============================================================================
# Invokers: the invoker, and the command and instances it runs
# =============================================================================

def test_invoker_actions_are_authorized_on_invoker_command_and_instances(env):
    x, y = env.command("echo ivk-x"), env.command("echo ivk-y")
    once = {"Policy": "ONCE", "InvokeTime": "2099-01-01T00:00:00Z"}
    u = env.user(doc(
        stmt("allow", ["tat:CreateInvoker", "tat:ModifyInvoker"], [env.cmd(x), env.mi(env.a)]),
        stmt("allow", ["tat:ModifyInvoker", "tat:DeleteInvoker", "tat:DisableInvoker",
                       "tat:EnableInvoker", "tat:DescribeInvokers", "tat:DescribeInvokerRecords"],
             [env.qcs("invoker", "*")]),
    ))
    ivk = u.call("CreateInvoker", Name="mine", Type="SCHEDULE", CommandId=x, InstanceIds=[env.a],
                 ScheduleSettings=once).InvokerId
    sub_denied(u, "CreateInvoker", env.cmd(y), Name="no", Type="SCHEDULE", CommandId=y,
               InstanceIds=[env.a], ScheduleSettings=once)
    sub_denied(u, "CreateInvoker", env.mi(env.b), Name="no", Type="SCHEDULE", CommandId=x,
               InstanceIds=[env.b], ScheduleSettings=once)
    sub_denied(u, "ModifyInvoker", env.mi(env.b), InvokerId=ivk, InstanceIds=[env.b])
    u.call("ModifyInvoker", InvokerId=ivk, Name="renamed")
    u.call("DisableInvoker", InvokerId=ivk)
    u.call("EnableInvoker", InvokerId=ivk)

    # A user allowed to describe one invoker sees only that one in lists.
    other = tat.call(env.root, "CreateInvoker", Name="other", Type="SCHEDULE", CommandId=y,
                     InstanceIds=[env.b], ScheduleSettings=once).InvokerId
    r = env.user(doc(stmt("allow", ["tat:DescribeInvokers", "tat:DescribeInvokerRecords"],
                          [env.qcs("invoker", ivk)])))
    seen = r.call("DescribeInvokers", Limit=100)
    assert [i.InvokerId for i in seen.InvokerSet] == [ivk] and seen.TotalCount == 1
    sub_denied(r, "DescribeInvokers", env.qcs("invoker", other), InvokerIds=[other])
    sub_denied(r, "DeleteInvoker", env.qcs("invoker", ivk), InvokerId=ivk)
    u.call("DeleteInvoker", InvokerId=ivk)
    tat.call(env.root, "DeleteInvoker", InvokerId=other)
