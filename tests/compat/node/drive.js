// Drives a running drover through the official Tencent Cloud Node.js SDK
// (tencentcloud-sdk-nodejs), configured as a user would: endpoint
// "127.0.0.1:PORT", the appliance's certificate trusted through Node's own
// NODE_EXTRA_CA_CERTS. Every step asserts; the process exits non-zero on the
// first failure and prints one JSON summary line on success.
//
// Environment: DROVER_ADDR (host:port), SECRET_ID, SECRET_KEY,
// INSTANCE_IDS (JSON list of two Online instances), REGION.
"use strict";

const assert = require("node:assert/strict");
const { tat } = require("tencentcloud-sdk-nodejs/tencentcloud/services/tat");
const { cam } = require("tencentcloud-sdk-nodejs/tencentcloud/services/cam");

const addr = process.env.DROVER_ADDR;
const instanceIds = JSON.parse(process.env.INSTANCE_IDS || "[]");
const region = process.env.REGION || "ap-guangzhou";
const config = (extra = {}) => ({
  credential: { secretId: process.env.SECRET_ID, secretKey: process.env.SECRET_KEY },
  region,
  profile: { httpProfile: { endpoint: addr, reqTimeout: 30, ...extra } },
});
const client = new tat.v20201028.Client(config());
const camClient = new cam.v20190116.Client(config());

const b64 = (s) => Buffer.from(s).toString("base64");
const unb64 = (s) => Buffer.from(s || "", "base64").toString();
const uniq = (p) => `${p}-${Math.random().toString(36).slice(2, 10)}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const TERMINAL = new Set(["SUCCESS", "FAILED", "TIMEOUT", "CANCELLED", "PARTIAL_FAILED", "PARTIAL_CANCELLED"]);
const done = [];


async function step(name, fn) {
  try {
    await fn();
    done.push(name);
  } catch (e) {
    console.error(`step ${name} failed:`, e && (e.code || ""), e && e.message, e && e.stack);
    process.exit(1);
  }
}

async function expectError(code, fn) {
  let err = null;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected error ${code}, the call succeeded`);
  assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
  assert.ok(err.requestId, "an error carries its RequestId");
}

async function waitInvocation(id, deadlineMs = 60000) {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const r = await client.DescribeInvocations({ InvocationIds: [id] });
    assert.equal(r.TotalCount, 1);
    const inv = r.InvocationSet[0];
    if (TERMINAL.has(inv.InvocationStatus)) return inv;
    assert.ok(Date.now() < end, `invocation ${id} still ${inv.InvocationStatus}`);
    await sleep(300);
  }
}

async function main() {
  assert.ok(addr && instanceIds.length === 2, "DROVER_ADDR and two INSTANCE_IDS are required");

  await step("DescribeRegions", async () => {
    const r = await client.DescribeRegions({});
    assert.equal(r.TotalCount, 1);
    assert.equal(r.RegionSet[0].Region, region);
    assert.ok(r.RequestId);
  });

  let commandId;
  const name = uniq("node");
  await step("CreateCommand/DescribeCommands/ModifyCommand", async () => {
    const c = await client.CreateCommand({
      CommandName: name,
      Content: b64("echo node-{{who}}"),
      EnableParameter: true,
      DefaultParameters: JSON.stringify({ who: "sdk" }),
      Timeout: 30,
      Tags: [{ Key: "team", Value: "node" }],
    });
    assert.match(c.CommandId, /^cmd-[a-z0-9]{8}$/);
    commandId = c.CommandId;
    const d = await client.DescribeCommands({ CommandIds: [commandId] });
    assert.equal(d.TotalCount, 1);
    const cmd = d.CommandSet[0];
    assert.equal(cmd.CommandName, name);
    assert.equal(unb64(cmd.Content), "echo node-{{who}}");
    assert.equal(cmd.Timeout, 30);
    assert.equal(cmd.EnableParameter, true);
    assert.deepEqual(cmd.Tags, [{ Key: "team", Value: "node" }]);
    await client.ModifyCommand({ CommandId: commandId, Description: "changed by node" });
    const f = await client.DescribeCommands({ Filters: [{ Name: "command-name", Values: [name] }] });
    assert.equal(f.CommandSet[0].Description, "changed by node");
  });

  await step("RunCommand→DescribeInvocationTasks", async () => {
    const marker = uniq("out");
    const r = await client.RunCommand({ Content: b64(`echo ${marker}`), InstanceIds: instanceIds, Timeout: 30 });
    assert.match(r.InvocationId, /^inv-[a-z0-9]{8}$/);
    const inv = await waitInvocation(r.InvocationId);
    assert.equal(inv.InvocationStatus, "SUCCESS");
    const t = await client.DescribeInvocationTasks({
      Filters: [{ Name: "invocation-id", Values: [r.InvocationId] }],
      HideOutput: false,
    });
    assert.equal(t.TotalCount, 2);
    for (const task of t.InvocationTaskSet) {
      assert.equal(task.TaskStatus, "SUCCESS");
      assert.equal(task.TaskResult.ExitCode, 0);
      assert.equal(unb64(task.TaskResult.Output), `${marker}\n`);
      assert.ok(instanceIds.includes(task.InstanceId));
    }
  });

  await step("InvokeCommand with parameters", async () => {
    const r = await client.InvokeCommand({
      CommandId: commandId,
      InstanceIds: [instanceIds[0]],
      Parameters: JSON.stringify({ who: "invoke" }),
    });
    await waitInvocation(r.InvocationId);
    const t = await client.DescribeInvocationTasks({
      Filters: [{ Name: "invocation-id", Values: [r.InvocationId] }],
      HideOutput: false,
    });
    assert.equal(unb64(t.InvocationTaskSet[0].TaskResult.Output), "node-invoke\n");
  });

  await step("Invokers", async () => {
    const c = await client.CreateInvoker({
      Name: uniq("node-ivk"),
      Type: "SCHEDULE",
      CommandId: commandId,
      InstanceIds: [instanceIds[0]],
      ScheduleSettings: { Policy: "ONCE", InvokeTime: "2099-01-01T00:00:00Z" },
    });
    const id = c.InvokerId;
    assert.match(id, /^ivk-[a-z0-9]{8}$/);
    const d = await client.DescribeInvokers({ InvokerIds: [id] });
    assert.equal(d.TotalCount, 1);
    assert.equal(d.InvokerSet[0].Enable, true);
    assert.equal(d.InvokerSet[0].ScheduleSettings.Policy, "ONCE");
    await client.DisableInvoker({ InvokerId: id });
    assert.equal((await client.DescribeInvokers({ InvokerIds: [id] })).InvokerSet[0].Enable, false);
    await client.EnableInvoker({ InvokerId: id });
    assert.equal((await client.DescribeInvokers({ InvokerIds: [id] })).InvokerSet[0].Enable, true);
    const rec = await client.DescribeInvokerRecords({ InvokerIds: [id] });
    assert.equal(rec.TotalCount, 0);
    await client.DeleteInvoker({ InvokerId: id });
    assert.equal((await client.DescribeInvokers({ InvokerIds: [id] })).TotalCount, 0);
  });

  await step("Register codes", async () => {
    const c = await client.CreateRegisterCode({ Description: "node", RegisterLimit: 3, EffectiveTime: 60 });
    assert.ok(c.RegisterCodeId && c.RegisterCodeValue);
    const d = await client.DescribeRegisterCodes({ RegisterCodeIds: [c.RegisterCodeId] });
    assert.equal(d.TotalCount, 1);
    assert.equal(d.RegisterCodeSet[0].Description, "node");
    assert.equal(d.RegisterCodeSet[0].RegisterLimit, 3);
    assert.equal(d.RegisterCodeSet[0].Enabled, true);
    await client.DisableRegisterCodes({ RegisterCodeIds: [c.RegisterCodeId] });
    const e = await client.DescribeRegisterCodes({ RegisterCodeIds: [c.RegisterCodeId] });
    assert.equal(e.RegisterCodeSet[0].Enabled, false);
    await client.DeleteRegisterCodes({ RegisterCodeIds: [c.RegisterCodeId] });
    assert.equal((await client.DescribeRegisterCodes({ RegisterCodeIds: [c.RegisterCodeId] })).TotalCount, 0);
  });

  await step("Instances and agent status", async () => {
    const r = await client.DescribeRegisterInstances({ InstanceIds: instanceIds });
    assert.equal(r.TotalCount, 2);
    const s = await client.DescribeAutomationAgentStatus({ InstanceIds: instanceIds });
    assert.equal(s.AutomationAgentSet.length, 2);
    for (const a of s.AutomationAgentSet) assert.equal(a.AgentStatus, "Online");
  });

  await step("Errors", async () => {
    await expectError("InvalidParameterValue.InvalidCommandId", () =>
      client.DescribeCommands({ CommandIds: ["not-an-id"] }));
    await expectError("ResourceNotFound.CommandNotFound", () =>
      client.DeleteCommand({ CommandId: "cmd-00000000" }));
    await expectError("MissingParameter", () => client.CreateCommand({ CommandName: uniq("x") }));
    const other = new tat.v20201028.Client({ ...config(), credential: { secretId: process.env.SECRET_ID, secretKey: "wrong" } });
    await expectError("AuthFailure.SignatureFailure", () => other.DescribeRegions({}));
  });

  await step("Polling twice in one second", async () => {
    const a = await client.DescribeInvocations({ Limit: 1 });
    const b = await client.DescribeInvocations({ Limit: 1 });
    assert.equal(a.TotalCount, b.TotalCount);
  });

  await step("CAM through the same endpoint", async () => {
    const u = await camClient.ListUsers({});
    assert.ok(Array.isArray(u.Data));
    const n = uniq("nodeuser");
    const added = await camClient.AddUser({ Name: n, ConsoleLogin: 0, UseApi: 0 });
    assert.ok(added.Uin);
    const g = await camClient.GetUser({ Name: n });
    assert.equal(g.Name, n);
    await camClient.DeleteUser({ Name: n });
    // A TAT action is not CAM's, whatever endpoint signed it.
    await expectError("InvalidAction", () => camClient.request("DescribeRegions", {}));
  });

  await step("Other documented settings", async () => {
    // reqMethod GET with TC3, and the v1 signature (HmacSHA1/HmacSHA256)
    // over a form body or the query string.
    const settings = [
      { reqMethod: "GET" },
      { reqMethod: "POST", signMethod: "HmacSHA1" },
      { reqMethod: "GET", signMethod: "HmacSHA256" },
    ];
    for (const { reqMethod, signMethod } of settings) {
      const base = config({ reqMethod });
      const c = new tat.v20201028.Client({ ...base, profile: { ...base.profile, signMethod } });
      const f = await c.DescribeCommands({ Filters: [{ Name: "command-name", Values: [name] }], Limit: 5 });
      assert.equal(f.TotalCount, 1, `${reqMethod} ${signMethod}`);
      assert.equal(f.CommandSet[0].CommandId, commandId);
      const made = await c.CreateCommand({ CommandName: uniq("set"), Content: b64("true"), EnableParameter: false });
      await c.DeleteCommand({ CommandId: made.CommandId });
      assert.equal((await client.DescribeCommands({ CommandIds: [made.CommandId] })).TotalCount, 0);
    }
  });

  await step("DeleteCommand", async () => {
    await client.DeleteCommand({ CommandId: commandId });
    assert.equal((await client.DescribeCommands({ CommandIds: [commandId] })).TotalCount, 0);
  });

  console.log(JSON.stringify({ ok: true, steps: done }));
}

main().catch((e) => {
  console.error("driver failed:", e);
  process.exit(1);
});
