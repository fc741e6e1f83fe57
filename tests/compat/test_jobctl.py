"""Job control (drover extension): SuspendInvocation / ResumeInvocation sent
with the official SDK's generic call_json, governed by the Azure roles:
Automation Job Operator may suspend and resume, Reader may not."""

from tat import b64, describe_invocation, expect_error, poll, tasks, unb64
from test_cam import add_user, make_cam_client


def ext(client, action, **params):
    return client.call_json(action, params)["Response"]


def sub_user_with_role(server, client, role):
    u = add_user(make_cam_client(server), UseApi=1)
    ext(client, "CreateRoleAssignment", PrincipalType="User", PrincipalId=str(u.Uin), RoleName=role)
    return server.client(u.SecretId, u.SecretKey)


def task_status(client, inv):
    return [t.TaskStatus for t in tasks(client, inv, hide_output=True)]


def test_job_operator_suspends_and_resumes_a_reader_cannot(server, client, instance_ids):
    operator = sub_user_with_role(server, client, "Automation Job Operator")
    reader = sub_user_with_role(server, client, "Reader")
    script = b64("for i in 1 2 3 4 5 6 7 8; do echo tick $i; sleep 0.25; done")
    inv = ext(client, "RunCommand", Content=script, InstanceIds=instance_ids[:1])["InvocationId"]
    poll(lambda: task_status(client, inv) == ["RUNNING"], 20, what="the task to run")

    err = expect_error("AuthFailure.UnauthorizedOperation", reader.call_json,
                       "SuspendInvocation", {"InvocationId": inv})
    assert "tat:SuspendInvocation" in err.message
    assert task_status(client, inv) == ["RUNNING"], "a denied call changes nothing"

    reply = ext(operator, "SuspendInvocation", InvocationId=inv)
    assert set(reply) == {"RequestId"}, "replies are {} like CancelInvocation's"
    poll(lambda: describe_invocation(client, inv).InvocationStatus == "SUSPENDED", 20,
         what="the invocation to be SUSPENDED")
    assert task_status(client, inv) == ["SUSPENDED"]
    # The SDK's typed models read the extension status like any other.
    assert describe_invocation(reader, inv).InvocationStatus == "SUSPENDED"

    expect_error("AuthFailure.UnauthorizedOperation", reader.call_json,
                 "ResumeInvocation", {"InvocationId": inv})
    ext(operator, "ResumeInvocation", InvocationId=inv)
    done = poll(lambda: (lambda i: i if i.InvocationStatus == "SUCCESS" else None)(
        describe_invocation(client, inv)), 30, what="the invocation to succeed")
    assert done.InvocationStatus == "SUCCESS"
    out = tasks(client, inv)[0]
    assert unb64(out.TaskResult.Output).decode().endswith("tick 8\n")

    expect_error("UnsupportedOperation.TaskNotRunning", operator.call_json,
                 "SuspendInvocation", {"InvocationId": inv})
    expect_error("UnsupportedOperation.TaskNotSuspended", operator.call_json,
                 "ResumeInvocation", {"InvocationId": inv})


def test_bad_requests_get_cancel_invocations_codes(client, instance_ids):
    for action in ("SuspendInvocation", "ResumeInvocation"):
        expect_error("MissingParameter", client.call_json, action, {})
        expect_error("InvalidParameterValue.InvalidInvocationId", client.call_json, action,
                     {"InvocationId": "nope"})
        expect_error("ResourceNotFound.InvocationNotFound", client.call_json, action,
                     {"InvocationId": "inv-zzzzzzzz"})
        expect_error("UnknownParameter", client.call_json, action,
                     {"InvocationId": "inv-zzzzzzzz", "Force": True})
