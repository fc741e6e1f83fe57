"""Hidden values stay hidden (issue 8, finding "hidden values"). A
`{{tat-hidden:key}}` value is write-only: DescribeCommands (DefaultParameters,
DefaultParameterConfs), DescribeInvokers (Parameters) and
PreviewReplacedCommandContent show `******` in its place to every caller,
the account (root) included, as TAT records hidden values. A preview of a
stored command shows its content, so it also needs tat:DescribeCommandContent
(and obeys a deny of it). The value itself still reaches the script: a real
agent runs the command and proves it got the value without printing it.

Table-driven over callers (root, read-only, full access with content denied,
describe-and-preview without content): real sub-users, real SDK calls; every
raw response is searched for the hidden values.
"""

import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest

import tat
from tat import b64, expect_error, uniq, unb64
from test_cam import call as cam_call
from test_cam import make_cam_client, name

UNAUTH = "AuthFailure.UnauthorizedOperation"
MASK = "******"


def later(seconds):
    t = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Fixture:
    def __init__(self, server, client, instance):
        self.server, self.root, self.instance = server, client, instance
        self.cam = make_cam_client(server)
        tat.next_second()  # a new root connection (see tat.next_second)
        self.owner = cam_call(self.cam, "GetUserAppId").OwnerUin
        self.presets = {p.PolicyName: p.PolicyId
                        for p in cam_call(self.cam, "ListPolicies", Scope="QCS", Rp=200).List}
        self.default_secret = "dflt-" + uniq("hidden")
        self.conf_secret = "conf-" + uniq("hidden")
        self.invoker_secret = "ivk-" + uniq("hidden")
        script = "printf %s '{{tat-hidden:pw}}' | sha256sum | cut -c1-64; echo user={{user}}"
        self.with_defaults = tat.call(
            client, "CreateCommand", CommandName=uniq("hid"), Content=b64(script), EnableParameter=True,
            DefaultParameters=json.dumps({"pw": self.default_secret, "user": "ann"})).CommandId
        self.with_confs = tat.call(
            client, "CreateCommand", CommandName=uniq("hidc"), Content=b64(script), EnableParameter=True,
            DefaultParameterConfs=[{"ParameterName": "pw", "ParameterValue": self.conf_secret},
                                   {"ParameterName": "user", "ParameterValue": "ann"}]).CommandId
        self.invoker = tat.call(
            client, "CreateInvoker", Name=uniq("hid"), Type="SCHEDULE", CommandId=self.with_defaults,
            InstanceIds=[instance], Parameters=json.dumps({"pw": self.invoker_secret, "user": "bob"}),
            ScheduleSettings={"Policy": "ONCE", "InvokeTime": later(3600)}).InvokerId
        self.secrets = [self.default_secret, self.conf_secret, self.invoker_secret]

    def cmd_res(self, cid):
        return "qcs::tat:%s:uin/%s:command/%s" % (tat.REGION, self.owner, cid)

    def user(self, presets=(), statements=()):
        r = cam_call(self.cam, "AddUser", Name=name("hid"), UseApi=1)
        for p in presets:
            cam_call(self.cam, "AttachUserPolicy", PolicyId=self.presets[p], AttachUin=r.Uin)
        if statements:
            doc = {"version": "2.0", "statement": list(statements)}
            pid = cam_call(self.cam, "CreatePolicy", PolicyName=name("hid"),
                           PolicyDocument=json.dumps(doc)).PolicyId
            cam_call(self.cam, "AttachUserPolicy", PolicyId=pid, AttachUin=r.Uin)
        return self.server.client(r.SecretId, r.SecretKey)

    def leaks(self, text):
        return [s for s in self.secrets if s in text]


@pytest.fixture(scope="module")
def fx(server, client, one_instance):
    return Fixture(server, client, one_instance)


def raw(client, action, **fields):
    return json.dumps(client.call_json(action, fields))


DENY_CONTENT = {"effect": "deny", "action": ["tat:DescribeCommandContent"], "resource": ["*"]}
NO_CONTENT = {"effect": "allow", "action": ["tat:DescribeCommands", "tat:PreviewReplacedCommandContent",
                                            "tat:DescribeInvokers"], "resource": ["*"]}

# (who, how the caller is made, may read content)
CALLERS = [
    ("root", lambda fx: fx.root, True),
    ("read-only", lambda fx: fx.user(presets=["QcloudTATReadOnlyAccess"]), True),
    ("full access, content denied",
     lambda fx: fx.user(presets=["QcloudTATFullAccess"], statements=[DENY_CONTENT]), False),
    ("describe and preview only", lambda fx: fx.user(statements=[NO_CONTENT]), False),
]


@pytest.mark.parametrize("caller", CALLERS, ids=[c[0] for c in CALLERS])
def test_hidden_values_are_never_shown(fx, caller):
    _, make, reads_content = caller
    c = make(fx)

    # DescribeCommands: hidden defaults masked, others shown.
    for cid in (fx.with_defaults, fx.with_confs):
        text = raw(c, "DescribeCommands", CommandIds=[cid])
        assert fx.leaks(text) == [], text
        cmd = tat.call(c, "DescribeCommands", CommandIds=[cid]).CommandSet[0]
        assert json.loads(cmd.DefaultParameters) == {"pw": MASK, "user": "ann"}
        if cid == fx.with_confs:
            confs = {p.ParameterName: p.ParameterValue for p in cmd.DefaultParameterConfs}
            assert confs == {"pw": MASK, "user": "ann"}
        assert bool(cmd.Content) == reads_content
    # Filtered lists mask too.
    listed = raw(c, "DescribeCommands", Filters=[{"Name": "command-id", "Values": [fx.with_defaults]}])
    assert fx.leaks(listed) == [] and fx.with_defaults in listed

    # DescribeInvokers: the invoker's hidden Parameters masked.
    text = raw(c, "DescribeInvokers", InvokerIds=[fx.invoker])
    assert fx.leaks(text) == [], text
    ivk = tat.call(c, "DescribeInvokers", InvokerIds=[fx.invoker]).InvokerSet[0]
    assert json.loads(ivk.Parameters) == {"pw": MASK, "user": "bob"}

    # PreviewReplacedCommandContent of a stored command: needs the content.
    for cid in (fx.with_defaults, fx.with_confs):
        if reads_content:
            text = raw(c, "PreviewReplacedCommandContent", CommandId=cid)
            assert fx.leaks(text) == [], text
            out = unb64(tat.call(c, "PreviewReplacedCommandContent", CommandId=cid).ReplacedContent).decode()
            assert "'%s'" % MASK in out and "user=ann" in out, out
            given = tat.call(c, "PreviewReplacedCommandContent", CommandId=cid,
                             Parameters=json.dumps({"pw": "typed-" + fx.default_secret, "user": "cy"}))
            out = unb64(given.ReplacedContent).decode()
            assert fx.default_secret not in out and "'%s'" % MASK in out and "user=cy" in out, out
        else:
            err = expect_error(UNAUTH, tat.call, c, "PreviewReplacedCommandContent", CommandId=cid)
            assert "tat:DescribeCommandContent" in err.message and fx.cmd_res(cid) in err.message
            assert fx.leaks(err.message) == []
    # A preview of one's own content (no stored command) is allowed to any
    # caller that may preview; hidden values are masked there too.
    out = unb64(tat.call(c, "PreviewReplacedCommandContent", Content=b64("x={{tat-hidden:k}} y={{v}}"),
                         Parameters=json.dumps({"k": "typed-secret", "v": "1"})).ReplacedContent).decode()
    assert out == "x=%s y=1" % MASK


def test_hidden_values_still_reach_the_script(fx):
    """The account runs both commands and the invoker's parameters on a real
    agent: the script sees each real value (its hash is printed), while the
    invocation records keep only the mask. Writing back what Describe* showed
    (`******`) keeps each hidden value."""
    for cid in (fx.with_defaults, fx.with_confs):
        shown = tat.call(fx.root, "DescribeCommands", CommandIds=[cid]).CommandSet[0]
        if cid == fx.with_confs:
            confs = [{"ParameterName": p.ParameterName, "ParameterValue": p.ParameterValue}
                     for p in shown.DefaultParameterConfs]
            tat.call(fx.root, "ModifyCommand", CommandId=cid, DefaultParameterConfs=confs)
        else:
            tat.call(fx.root, "ModifyCommand", CommandId=cid, DefaultParameters=shown.DefaultParameters)
    # The invoker gets its shown Parameters back and fires once, soon: its
    # run proves the stored hidden value survived.
    ivk = tat.call(fx.root, "DescribeInvokers", InvokerIds=[fx.invoker]).InvokerSet[0]
    tat.call(fx.root, "ModifyInvoker", InvokerId=fx.invoker, Parameters=ivk.Parameters,
             ScheduleSettings={"Policy": "ONCE", "InvokeTime": later(3)})

    def fired():
        recs = tat.call(fx.root, "DescribeInvokerRecords", InvokerIds=[fx.invoker]).InvokerRecordSet
        return [r.InvocationId for r in recs if r.InvocationId]
    inv = tat.poll(fired, 30, what="the invoker to fire")[0]
    ts = tat.wait_tasks(fx.root, inv, deadline_s=30)
    full = tat.call(fx.root, "DescribeInvocationTasks", InvocationTaskIds=[ts[0].InvocationTaskId],
                    HideOutput=False).InvocationTaskSet[0]
    want = "%s\nuser=bob\n" % hashlib.sha256(fx.invoker_secret.encode()).hexdigest()
    assert unb64(full.TaskResult.Output).decode() == want
    cases = [
        (fx.with_defaults, None, fx.default_secret, "ann"),
        (fx.with_confs, None, fx.conf_secret, "ann"),
        (fx.with_defaults, {"pw": fx.invoker_secret, "user": "bob"}, fx.invoker_secret, "bob"),
    ]
    for cid, params, secret, user in cases:
        fields = {"CommandId": cid, "InstanceIds": [fx.instance]}
        if params:
            fields["Parameters"] = json.dumps(params)
        inv = tat.call(fx.root, "InvokeCommand", **fields).InvocationId
        ts = tat.wait_tasks(fx.root, inv, deadline_s=30)
        assert [t.TaskStatus for t in ts] == ["SUCCESS"]
        full = tat.call(fx.root, "DescribeInvocationTasks", InvocationTaskIds=[ts[0].InvocationTaskId],
                        HideOutput=False).InvocationTaskSet[0]
        out = unb64(full.TaskResult.Output).decode()
        assert out == "%s\nuser=%s\n" % (hashlib.sha256(secret.encode()).hexdigest(), user), out
        record = raw(fx.root, "DescribeInvocations", InvocationIds=[inv])
        assert fx.leaks(record) == [], record
