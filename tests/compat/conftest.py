"""Session fixtures: one real drover server, one API key, one register code
and two real agents, shared by every test module.

The binary is never built here: DROVER_BIN (default target/debug/drover,
relative to the repository root) must already exist.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tat  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def drover_bin():
    p = Path(os.environ.get("DROVER_BIN", REPO / "target" / "debug" / "drover"))
    if not p.is_absolute():
        p = REPO / p
    return p


class Proc:
    """A child process whose output goes to a log file."""

    def __init__(self, args, log_path, env=None):
        self.args = [str(a) for a in args]
        self.log_path = Path(log_path)
        self.log = open(self.log_path, "wb")
        e = dict(os.environ)
        e.setdefault("DROVER_LOG", "info")
        if env:
            e.update(env)
        self.p = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, env=e)

    def tail(self, n=40):
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def stop(self, timeout=10):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self.log.close()
        return self.p.returncode


class Server:
    def __init__(self, data_dir, proc, addr, secret_id, secret_key):
        self.data_dir = Path(data_dir)
        self.proc = proc
        self.addr = addr
        self.cert = str(self.data_dir / "tls" / "cert.pem")
        self.secret_id = secret_id
        self.secret_key = secret_key

    @property
    def url(self):
        return "https://" + self.addr

    def client(self, secret_id=None, secret_key=None, region=tat.REGION):
        return tat.make_client(self.addr, self.cert, secret_id or self.secret_id,
                               secret_key or self.secret_key, region)


def start_server(data_dir, log_path, deadline_s=30, extra=()):
    binp = drover_bin()
    if not binp.exists():
        pytest.exit("drover binary not found at %s (set DROVER_BIN)" % binp, returncode=4)
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    # test_webhooks.py's receiver listens on loopback, which webhooks may
    # only reach when allowed.
    proc = Proc([binp, "server", "--data-dir", data_dir, "--listen", "127.0.0.1:0",
                 "--webhook-allow", "127.0.0.1/32", *extra], log_path)
    addr_file = data_dir / "server.addr"
    end = time.monotonic() + deadline_s
    while True:
        if addr_file.exists():
            addr = addr_file.read_text().strip()
            if addr and (data_dir / "tls" / "cert.pem").exists():
                return proc, addr
        if proc.p.poll() is not None:
            raise RuntimeError("server exited with %s:\n%s" % (proc.p.returncode, proc.tail()))
        if time.monotonic() > end:
            proc.stop()
            raise RuntimeError("server did not write %s:\n%s" % (addr_file, proc.tail()))
        time.sleep(0.1)


def create_key(data_dir):
    out = subprocess.run([str(drover_bin()), "admin", "create-key", "--data-dir", str(data_dir)],
                         capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    key = json.loads(out.stdout)
    assert set(key) >= {"SecretId", "SecretKey"}, key
    return key["SecretId"], key["SecretKey"]


def start_agent(server, code_value, agent_dir, log_path):
    Path(agent_dir).mkdir(parents=True, exist_ok=True)
    return Proc([drover_bin(), "agent", "--server", server.url, "--register-code", code_value,
                 "--data-dir", agent_dir], log_path)


def wait_online(client, code_id, count, deadline_s=30, procs=()):
    """Wait until `count` instances registered with code_id are Online; return their ids."""
    def check():
        for p in procs:
            if p.p.poll() is not None:
                raise AssertionError("agent exited with %s:\n%s" % (p.p.returncode, p.tail()))
        rsp = tat.call(client, "DescribeRegisterInstances",
                       Filters=[{"Name": "register-code-id", "Values": [code_id]}], Limit=100)
        online = [i.InstanceId for i in rsp.RegisterInstanceSet if i.Status == "Online"]
        return online if len(online) >= count else None
    return tat.poll(check, deadline_s, interval=0.3, what="%d agents Online" % count)


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("drover-compat")


@pytest.fixture(scope="session")
def server(workdir):
    data = workdir / "server"
    proc, addr = start_server(data, workdir / "server.log")
    try:
        sid, skey = create_key(data)
        srv = Server(data, proc, addr, sid, skey)
        yield srv
    finally:
        rc = proc.stop()
        if os.environ.get("COMPAT_KEEP_LOGS"):
            print("server log: %s (exit %s)" % (workdir / "server.log", rc))


@pytest.fixture(scope="session")
def client(server):
    return server.client()


@pytest.fixture(scope="session")
def register_code(client):
    rsp = tat.call(client, "CreateRegisterCode", Description="compat suite agents",
                   InstanceNamePrefix="compat", RegisterLimit=10)
    return rsp.RegisterCodeId, rsp.RegisterCodeValue


@pytest.fixture(scope="session")
def agents(server, client, register_code, workdir):
    """Two real agents, both Online. Returns their instance ids (sorted)."""
    code_id, code_value = register_code
    procs = [start_agent(server, code_value, workdir / ("agent%d" % i), workdir / ("agent%d.log" % i))
             for i in range(2)]
    try:
        ids = wait_online(client, code_id, 2, deadline_s=40, procs=procs)
        yield sorted(ids)
    finally:
        for p in procs:
            p.stop()


@pytest.fixture(scope="session")
def instance_ids(agents):
    return agents


@pytest.fixture(scope="session")
def one_instance(agents):
    return agents[0]


class Tccli:
    """tccli run the way README's "tccli" section documents: installed in an
    environment of its own whose certifi bundle also trusts the appliance
    (public CAs stay trusted; nothing outside that environment changes), and
    a profile whose tat and cam endpoints both point at the appliance."""

    def __init__(self, python, script, env, profile):
        self.python, self.script, self.env, self.profile = python, script, env, profile

    def run(self, service, action, *args, check=True):
        p = subprocess.run([self.python, self.script, service, action, "--profile", self.profile,
                            *[str(a) for a in args]], capture_output=True, env=self.env, timeout=60)
        if not check:
            return p
        assert p.returncode == 0, (p.stdout + p.stderr).decode(errors="replace")
        return json.loads(p.stdout)


@pytest.fixture(scope="session")
def tccli(tccli_bin, server, tmp_path_factory):
    d = tmp_path_factory.mktemp("tccli")
    # tccli's own environment. The suite has no network for `pip install
    # tccli`, so the new environment reaches the suite's installed packages
    # through a .pth file and holds its own copy of certifi, as a pipx or
    # venv install of tccli would.
    venv = d / "tccli-env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    vpy = venv / "bin" / "python"
    site = subprocess.run([str(vpy), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, check=True, timeout=60).stdout.decode().strip()
    import certifi
    shutil.copytree(Path(certifi.__file__).parent, Path(site) / "certifi")
    (Path(site) / "suite-packages.pth").write_text(
        "\n".join(p for p in sys.path if p.endswith("site-packages")) + "\n")
    env = dict(os.environ, HOME=str(d / "home"))
    for k in ("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "TENCENTCLOUD_REGION",
              "REQUESTS_CA_BUNDLE", "PYTHONPATH"):
        env.pop(k, None)
    (d / "home").mkdir()
    # The documented trust step: append the appliance's certificate to the
    # bundle that environment's certifi names.
    bundle = subprocess.run([str(vpy), "-m", "certifi"], capture_output=True, check=True,
                            env=env, timeout=60).stdout.decode().strip()
    assert Path(bundle).is_relative_to(venv), bundle
    with open(bundle, "a") as f:
        f.write("\n" + Path(server.cert).read_text())
    # The documented profile: both services' endpoints at the appliance.
    profile = "drover"
    subprocess.run([str(vpy), tccli_bin, "configure", "set", "--profile", profile,
                    "secretId", server.secret_id, "secretKey", server.secret_key,
                    "region", tat.REGION, "tat.endpoint", server.addr, "cam.endpoint", server.addr],
                   check=True, capture_output=True, env=env, timeout=60)
    return Tccli(str(vpy), tccli_bin, env, profile)


@pytest.fixture(scope="session")
def tccli_bin():
    p = Path(sys.executable).parent / "tccli"
    if p.exists():
        return str(p)
    w = shutil.which("tccli")
    if not w:
        pytest.fail("tccli not installed")
    return w
