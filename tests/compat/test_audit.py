"""The audit log: every API call, whoever made it and however it ended, is
recorded, readable through DescribeAuditEvents (a drover extension) and
exportable as JSON lines with `drover admin export-audit`."""

import json
import subprocess

from conftest import drover_bin
from tat import b64, expect_error, raw_call, uniq


def events(client, **params):
    return client.call_json("DescribeAuditEvents", params)["Response"]


def test_calls_are_recorded_with_principal_outcome_and_resources(server, client):
    name = uniq("audit")
    created = client.call_json("CreateCommand", {"CommandName": name, "Content": b64("echo x")})["Response"]
    expect_error("ResourceNotFound.CommandNotFound", client.call_json, "DeleteCommand",
                 {"CommandId": "cmd-zzzzzzzz"})
    bad = raw_call(server, "DescribeRegions", "{}", secret_key="wrong-key").json()["Response"]
    assert bad["Error"]["Code"] == "AuthFailure.SignatureFailure"

    ok = events(client, Filters=[{"Name": "request-id", "Values": [created["RequestId"]]}])
    assert ok["TotalCount"] == 1
    e = ok["AuditEventSet"][0]
    assert e["Action"] == "CreateCommand"
    assert e["Principal"] == "root"
    assert e["SecretId"] == server.secret_id
    assert e["Outcome"] == "Success"
    assert e["Decision"] == "allow"
    assert e["SourceIp"] == "127.0.0.1"
    assert e["Time"].endswith("Z")

    denied = events(client, Filters=[{"Name": "request-id", "Values": [bad["RequestId"]]}])["AuditEventSet"]
    assert len(denied) == 1
    assert denied[0]["Outcome"] == "AuthFailure.SignatureFailure"
    assert denied[0]["Principal"] == ""
    assert denied[0]["Decision"] == ""

    missing = events(client, Filters=[{"Name": "action", "Values": ["DeleteCommand"]},
                                      {"Name": "outcome", "Values": ["ResourceNotFound.CommandNotFound"]}])
    assert any("cmd-zzzzzzzz" in ev["Resources"] for ev in missing["AuditEventSet"])

    # The audit log holds no secret: neither the key nor the command content.
    everything = json.dumps(events(client, Limit=100))
    assert server.secret_key not in everything
    assert b64("echo x") not in everything


def test_audit_is_read_only_and_validates_its_input(client):
    before = events(client)["TotalCount"]
    expect_error("InvalidParameterValue.InvalidTimeFormat", client.call_json, "DescribeAuditEvents",
                 {"StartTime": "yesterday"})
    expect_error("InvalidFilter", client.call_json, "DescribeAuditEvents",
                 {"Filters": [{"Name": "secret", "Values": ["x"]}]})
    expect_error("InvalidParameterValue.Range", client.call_json, "DescribeAuditEvents", {"Limit": 101})
    for action in ("DeleteAuditEvents", "ModifyAuditEvent"):
        expect_error("InvalidAction", client.call_json, action, {})
    after = events(client)["TotalCount"]
    # Every one of those calls was itself recorded, and nothing was removed.
    assert after >= before + 5


def test_export_writes_json_lines_oldest_first(server, client):
    marker = client.call_json("DescribeRegions", {})["Response"]["RequestId"]
    out = subprocess.run([str(drover_bin()), "admin", "export-audit", "--data-dir", str(server.data_dir)],
                         check=True, capture_output=True, timeout=60).stdout.decode()
    lines = [json.loads(l) for l in out.splitlines()]
    assert lines, "no events exported"
    assert any(l["RequestId"] == marker for l in lines)
    times = [l["Time"] for l in lines]
    assert times == sorted(times)
    assert all(server.secret_key not in l for l in out.splitlines())
