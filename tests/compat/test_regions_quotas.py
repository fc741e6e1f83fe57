"""DescribeRegions / DescribeQuotas."""

from tat import b64, call, expect_call_error, uniq


def test_describe_regions(client):
    rsp = call(client, "DescribeRegions")
    assert rsp.TotalCount == len(rsp.RegionSet) >= 1
    for r in rsp.RegionSet:
        assert r.Region and r.RegionName
        assert r.RegionState in ("AVAILABLE", "UNAVAILABLE")


def test_other_region_gets_region_error(server, client):
    # An appliance is one region: another region's requests are refused with
    # the API's region error and change nothing; DescribeRegions still
    # answers so a client can find the region to use.
    c = server.client(region="eu-frankfurt")
    assert call(c, "DescribeRegions").RegionSet[0].Region == "ap-guangzhou"
    before = call(client, "DescribeCommands", Limit=1).TotalCount
    expect_call_error("UnsupportedRegion", c, "CreateCommand", CommandName=uniq("rg"), Content=b64("true"))
    expect_call_error("UnsupportedRegion", c, "DescribeCommands", Limit=7)
    assert call(client, "DescribeCommands", Limit=1).TotalCount == before


def quotas(client, names=None):
    fields = {"ResourceNames": names} if names else {}
    rsp = call(client, "DescribeQuotas", **fields)
    return {q.ResourceName: q for q in rsp.GeneralResourceQuotaSet}


def test_describe_quotas(client):
    q = quotas(client, ["COMMAND", "REGISTER_CODE"])
    assert set(q) == {"COMMAND", "REGISTER_CODE"}
    for item in q.values():
        assert 0 <= item.ResourceQuotaUsed <= item.ResourceQuotaTotal
        assert item.ResourceQuotaTotal > 0
    only = quotas(client, ["COMMAND"])
    assert set(only) == {"COMMAND"}


def test_quota_used_tracks_commands(client):
    user_cmds = call(client, "DescribeCommands", Filters=[{"Name": "created-by", "Values": ["USER"]}]).TotalCount
    assert quotas(client, ["COMMAND"])["COMMAND"].ResourceQuotaUsed == user_cmds
    cid = call(client, "CreateCommand", CommandName=uniq("quota"), Content=b64("true")).CommandId
    assert quotas(client, ["COMMAND"])["COMMAND"].ResourceQuotaUsed == user_cmds + 1
    call(client, "DeleteCommand", CommandId=cid)
    assert quotas(client, ["COMMAND"])["COMMAND"].ResourceQuotaUsed == user_cmds


def test_quota_used_tracks_register_codes(client):
    used = quotas(client, ["REGISTER_CODE"])["REGISTER_CODE"].ResourceQuotaUsed
    code = call(client, "CreateRegisterCode").RegisterCodeId
    assert quotas(client, ["REGISTER_CODE"])["REGISTER_CODE"].ResourceQuotaUsed == used + 1
    call(client, "DeleteRegisterCodes", RegisterCodeIds=[code])
    assert quotas(client, ["REGISTER_CODE"])["REGISTER_CODE"].ResourceQuotaUsed == used


def test_describe_quotas_unknown_resource(client):
    expect_call_error("ResourceUnavailable.InvalidResourceQuotaResourceCode", client, "DescribeQuotas",
                      ResourceNames=["NOPE"])
