"""Server process contract: address file, certificate, SIGTERM."""

import ssl
import subprocess

from conftest import create_key, start_server
from tat import call, make_client


def test_cert_sans(server):
    info = ssl._ssl._test_decode_cert(server.cert)
    sans = set(info.get("subjectAltName", ()))
    assert ("DNS", "localhost") in sans, sans
    assert ("IP Address", "127.0.0.1") in sans, sans


def test_localhost_endpoint_verifies(server):
    port = server.addr.rsplit(":", 1)[1]
    c = make_client("localhost:" + port, server.cert, server.secret_id, server.secret_key)
    assert call(c, "DescribeRegions").TotalCount >= 1


def test_create_key_while_running(server):
    sid, skey = create_key(server.data_dir)
    assert sid != server.secret_id
    c = make_client(server.addr, server.cert, sid, skey)
    assert call(c, "DescribeRegions").TotalCount >= 1


def test_sigterm_stops_cleanly(tmp_path):
    proc, addr = start_server(tmp_path / "srv", tmp_path / "srv.log")
    sid, skey = create_key(tmp_path / "srv")
    c = make_client(addr, str(tmp_path / "srv" / "tls" / "cert.pem"), sid, skey)
    call(c, "DescribeRegions")
    proc.p.terminate()
    try:
        rc = proc.p.wait(10)
    except subprocess.TimeoutExpired:
        proc.stop()
        raise AssertionError("server did not stop within 10s of SIGTERM")
    proc.stop()
    assert rc == 0, proc.tail()


def test_data_survives_restart(tmp_path):
    from tat import b64, uniq
    d = tmp_path / "srv"
    proc, addr = start_server(d, tmp_path / "a.log")
    sid, skey = create_key(d)
    c = make_client(addr, str(d / "tls" / "cert.pem"), sid, skey)
    name = uniq("persist")
    cid = call(c, "CreateCommand", CommandName=name, Content=b64("true")).CommandId
    assert proc.stop() == 0
    (d / "server.addr").unlink(missing_ok=True)
    proc, addr = start_server(d, tmp_path / "b.log")
    try:
        c = make_client(addr, str(d / "tls" / "cert.pem"), sid, skey)
        got = call(c, "DescribeCommands", CommandIds=[cid])
        assert got.TotalCount == 1 and got.CommandSet[0].CommandName == name
    finally:
        proc.stop()
