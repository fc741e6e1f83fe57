"""Field-level fidelity against the SDK models' docstrings and errorcodes.py:
Filters limits, nested required fields and their codes, the request-level
errors (timestamp, oversized body) and the register-code id limit."""

import json
import time

import requests

import tat
from tat import b64, call, expect_call_error, expect_error, tc3_headers, total_commands, uniq


def test_filters_ten_filters_five_values_each(client):
    name = uniq("flt")
    cid = call(client, "CreateCommand", CommandName=name, Content=b64("true")).CommandId
    # Two same-name filters of three values each: six values in all, five per filter.
    got = call(client, "DescribeCommands", Filters=[
        {"Name": "command-name", "Values": ["a", "b", name]},
        {"Name": "command-name", "Values": ["c", "d", "e"]}])
    assert [c.CommandId for c in got.CommandSet] == [cid]
    ten = [{"Name": "command-name", "Values": [name]}] * 10
    assert call(client, "DescribeCommands", Filters=ten).TotalCount == 1
    expect_call_error("LimitExceeded.FilterValueExceeded", client, "DescribeCommands",
                      Filters=ten + [{"Name": "command-name", "Values": [name]}])
    expect_call_error("LimitExceeded.FilterValueExceeded", client, "DescribeCommands",
                      Filters=[{"Name": "command-name", "Values": list("abcdef")}])
    call(client, "DeleteCommand", CommandId=cid)


def test_nested_required_fields_and_codes(client):
    before = total_commands(client)
    expect_call_error("MissingParameter", client, "CreateCommand", CommandName=uniq("n"),
                      Content=b64("true"), Tags=[{"Key": "k"}])
    expect_error("UnknownParameter", client.call_json, "CreateCommand",
                 {"CommandName": uniq("n"), "Content": b64("true"),
                  "Tags": [{"Key": "k", "Value": "v", "Colour": "red"}]})
    expect_call_error("MissingParameter", client, "CreateCommand", CommandName=uniq("n"),
                      Content=b64("echo {{a}}"), EnableParameter=True,
                      DefaultParameterConfs=[{"ParameterName": "a"}])
    expect_error("UnknownParameter", client.call_json, "CreateCommand",
                 {"CommandName": uniq("n"), "Content": b64("echo {{a}}"), "EnableParameter": True,
                  "DefaultParameterConfs": [{"ParameterName": "a", "ParameterValue": "1", "X": "y"}]})
    assert total_commands(client) == before


def test_timestamp_that_is_not_a_number(server):
    body = "{}"
    h = tc3_headers(server.secret_id, server.secret_key, server.addr, "DescribeRegions", body)
    h["X-TC-Timestamp"] = "yesterday"
    r = requests.post(server.url + "/", data=body, headers=h, verify=server.cert, timeout=30)
    rsp = r.json()["Response"]
    assert rsp["Error"]["Code"] == "InvalidParameter", rsp
    assert "X-TC-Timestamp" in rsp["Error"]["Message"] and rsp["RequestId"]
    del h["X-TC-Timestamp"]
    r = requests.post(server.url + "/", data=body, headers=h, verify=server.cert, timeout=30)
    assert r.json()["Response"]["Error"]["Code"] == "MissingParameter"


def test_oversized_body_gets_a_json_error(server, client):
    before = total_commands(client)
    body = json.dumps({"CommandName": uniq("big"), "Content": "A" * (2 << 20)})
    h = tc3_headers(server.secret_id, server.secret_key, server.addr, "CreateCommand", body)
    r = requests.post(server.url + "/", data=body, headers=h, verify=server.cert, timeout=60)
    assert r.status_code == 200
    rsp = r.json()["Response"]
    assert rsp["Error"]["Code"] == "RequestSizeLimitExceeded" and rsp["RequestId"], rsp
    assert total_commands(client) == before


def test_register_code_id_limit(client):
    ids = ["rgstr-%08d" % i for i in range(101)]
    expect_call_error("InvalidParameterValue.LimitExceeded", client, "DescribeRegisterCodes",
                      RegisterCodeIds=ids)
    assert call(client, "DescribeRegisterCodes", RegisterCodeIds=ids[:100]).TotalCount == 0


def test_effective_time_above_99999_is_long_term(client):
    code = call(client, "CreateRegisterCode", Description="long", EffectiveTime=1000000)
    got = call(client, "DescribeRegisterCodes", RegisterCodeIds=[code.RegisterCodeId]).RegisterCodeSet[0]
    left = time.mktime(time.strptime(got.ExpiredTime, "%Y-%m-%dT%H:%M:%SZ")) - time.time()
    assert left > 10 * 365 * 86400, got.ExpiredTime
    tat.next_second()
    call(client, "DeleteRegisterCodes", RegisterCodeIds=[code.RegisterCodeId])
