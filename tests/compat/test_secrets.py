"""Secrets and who may use them, through the official SDK against a real
server with two real agents.

Secret actions are drover extensions, so they go through the SDK's generic
`call_json`; the runs that use secrets are ordinary TAT calls. A sub-user
may put `{{secret:NAME}}` into a run only with `tat:UseSecret` on
`qcs::tat:REGION:uin/OWNER:secret/NAME` and the run's instances; a Reader
sees secrets' names and nothing else; the Automation Job Operator starts
runs that use them.
"""

import json

import pytest

import tat
from tat import b64, uniq
from test_authz import Env, denied, doc, stmt
from test_cam import make_cam_client

# The typed models warn about the extension fields (Targets) they do not know.
pytestmark = pytest.mark.filterwarnings("ignore:.*fileds are useless")


@pytest.fixture(scope="module")
def env(server, instance_ids, client):
    return Env(server, make_cam_client(server), instance_ids, client)


def secret(e, value=None):
    """A fresh secret; returns (name, value)."""
    name = uniq("s").replace("-", "_")
    value = value or "v-" + uniq("val")
    e.root.call_json("CreateSecret", {"SecretName": name, "SecretValue": value})
    return name, value


def sec(e, name):
    return e.qcs("secret", name)


def uses(name):
    return 'echo "got {{secret:%s}}"' % name


def run_allowed(e, u, name, instances):
    rsp = u.call("RunCommand", Content=b64(uses(name)), InstanceIds=list(instances))
    for t in e.succeeded(rsp.InvocationId):
        assert tat.unb64(t.TaskResult.Output) == b"got ******\n"
    return rsp.InvocationId


def raw(u, action, **fields):
    return json.dumps(u.json(action, **fields))


def test_run_without_use_secret_is_refused_and_changes_nothing(env):
    e = env
    name, value = secret(e)
    u = e.user(doc(stmt("allow", ["tat:RunCommand", "tat:InvokeCommand", "tat:Describe*"], ["*"])))
    u.call("RunCommand", Content=b64("echo plain"), InstanceIds=[e.a])  # allowed without secrets
    nc, ni = e.n_commands(), e.n_invocations()
    err = denied(u.call, "RunCommand", action="tat:UseSecret", resource=sec(e, name),
                 Content=b64(uses(name)), InstanceIds=[e.a])
    assert value not in err.message
    cid = e.command(uses(name))
    nc += 1
    denied(u.call, "InvokeCommand", action="tat:UseSecret", CommandId=cid, InstanceIds=[e.a])
    assert (e.n_commands(), e.n_invocations()) == (nc, ni)
    # A parameter cannot smuggle the reference past the check: it stays text.
    pid = e.command("echo '{{p}}'", EnableParameter=True, DefaultParameters='{"p":"x"}')
    inv = u.call("InvokeCommand", CommandId=pid, InstanceIds=[e.a],
                 Parameters=json.dumps({"p": "{{secret:%s}}" % name})).InvocationId
    out = tat.unb64(e.succeeded(inv)[0].TaskResult.Output)
    assert out == ("{{secret:%s}}\n" % name).encode()


def test_use_secret_is_decided_per_secret_and_instance(env):
    e = env
    name, value = secret(e)
    other, _ = secret(e)
    u = e.user(doc(
        stmt("allow", ["tat:RunCommand", "tat:Describe*"], ["*"]),
        stmt("allow", ["tat:UseSecret"], [sec(e, name), e.mi(e.a)]),
    ))
    inv = run_allowed(e, u, name, [e.a])
    assert value not in raw(u, "DescribeInvocations", InvocationIds=[inv])
    denied(u.call, "RunCommand", action="tat:UseSecret", resource=e.mi(e.b),
           Content=b64(uses(name)), InstanceIds=[e.a, e.b])
    denied(u.call, "RunCommand", action="tat:UseSecret", resource=sec(e, other),
           Content=b64(uses(other)), InstanceIds=[e.a])
    # An invoker runs as the system later: its creator needs the use now.
    cid = e.command(uses(other))
    denied(u.json, "CreateInvoker", action="tat:CreateInvoker", Name="nope", Type="SCHEDULE",
           CommandId=cid, InstanceIds=[e.a],
           ScheduleSettings={"Policy": "RECURRENCE", "Recurrence": "0 0 1 1 *"})
    v = e.user(doc(stmt("allow", ["tat:CreateInvoker", "tat:DeleteInvoker"], ["*"])))
    denied(v.json, "CreateInvoker", action="tat:UseSecret", resource=sec(e, other), Name="nope",
           Type="SCHEDULE", CommandId=cid, InstanceIds=[e.a],
           ScheduleSettings={"Policy": "RECURRENCE", "Recurrence": "0 0 1 1 *"})


def test_a_selector_cannot_reach_an_instance_the_secret_is_not_allowed_on(env):
    """Targets are resolved before the UseSecret decision, so a tag
    selector names every instance it matches (as InstanceIds would)."""
    e = env
    name, _ = secret(e)
    key = uniq("grp").replace("-", "_")
    for i in (e.a, e.b):
        e.root.call_json("ModifyInstanceTags", {"InstanceId": i, "Tags": [{"Key": key, "Value": "x"}]})
    try:
        u = e.user(doc(
            stmt("allow", ["tat:RunCommand", "tat:Describe*"], ["*"]),
            stmt("allow", ["tat:UseSecret"], [sec(e, name), e.mi(e.a)]),
        ))
        ni = e.n_invocations()
        err = denied(u.json, "RunCommand", action="tat:UseSecret",
                     Content=b64(uses(name)), Targets=[{"Key": "tag:" + key, "Values": ["x"]}])
        # The denial does not say which instance carries the tag.
        assert e.b not in err.message and e.a not in err.message, err.message
        assert e.n_invocations() == ni
        # Narrowed to the allowed instance by a second tag entry, it runs.
        e.root.call_json("ModifyInstanceTags", {"InstanceId": e.a, "Tags": [
            {"Key": key, "Value": "x"}, {"Key": key + "_a", "Value": "y"}]})
        rsp = u.json("RunCommand", Content=b64(uses(name)),
                     Targets=[{"Key": "tag:" + key, "Values": ["x"]}, {"Key": "tag-key", "Values": [key + "_a"]}])
        for t in e.succeeded(rsp["InvocationId"]):
            assert t.InstanceId == e.a
            assert tat.unb64(t.TaskResult.Output) == b"got ******\n"
    finally:
        for i in (e.a, e.b):
            e.root.call_json("ModifyInstanceTags", {"InstanceId": i, "Tags": []})


def test_secret_management_is_governed_and_never_returns_values(env):
    e = env
    name, value = secret(e)
    u = e.user(doc(stmt("allow", ["tat:DescribeSecrets"], [e.qcs("secret", "*")])))
    listed = u.json("DescribeSecrets", SecretNames=[name])
    assert [s["SecretName"] for s in listed["SecretSet"]] == [name]
    assert value not in json.dumps(listed)
    denied(u.json, "CreateSecret", action="tat:CreateSecret", SecretName=uniq("x"), SecretValue="abcd")
    denied(u.json, "ModifySecret", action="tat:ModifySecret", SecretName=name, SecretValue="abcd")
    denied(u.json, "DeleteSecret", action="tat:DeleteSecret", SecretName=name)
    # The root's list is unchanged and still holds no value.
    mine = e.root.call_json("DescribeSecrets", {"SecretNames": [name]})["Response"]
    assert mine["TotalCount"] == 1 and value not in json.dumps(mine)


def test_reader_sees_names_only_and_cannot_use_secrets(env):
    e = env
    name, value = secret(e)
    cid = e.command(uses(name))
    u = e.user()
    tat_assign(e, u.uin, "Reader")
    listed = u.json("DescribeSecrets", Limit=100)
    assert name in [s["SecretName"] for s in listed["SecretSet"]]
    assert value not in json.dumps(listed)
    for s in listed["SecretSet"]:
        assert set(s) == {"SecretName", "Description", "CreatedBy", "CreatedTime", "UpdatedTime"}
    nc, ni = e.n_commands(), e.n_invocations()
    denied(u.call, "InvokeCommand", action="tat:InvokeCommand", CommandId=cid, InstanceIds=[e.a])
    denied(u.call, "RunCommand", action="tat:RunCommand", Content=b64(uses(name)), InstanceIds=[e.a])
    denied(u.json, "ModifySecret", action="tat:ModifySecret", SecretName=name, SecretValue="abcd")
    assert (e.n_commands(), e.n_invocations()) == (nc, ni)


def test_job_operator_runs_commands_that_use_secrets(env):
    e = env
    name, value = secret(e)
    cid = e.command(uses(name))
    u = e.user()
    # The seed's individual-runbook control: Job Operator on the account,
    # Runbook Operator on the command it may start.
    tat_assign(e, u.uin, "Automation Job Operator")
    tat_assign(e, u.uin, "Automation Runbook Operator", scope=cid)
    inv = u.call("InvokeCommand", CommandId=cid, InstanceIds=[e.b]).InvocationId
    t = e.succeeded(inv)[0]
    assert tat.unb64(t.TaskResult.Output) == b"got ******\n"
    denied(u.json, "CreateSecret", action="tat:CreateSecret", SecretName=uniq("x"), SecretValue="abcd")


def tat_assign(e, uin, role, scope="account"):
    r = e.root.call_json("CreateRoleAssignment", {"PrincipalType": "User", "PrincipalId": str(uin),
                                                  "RoleName": role, "Scope": scope})["Response"]
    assert r["RoleAssignmentId"]


def test_modifying_an_invokers_command_to_use_a_secret_needs_the_use(env):
    e = env
    name, _ = secret(e)
    fired, loose = e.command("echo plain"), e.command("echo plain")
    ivk = e.root.call_json("CreateInvoker", {
        "Name": uniq("sec"), "Type": "SCHEDULE", "CommandId": fired, "InstanceIds": [e.a],
        "ScheduleSettings": {"Policy": "RECURRENCE", "Recurrence": "0 0 1 1 *"}})["Response"]["InvokerId"]
    try:
        # Changing what an invoker runs is as strong as running it there.
        only_modify = e.user(doc(stmt("allow", ["tat:ModifyCommand"], ["*"])))
        denied(only_modify.call, "ModifyCommand", action="tat:InvokeCommand",
               CommandId=fired, Content=b64("echo changed"))
        assert e.get_command(fired).Content == b64("echo plain")
        u = e.user(doc(stmt("allow", ["tat:ModifyCommand", "tat:InvokeCommand"], ["*"])))
        denied(u.call, "ModifyCommand", action="tat:UseSecret", resource=sec(e, name),
               CommandId=fired, Content=b64(uses(name)))
        assert e.get_command(fired).Content == b64("echo plain")
        u.call("ModifyCommand", CommandId=fired, Content=b64("echo still plain"))
        # No invoker fires `loose`: whoever runs it is checked then.
        only_modify.call("ModifyCommand", CommandId=loose, Content=b64(uses(name)))
    finally:
        e.root.call_json("DeleteInvoker", {"InvokerId": ivk})
