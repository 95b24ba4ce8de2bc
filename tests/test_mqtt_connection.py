"""The broker connection: URL and secrets from config, TLS, login refusal, reconnection."""

from __future__ import annotations

import asyncio
import logging
import random
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest
from mqtt_broker import Broker, running_broker

from linectl.cli import main
from linectl.config import ConfigError, MqttConfig
from linectl.upstream.connection import (
    Backoff,
    Link,
    connect_params,
    parse_broker_url,
    read_password,
)
from linectl.upstream.publisher import until_disconnected

SECRET = "pa55-w0rd-secret"
FAST = dict(initial_s=0.02, cap_s=0.1)


# --- config to client parameters ---------------------------------------------------


def test_url_schemes_ports_and_user() -> None:
    a = parse_broker_url("mqtt://broker.local")
    assert (a.host, a.port, a.tls, a.username) == ("broker.local", 1883, False, None)
    a = parse_broker_url("mqtts://site7@10.0.0.5")
    assert (a.host, a.port, a.tls, a.username) == ("10.0.0.5", 8883, True, "site7")
    assert parse_broker_url("mqtt://h:1999").port == 1999
    with pytest.raises(ConfigError, match=r"mqtt\.url: scheme"):
        parse_broker_url("http://h")
    with pytest.raises(ConfigError, match="port"):
        parse_broker_url("mqtt://h:99999")


def test_password_in_url_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as e:
        parse_broker_url(f"mqtt://u:{SECRET}@h")
    assert "password_env" in str(e.value)
    assert SECRET not in str(e.value)


def test_password_from_env_or_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MQ_PW", SECRET)
    assert read_password(MqttConfig(password_env="MQ_PW")) == (
        SECRET,
        "environment variable MQ_PW",
    )
    f = tmp_path / "pw"
    f.write_text(SECRET + "\n", encoding="utf-8")
    assert read_password(MqttConfig(password_file=str(f)))[0] == SECRET
    assert read_password(MqttConfig()) == (None, None)

    monkeypatch.delenv("MQ_PW")
    with pytest.raises(ConfigError, match="environment variable MQ_PW is not set"):
        read_password(MqttConfig(password_env="MQ_PW"))
    with pytest.raises(ConfigError, match=r"mqtt\.password_file: cannot read"):
        read_password(MqttConfig(password_file=str(tmp_path / "nope")))
    with pytest.raises(ConfigError, match="not both"):
        read_password(MqttConfig(password_env="X", password_file=str(f)))


def test_params_never_show_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MQ_PW", SECRET)
    p = connect_params(MqttConfig(url="mqtt://h:1", username="u", password_env="MQ_PW"), "cid")
    assert p.password == SECRET
    assert SECRET not in repr(p)
    assert SECRET not in p.where()
    assert p.where() == "mqtt://u@h:1"
    assert p.client_id == "cid"
    with pytest.raises(ConfigError, match=r"mqtt\.username"):
        connect_params(MqttConfig(url="mqtt://h", password_env="MQ_PW"), "cid")


def test_tls_files_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"mqtt\.ca_file: no such file"):
        connect_params(MqttConfig(url="mqtts://h", ca_file=str(tmp_path / "ca.pem")), "c")
    ca = tmp_path / "ca.pem"
    ca.write_text("x", encoding="utf-8")
    p = connect_params(MqttConfig(url="mqtts://h", ca_file=str(ca)), "c")
    assert p.tls is not None and p.tls.ca_certs == str(ca)
    assert connect_params(MqttConfig(url="mqtt://h"), "c").tls is None


def test_backoff_grows_with_jitter_and_caps() -> None:
    b = Backoff(initial_s=1.0, cap_s=8.0, rng=random.Random(7))
    delays = [b.next() for _ in range(7)]
    tops = [1, 2, 4, 8, 8, 8, 8]
    for d, top in zip(delays, tops, strict=True):
        assert top / 2 <= d <= top
    assert len({round(d, 6) for d in delays[3:]}) == 4  # jittered, not in step
    b.reset()
    assert 0.5 <= b.next() <= 1.0


# --- against a real broker -----------------------------------------------------------


@pytest.fixture
def auth_broker(tmp_path: Path) -> Iterator[Broker]:
    with running_broker(tmp_path / "broker", users={"site": SECRET}) as b:
        yield b


async def _idle(client: aiomqtt.Client) -> None:
    await until_disconnected(client)


async def test_wrong_password_refused_and_reported_clearly(
    auth_broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pw = tmp_path / "mqtt-password"
    pw.write_text("not-the-password\n", encoding="utf-8")
    cfg = MqttConfig(url=auth_broker.url, username="site", password_file=str(pw))
    link = Link("mqtt", lambda: connect_params(cfg, "t-auth"), _idle, backoff=Backoff(**FAST))
    refusals: list[str] = []
    refused = asyncio.Event()

    def failed(message: str, login_refused: bool) -> None:
        if login_refused:
            refusals.append(message)
            if len(refusals) == 3:
                refused.set()

    link.on_failure = failed
    task = asyncio.create_task(link.run())
    try:
        await asyncio.wait_for(refused.wait(), 5)
        assert link.login_refused and not link.connected.is_set()
        msg = link.last_error or ""
        assert "refused the login of user 'site'" in msg
        assert f"password from file {pw}" in msg
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1, "reported once, not at every retry"
        assert "refused the login" in errors[0].getMessage()

        # The secret is read at each attempt: fixing the file is enough.
        pw.write_text(SECRET + "\n", encoding="utf-8")
        await asyncio.wait_for(link.connected.wait(), 5)
        assert link.last_error is None and not link.login_refused
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert all("not-the-password" not in r.getMessage() for r in caplog.records)
    assert all(SECRET not in r.getMessage() for r in caplog.records)


def test_registry_sim_reports_a_refused_login(
    auth_broker: Broker, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REG_PW", "wrong")
    argv = ["registry-sim", "--mqtt", auth_broker.url, "--site", "s1", "--vehicles", "1"]
    rc = main([*argv, "--username", "site", "--password-env", "REG_PW", "--timeout", "10"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "refused the login of user 'site'" in err
    assert "environment variable REG_PW" in err


async def test_link_reconnects_after_broker_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="linectl.upstream.connection")
    broker = Broker(tmp_path / "broker")
    broker.start()
    cfg = MqttConfig(url=broker.url)
    link = Link("mqtt", lambda: connect_params(cfg, "t-re"), _idle, backoff=Backoff(**FAST))
    down = asyncio.Event()
    link.on_failure = lambda m, r: down.set()
    task = asyncio.create_task(link.run())
    try:
        await asyncio.wait_for(link.connected.wait(), 5)
        broker.stop()
        await asyncio.wait_for(down.wait(), 5)
        assert not link.connected.is_set()
        broker.start()
        await asyncio.wait_for(link.connected.wait(), 5)
        assert link.connections == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        broker.stop()
    lines = [r.getMessage() for r in caplog.records]
    assert sum("lost the connection" in m for m in lines) == 1
    assert sum("connected again" in m for m in lines) == 1
    assert sum(r.levelno >= logging.WARNING for r in caplog.records) == 1


# --- TLS with a CA and a client certificate ---------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _make_pki(d: Path) -> None:
    d.mkdir()
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=linectl test CA", cwd=d)  # fmt: skip
    for name, cn in (("server", "127.0.0.1"), ("client", "site-zc01")):
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={cn}", cwd=d)  # fmt: skip
        ext = d / f"{name}.ext"
        ext.write_text("subjectAltName=IP:127.0.0.1\n" if name == "server" else "", "utf-8")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", "2",
                 "-extfile", str(ext), cwd=d)  # fmt: skip


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
async def test_tls_with_ca_and_client_certificate(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    _make_pki(pki)
    broker = Broker(tmp_path / "broker")
    conf = broker.conf_path.read_text(encoding="utf-8")
    conf += (
        f"cafile {pki / 'ca.pem'}\ncertfile {pki / 'server.pem'}\nkeyfile {pki / 'server.key'}\n"
        "require_certificate true\n"
    )
    broker.conf_path.write_text(conf, encoding="utf-8")
    broker.start()
    try:
        url = f"mqtts://127.0.0.1:{broker.port}"
        good = MqttConfig(
            url=url,
            ca_file=str(pki / "ca.pem"),
            cert_file=str(pki / "client.pem"),
            key_file=str(pki / "client.key"),
        )
        async with connect_params(good, "t-tls").client() as client:
            await client.publish("t/tls", b"ok", qos=1)

        # Refused in the handshake; aiomqtt notices only when no CONNACK comes.
        no_client_cert = MqttConfig(url=url, ca_file=str(pki / "ca.pem"))
        with pytest.raises(aiomqtt.MqttError):
            async with connect_params(no_client_cert, "t-tls2").client(timeout=1.0) as client:
                await client.publish("t/tls", b"no", qos=1)
    finally:
        broker.stop()
