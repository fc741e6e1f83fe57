"""The official Node.js SDK (tencentcloud-sdk-nodejs, pinned in
tests/compat/node/package-lock.json and installed there by scripts/test-compat
with `npm ci`) against drover, configured the way a user writes it: endpoint
"127.0.0.1:PORT" and the appliance's certificate trusted through Node's
standard NODE_EXTRA_CA_CERTS. The driver (node/drive.js) asserts each step."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import tat

NODE_DIR = Path(__file__).resolve().parent / "node"


def test_node_sdk_drives_tat_and_cam(server, client, instance_ids):
    node = shutil.which("node")
    if not node:
        pytest.fail("node is not installed (Node.js 18+ is needed for the Node.js SDK tests)")
    if not (NODE_DIR / "node_modules" / "tencentcloud-sdk-nodejs").is_dir():
        pytest.fail("tests/compat/node/node_modules is missing: run scripts/test-compat (it runs npm ci)")
    env = dict(os.environ)
    env.update({
        "DROVER_ADDR": server.addr,
        "SECRET_ID": server.secret_id,
        "SECRET_KEY": server.secret_key,
        "INSTANCE_IDS": json.dumps(instance_ids),
        "REGION": tat.REGION,
        "NODE_EXTRA_CA_CERTS": server.cert,
    })
    before = tat.call(client, "DescribeInvocations", Limit=1).TotalCount
    p = subprocess.run([node, str(NODE_DIR / "drive.js")], cwd=NODE_DIR, env=env,
                       capture_output=True, timeout=300)
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, out + p.stderr.decode(errors="replace")
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["ok"] and len(summary["steps"]) == 12, summary
    # The runs the driver started are visible to the Python SDK too.
    assert tat.call(client, "DescribeInvocations", Limit=1).TotalCount == before + 2
