#!/usr/bin/env python3
"""Fan-out latency benchmark for drover; run it through scripts/bench-fanout.

Starts `drover server` and N `drover agent` processes (one register code,
one data dir each) under --work, waits until all N are Online, then times R
rounds of RunCommand `true` on all N: from sending RunCommand until
DescribeInvocations reports SUCCESS, polling every --poll-ms. Prints the
latencies, the resident memory of the server and of idle agents, and the
binary's size. Stops everything it started on any exit; the wrapper removes
--work.
"""

import argparse
import warnings
import base64
import json
import math
import os
import signal
import statistics
import struct
import subprocess
import sys
import time
import urllib.request

from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.tat.v20201028 import models, tat_client

RUN_COMMAND_MAX = 200  # InstanceIds per RunCommand
DESCRIBE_MAX = 100  # InvocationIds per DescribeInvocations / page size
FINAL = {"SUCCESS", "FAILED", "PARTIAL_FAILED", "TIMEOUT", "CANCELLED", "PARTIAL_CANCELLED"}
MiB = 1024 * 1024


class Procs:
    """Children we started, recorded in WORK/pids for the wrapper's safety net."""

    def __init__(self, work):
        self.pidfile = os.path.join(work, "pids")
        self.all = []

    def start(self, argv, log_path):
        log = open(log_path, "wb")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        with open(self.pidfile, "a") as f:
            f.write(f"{p.pid}\n")
        self.all.append(p)
        return p

    def stop(self):
        for p in self.all:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for p in self.all:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def rollup(pid):
    """{"Rss": bytes, "Pss": ..., "Anonymous": ...} from smaps_rollup."""
    out = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[2] == "kB":
                    out[parts[0].rstrip(":")] = int(parts[1]) * 1024
    except OSError:
        pass
    return out


def ctxt_switches(pid):
    """Voluntary + involuntary context switches: each is a wake-up."""
    n = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                n += int(line.split()[1])
    return n


def cpu_seconds(pid):
    """utime + stime of a process (its own, not its children's)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def is_stripped(path):
    """True when the ELF file has no .symtab section."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return None
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    str_off, = struct.unpack_from("<Q", data, shoff + shstrndx * shentsize + 0x18)
    for i in range(shnum):
        name_off, = struct.unpack_from("<I", data, shoff + i * shentsize)
        start = str_off + name_off
        if data[start:data.index(b"\0", start)] == b".symtab":
            return False
    return True


def tail(path, n=20):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def wait_for(what, check, timeout, procs=()):
    deadline = time.monotonic() + timeout
    while True:
        v = check()
        if v:
            return v
        for p, log in procs:
            if p.poll() is not None:
                sys.exit(f"{what}: process {p.pid} exited with {p.returncode}\n{tail(log)}")
        if time.monotonic() > deadline:
            sys.exit(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def call(client, action, params):
    req = getattr(models, action + "Request")()
    req.from_json_string(json.dumps(params))
    return getattr(client, action)(req)


def online_count(client):
    r = call(client, "DescribeAutomationAgentStatus",
             {"Filters": [{"Name": "agent-status", "Values": ["Online"]}], "Limit": 1})
    return r.TotalCount


def instance_ids(client):
    ids, offset = [], 0
    while True:
        r = call(client, "DescribeRegisterInstances", {"Limit": DESCRIBE_MAX, "Offset": offset})
        ids += [i.InstanceId for i in r.RegisterInstanceSet]
        offset += DESCRIBE_MAX
        if offset >= r.TotalCount:
            return ids


def chunks(xs, n):
    return [xs[i:i + n] for i in range(0, len(xs), n)]


def run_command(client, content, part, max_concurrency):
    if max_concurrency is None:
        return call(client, "RunCommand", {"Content": content, "InstanceIds": part}).InvocationId
    # MaxConcurrency is a drover extension: the typed request would drop it.
    rsp = client.call_json("RunCommand", {"Content": content, "InstanceIds": part,
                                          "MaxConcurrency": max_concurrency})
    return rsp["Response"]["InvocationId"]


def scrape(addr):
    """The server's /metrics as {series: value}."""
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=30) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, v = line.rpartition(" ")
            out[series] = float(v)
    return out


STAGES = [
    # (label, stage series label or None, what it covers)
    ("api: parse, auth, decide", None, "RunCommand latency minus store and push"),
    ("api: store write", "store", "invocation, tasks, DELIVERING marks, audit row: one transaction"),
    ("api: push", "push", "queue RunTask (after the commit)"),
    ("api: audit record (others)", "audit", "audit row of the other calls (the polls)"),
    ("deliver", "deliver", "server queued RunTask -> agent read it"),
    ("agent: journal", "journal", "task journaled"),
    ("agent: spawn", "spawn", "journaled -> process spawned"),
    ("agent: first output", "first_output", "spawned -> first output (tasks with output)"),
    ("agent: run to exit", "run", "spawned -> exited, output drained"),
    ("agent: finish", "finish", "result journaled + queued"),
    ("report", "report", "agent queued result -> server read it"),
    ("server: result commit", "commit", "TaskFinished read -> committed"),
]


def hist_delta(m0, m1, name, labels):
    """(count, mean, p50, p90) of a histogram between two scrapes."""
    sep = "," if labels else ""
    count = m1.get(f"{name}_count{{{labels}}}" if labels else f"{name}_count", 0) - \
        m0.get(f"{name}_count{{{labels}}}" if labels else f"{name}_count", 0)
    total = m1.get(f"{name}_sum{{{labels}}}" if labels else f"{name}_sum", 0) - \
        m0.get(f"{name}_sum{{{labels}}}" if labels else f"{name}_sum", 0)
    if count <= 0:
        return 0, 0.0, 0.0, 0.0
    buckets = []
    prefix = f"{name}_bucket{{{labels}{sep}le=\""
    for k, v in m1.items():
        if k.startswith(prefix):
            le = k[len(prefix):-2]
            bound = math.inf if le == "+Inf" else float(le)
            buckets.append((bound, v - m0.get(k, 0)))
    buckets.sort()

    def q(p):
        for bound, c in buckets:
            if c >= p * count:
                return bound
        return math.inf
    return int(count), total / count, q(0.5), q(0.9)


def print_stages(m0, m1, rounds, n, visible):
    print(f"  stages (per task, {rounds} rounds x {n} tasks; p50/p90 are histogram bucket bounds)")
    api = hist_delta(m0, m1, "drover_api_request_seconds", 'action="RunCommand"')
    means = {}
    for label, stage, _ in STAGES[1:]:
        means[stage] = hist_delta(m0, m1, "drover_task_stage_seconds", f'stage="{stage}"')
    rows = [("RunCommand call (server)", api, "whole call, per call")]
    # RunCommand's audit row is written in its store write (since session 5);
    # the audit stage counts the other calls (DescribeInvocations polls).
    other = api[1] - sum(means[s][1] for s in ("store", "push"))
    rows.append((STAGES[0][0], (api[0], other, None, None), STAGES[0][2]))
    for label, stage, what in STAGES[1:]:
        rows.append((label, means[stage], what))
    for label, (count, mean, p50, p90), what in rows:
        ps = "" if p50 is None else f"  p50 <= {fmt_s(p50)}  p90 <= {fmt_s(p90)}"
        print(f"    {label:26s} mean {fmt_s(mean):>9s}{ps:34s} n={count:<6d} {what}")
    if visible:
        print(f"    {'status visible':26s} mean {fmt_s(statistics.mean(visible)):>9s}"
              f"  (last task committed -> client saw SUCCESS, polling every round)")
    comp = hist_delta(m0, m1, "drover_task_completion_seconds", "")
    batch = hist_delta(m0, m1, "drover_store_batch_jobs", "")
    commit = hist_delta(m0, m1, "drover_store_commit_seconds", "")
    print(f"    task created -> committed  mean {fmt_s(comp[1])}  (all stages above, overlapped)")
    print(f"    store                      {commit[0]} transactions, mean {batch[1]:.1f} jobs, "
          f"mean commit {fmt_s(commit[1])}")


def one_round(client, ids, content, poll_s, timeout, max_concurrency=None):
    """Seconds from sending RunCommand to all invocations SUCCESS, plus the
    RunCommand call's own time and the DescribeInvocations round trips."""
    t0 = time.perf_counter()
    inv_ids = [run_command(client, content, part, max_concurrency)
               for part in chunks(ids, RUN_COMMAND_MAX)]
    t_sent = time.perf_counter() - t0
    rtts = []
    while True:
        statuses = []
        for part in chunks(inv_ids, DESCRIBE_MAX):
            q0 = time.perf_counter()
            r = call(client, "DescribeInvocations", {"InvocationIds": part, "Limit": DESCRIBE_MAX})
            rtts.append(time.perf_counter() - q0)
            statuses += [i.InvocationStatus for i in r.InvocationSet]
        if len(statuses) == len(inv_ids) and all(s == "SUCCESS" for s in statuses):
            return time.perf_counter() - t0, t_sent, rtts
        if len(statuses) == len(inv_ids) and all(s in FINAL for s in statuses):
            sys.exit(f"round ended with {statuses} (invocations {inv_ids})")
        if time.perf_counter() - t0 > timeout:
            sys.exit(f"round not done after {timeout} s: {statuses}")
        time.sleep(poll_s)


def p90(xs):
    s = sorted(xs)
    return s[math.ceil(0.9 * len(s)) - 1]


def fmt_s(x):
    return f"{x * 1000:.1f} ms"


def fmt_mib(b):
    return f"{b / MiB:.1f} MiB"


def main():
    # The typed models warn about drover's extension fields (MaxConcurrency).
    warnings.filterwarnings("ignore", message=".*fileds are useless")
    ap = argparse.ArgumentParser(prog="bench-fanout")
    ap.add_argument("n", type=int, help="number of agents")
    ap.add_argument("--rounds", type=int, default=20, help="measured rounds (default 20)")
    ap.add_argument("--warmup", type=int, default=1, help="unmeasured rounds first (default 1)")
    ap.add_argument("--poll-ms", type=float, default=5.0, help="DescribeInvocations poll interval (default 5)")
    ap.add_argument("--max-concurrency", default=None,
                    help="roll out in waves (drover's MaxConcurrency, e.g. 10 or 10%%)")
    ap.add_argument("--wakeups", type=float, default=0, metavar="SECS",
                    help="count idle agents' wake-ups over SECS seconds (e.g. 60)")
    ap.add_argument("--stages", action="store_true",
                    help="print where each task's time goes (from the server's /metrics)")
    ap.add_argument("--work", required=True, help="scratch directory (the wrapper makes and removes it)")
    a = ap.parse_args()
    if a.n < 1 or a.rounds < 1:
        ap.error("N and --rounds must be at least 1")
    binary = os.environ["DROVER_BIN"]
    procs = Procs(a.work)
    # SIGTERM from the wrapper unwinds through `finally` like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        run(a, binary, procs)
    finally:
        procs.stop()


def run(a, binary, procs):
    sdir = os.path.join(a.work, "server")
    os.makedirs(os.path.join(a.work, "agents"))
    slog = os.path.join(a.work, "server.log")
    server = procs.start([binary, "server", "--data-dir", sdir, "--listen", "127.0.0.1:0",
                          "--metrics-listen", "127.0.0.1:0"], slog)
    addr_file = os.path.join(sdir, "server.addr")
    addr = wait_for("the server's address", lambda: os.path.exists(addr_file) and open(addr_file).read().strip(),
                    30, [(server, slog)])
    key = json.loads(subprocess.run([binary, "admin", "create-key", "--data-dir", sdir],
                                    check=True, capture_output=True, text=True).stdout)
    hp = HttpProfile(endpoint=addr)
    hp.certification = os.path.join(sdir, "tls", "cert.pem")
    hp.keepAlive = True
    client = tat_client.TatClient(credential.Credential(key["SecretId"], key["SecretKey"]), "ap-guangzhou",
                                  ClientProfile(httpProfile=hp))

    code = call(client, "CreateRegisterCode", {"Description": "bench-fanout", "RegisterLimit": a.n}).RegisterCodeValue
    agents = []
    t_reg = time.perf_counter()
    for i in range(a.n):
        adir = os.path.join(a.work, "agents", f"a{i:05d}")
        alog = adir + ".log"
        p = procs.start([binary, "agent", "--server", "https://" + addr, "--register-code", code,
                         "--data-dir", adir], alog)
        agents.append((p, alog))
    wait_for(f"{a.n} agents Online", lambda: online_count(client) >= a.n, 60 + a.n * 0.5,
             [(server, slog)] + agents)
    t_reg = time.perf_counter() - t_reg
    ids = instance_ids(client)
    if len(ids) != a.n:
        sys.exit(f"expected {a.n} registered instances, found {len(ids)}")

    # Idle figures: let start-up garbage settle before reading /proc.
    time.sleep(2)
    idle_agents = [rss_bytes(p.pid) for p, _ in agents]
    idle_server = rss_bytes(server.pid)
    idle_roll = [rollup(p.pid) for p, _ in agents]
    wakeups = None
    if a.wakeups > 0:
        w0 = [ctxt_switches(p.pid) for p, _ in agents]
        time.sleep(a.wakeups)
        w1 = [ctxt_switches(p.pid) for p, _ in agents]
        wakeups = [(y - x) * 60 / a.wakeups for x, y in zip(w0, w1)]

    content = base64.b64encode(b"true").decode()
    poll_s = a.poll_ms / 1000
    for _ in range(a.warmup):
        one_round(client, ids, content, poll_s, 120, a.max_concurrency)
    maddr = open(os.path.join(sdir, "metrics.addr")).read().strip() if a.stages else None
    m0 = scrape(maddr) if a.stages else None
    visible = []
    lat, sent, rtts = [], [], []
    cpu0 = (cpu_seconds(server.pid), sum(cpu_seconds(p.pid) for p, _ in agents))
    for r in range(a.rounds):
        t, ts, rt = one_round(client, ids, content, poll_s, 120, a.max_concurrency)
        lat.append(t)
        sent.append(ts)
        rtts += rt
        if a.stages:
            seen = time.time()
            last_end = scrape(maddr)["drover_last_task_end_timestamp_seconds"]
            visible.append(max(0.0, seen - last_end))
        print(f"  round {r + 1:3d}: {fmt_s(t)}", file=sys.stderr)
    cpu1 = (cpu_seconds(server.pid), sum(cpu_seconds(p.pid) for p, _ in agents))
    m1 = scrape(maddr) if a.stages else None
    busy_server = rss_bytes(server.pid)
    busy_agents = [rss_bytes(p.pid) for p, _ in agents]

    size = os.path.getsize(binary)
    stripped = is_stripped(binary)
    print(f"drover fan-out benchmark ({os.cpu_count()} CPUs)")
    print(f"  binary                 {binary}")
    print(f"  N (agents)             {a.n} (all Online {t_reg:.2f} s after start)")
    print(f"  rounds                 {a.rounds} (after {a.warmup} unmeasured warm-up)")
    if a.max_concurrency is not None:
        print(f"  MaxConcurrency         {a.max_concurrency} (waves released as tasks end)")
    print(f"  polling                DescribeInvocations every {a.poll_ms:g} ms "
          f"(+ its round trip: median {fmt_s(statistics.median(rtts))})")
    print(f"  RunCommand -> SUCCESS  median {fmt_s(statistics.median(lat))}  p90 {fmt_s(p90(lat))}  "
          f"min {fmt_s(min(lat))}  max {fmt_s(max(lat))}")
    print(f"  RunCommand call alone  median {fmt_s(statistics.median(sent))}  max {fmt_s(max(sent))}")
    print(f"  CPU per round          server {fmt_s((cpu1[0] - cpu0[0]) / a.rounds)}, "
          f"all agents {fmt_s((cpu1[1] - cpu0[1]) / a.rounds)} (without their `true` children)")
    print(f"  server RSS             {fmt_mib(idle_server)} idle with {a.n} agents, "
          f"{fmt_mib(busy_server)} after the rounds")
    print(f"  agent RSS (idle)       median {fmt_mib(statistics.median(idle_agents))}  max {fmt_mib(max(idle_agents))}"
          f"  (after the rounds: median {fmt_mib(statistics.median(busy_agents))}, max {fmt_mib(max(busy_agents))})")
    strip_note = {True: "stripped", False: "not stripped", None: "not ELF64"}[stripped]
    if idle_roll and idle_roll[0]:
        pss = statistics.median(r.get("Pss", 0) for r in idle_roll)
        anon = statistics.median(r.get("Anonymous", 0) for r in idle_roll)
        print(f"  agent memory (idle)    median PSS {fmt_mib(pss)}, anonymous {fmt_mib(anon)} "
              f"(the rest of RSS is the binary's pages, shared by all agents)")
    if wakeups is not None:
        print(f"  agent wake-ups (idle)  median {statistics.median(wakeups):.1f}/min, "
              f"max {max(wakeups):.1f}/min over {a.wakeups:g} s (context switches)")
    if a.stages:
        print_stages(m0, m1, a.rounds, a.n, visible)
    print(f"  agent binary           {size} bytes = {size / 1e6:.1f} MB ({fmt_mib(size)}), {strip_note}")


if __name__ == "__main__":
    main()
