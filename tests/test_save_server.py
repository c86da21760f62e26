"""The save server behind `incidex --save`: real processes over a real Unix-domain socket."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import pytest

from tests.conftest import make_record
from tests.support.journal import journaled_ids
from tests.support.save_server import SERVER_LOGS, alive, lock_holder, running_server, wait_for
from tests.test_cli_save import count_rows, jsonl, lines
from tui.save_client import locate

pytestmark = pytest.mark.slow

# The console script's entry point (tui.save_client:main), as `incidex` runs it.
INCIDEX = [sys.executable, "-m", "tui"]


def save(source: str | Path, *, mode: str = "required", stdin: bytes | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*INCIDEX, "--save", str(source)], input=stdin, capture_output=True,
                          timeout=120,
                          env={**os.environ, "INCIDEX_SAVE_SERVER": mode, **(env or {})})


def locked(path: Path) -> bool:
    """Whether another process holds the lock file's lock."""
    descriptor = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False


def test_a_save_handed_to_the_server_is_committed_and_journaled(
        tmp_path: Path, isolated_directories: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(jsonl(make_record("SRV-1"), make_record("SRV-2")))
    with running_server() as (server, place):
        assert stat.S_IMODE(place.run_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE(place.socket_path.stat().st_mode) == 0o600
        first = save(source)
        assert first.returncode == 0, first.stderr
        assert first.stderr == b""
        assert [line["status"] for line in lines(first)] == ["saved", "saved"]
        assert [line["record"] for line in lines(first)] == ["line 1", "line 2"]
        again = save(source)
        assert [line["status"] for line in lines(again)] == ["duplicate", "duplicate"]
    assert server.returncode == 0
    assert not place.socket_path.exists()  # removed on SIGTERM
    assert count_rows(isolated_directories, "analyses") == 2
    assert len(journaled_ids(isolated_directories / "backups")) == 2


def test_the_output_is_the_in_process_output(tmp_path: Path, isolated_directories: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(jsonl(make_record("SAME-1")) + b'{"incident": 1}\n'
                       + jsonl(make_record("SAME-3")))
    with running_server():
        served = save(source)
    in_process = save(source, mode="off",
                      env={"INCIDEX_DATA_DIR": str(tmp_path / "other")})
    assert served.returncode == in_process.returncode == 1
    assert served.stderr == in_process.stderr
    assert served.stdout == in_process.stdout


def test_the_client_imports_only_the_standard_library(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(jsonl(make_record("LIGHT-1")))
    probe = ("import sys\n"
             "from tui.save_client import try_save\n"
             f"code = try_save(['--save', {str(source)!r}])\n"
             "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('store', 'click', "
             "'sqlalchemy', 'sqlmodel', 'pydantic', 'pydantic_settings', 'numpy', 'widgets', "
             "'typing', 'dataclasses'))\n"
             "print('CODE', code, 'HEAVY', ','.join(heavy), file=sys.stderr)\n")
    with running_server():
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=60,
                                env={**os.environ, "INCIDEX_SAVE_SERVER": "required"})
    assert result.stderr.decode().strip().splitlines()[-1] == "CODE 0 HEAVY", result.stderr
    assert lines(result)[0]["status"] == "saved"


def test_without_a_server_auto_saves_in_process_then_starts_one_that_exits_when_idle(
        tmp_path: Path, isolated_directories: Path) -> None:
    idle = {"INCIDEX_SAVE_SERVER_IDLE": "3"}
    (tmp_path / "a.json").write_text(json.dumps(make_record("AUTO-1")))
    (tmp_path / "b.json").write_text(json.dumps(make_record("AUTO-2")))
    required = save(tmp_path / "a.json", mode="required", env=idle)
    assert required.returncode == 3
    assert b"no save server answers" in required.stderr
    first = save(tmp_path / "a.json", mode="auto", env=idle)
    assert first.returncode == 0, first.stderr
    place = locate()
    wait_for(place.socket_path.exists, what="the automatic server's socket")
    pid = lock_holder(place)
    assert pid is not None and alive(pid)
    # A second start for the same settings is refused by the lock: still one server.
    duplicate = subprocess.run([sys.executable, "-m", "tui.save_server", "--idle", "3"],
                               env=place.server_environment(), timeout=60, capture_output=True)
    assert duplicate.returncode == 0
    assert lock_holder(place) == pid
    second = save(tmp_path / "b.json", mode="required", env=idle)
    assert second.returncode == 0, second.stderr
    assert count_rows(isolated_directories, "analyses") == 2
    wait_for(lambda: not alive(pid), timeout=30, what="the idle server to exit")
    assert not place.socket_path.exists()
    assert not locked(place.lock_path)
    assert save(tmp_path / "b.json", mode="required", env=idle).returncode == 3


def test_off_never_uses_or_starts_a_server(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(make_record("OFF-1")))
    assert save(tmp_path / "a.json", mode="off").returncode == 0
    time.sleep(0.5)
    assert not locate().lock_path.exists()


def test_servers_started_together_leave_one(tmp_path: Path, isolated_directories: Path) -> None:
    isolated_directories.mkdir(parents=True)
    place = locate()
    starts = [subprocess.Popen([sys.executable, "-m", "tui.save_server", "--idle", "60"],
                               env=place.server_environment(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL) for _ in range(3)]
    try:
        wait_for(place.socket_path.exists, what="a server's socket")
        wait_for(lambda: sum(start.poll() is None for start in starts) == 1, timeout=60,
                 what="the extra servers to exit")
        (survivor,) = [start for start in starts if start.poll() is None]
        assert lock_holder(place) == survivor.pid
        assert all(start.returncode == 0 for start in starts if start is not survivor)
    finally:
        for start in starts:
            if start.poll() is None:
                start.terminate()
            start.wait(timeout=60)


def test_a_client_with_other_settings_is_refused_and_saves_in_process(
        tmp_path: Path, isolated_directories: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(make_record("OTHER-1")))
    other = {"INCIDEX_MAX_TEXT_CHARS": "12345"}
    with running_server() as (server, place):
        os.environ.update(other)
        try:
            theirs = locate()
        finally:
            del os.environ["INCIDEX_MAX_TEXT_CHARS"]
        assert theirs.socket_path != place.socket_path
        # Their own socket leads to this server (as if theirs had been replaced by it).
        os.link(place.socket_path, theirs.socket_path)
        refused = save(tmp_path / "a.json", mode="required", env=other)
        assert refused.returncode == 3
        assert b"the client's settings differ" in refused.stderr
        fallback = save(tmp_path / "a.json", mode="on", env=other)
        assert fallback.returncode == 0, fallback.stderr
        assert lines(fallback)[0]["status"] == "saved"
        os.unlink(theirs.socket_path)
    assert "refused a client: the client's settings differ" in SERVER_LOGS[server.pid]


def hello_as(uid: int | None, place: Any, path: Path | None = None,
             fingerprint: str | None = None) -> dict[str, Any]:
    """The server's answer to a raw client's hello, the client running as uid."""
    probe = ("import json, socket, sys\n"
             "connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
             f"connection.connect({str(path or place.socket_path)!r})\n"
             f"hello = {{'protocol': 1, 'fingerprint': {fingerprint or place.fingerprint!r},"
             " 'uid': 0,"
             " 'user': 'root', 'pausable': False}\n"
             "try:\n    connection.sendall(json.dumps(hello).encode() + b'\\n')\n"
             "except BrokenPipeError:\n    pass  # refused before the hello was read\n"
             "print(connection.makefile('rb').readline().decode())\n")
    # Another user may not reach this venv's interpreter: the probe needs only the stdlib.
    python = OTHER_USERS_PYTHON if uid is not None else sys.executable
    result = subprocess.run([python, "-c", probe], capture_output=True, timeout=30, user=uid)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


OTHER_USERS_PYTHON = "/usr/bin/python3"


@pytest.mark.skipif(os.geteuid() != 0 or not os.access(OTHER_USERS_PYTHON, os.X_OK),
                    reason="needs root (and a system python) to run a client as another user")
def test_a_client_of_another_user_is_refused() -> None:
    with running_server() as (_server, place):
        assert hello_as(None, place)["ok"] is True
        # Let another user reach the socket at all (its 0700 folder and mode 0600 stop them):
        # a second name for it in an open folder, and the socket's mode opened for the test.
        opened = Path(tempfile.mkdtemp(prefix="incidex-peer-", dir="/tmp"))
        try:
            opened.chmod(0o755)
            os.link(place.socket_path, opened / "s.sock")
            place.socket_path.chmod(0o666)
            answer = hello_as(65534, place, opened / "s.sock")
        finally:
            place.socket_path.chmod(0o600)
            shutil.rmtree(opened)
    assert answer == {"ok": False, "reason": "the client runs as another user"}


def test_a_wrong_fingerprint_is_refused() -> None:
    with running_server() as (_server, place):
        assert hello_as(None, place, fingerprint="0" * 64) == {"ok": False,
                                         "reason": "the client's settings differ from this "
                                                   "server's"}


def test_two_clients_at_once(tmp_path: Path, isolated_directories: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / f"{name}.jsonl").write_bytes(
            jsonl(*(make_record(f"TWO-{name}-{n}") for n in range(40))))
    with running_server():
        clients = [subprocess.Popen([*INCIDEX, "--save", str(tmp_path / f"{name}.jsonl")],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env={**os.environ, "INCIDEX_SAVE_SERVER": "required"})
                   for name in ("a", "b")]
        outputs = [client.communicate(timeout=120) for client in clients]
    for client, (out, err) in zip(clients, outputs, strict=True):
        assert client.returncode == 0, err
        assert [json.loads(line)["status"] for line in out.splitlines()] == ["saved"] * 40
    assert count_rows(isolated_directories, "analyses") == 80


def piped_client() -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    """`incidex --save -` through the running server, and the pipe of its input."""
    client = subprocess.Popen([*INCIDEX, "--save", "-"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={**os.environ, "INCIDEX_SAVE_SERVER": "required"})
    assert client.stdin is not None
    return client, client.stdin


def read_ack(client: subprocess.Popen[bytes]) -> dict[str, Any]:
    return dict(json.loads(client.stdout.readline()))  # type: ignore[union-attr]


def test_a_server_killed_mid_stream_leaves_the_rest_to_the_client(
        isolated_directories: Path) -> None:
    with running_server() as (server, _place):
        client, stdin = piped_client()
        stdin.write(jsonl(make_record("KILL-1")))
        stdin.flush()
        assert read_ack(client)["status"] == "saved"  # acknowledged: committed by the server
        server.send_signal(signal.SIGKILL)
        server.wait()
        # A producer that waits for each answer before writing more still gets it.
        stdin.write(jsonl(make_record("KILL-2")))
        stdin.flush()
        rest = [read_ack(client)]
        stdin.write(jsonl(make_record("KILL-3")))
        stdin.close()
        rest += [json.loads(line) for line in client.stdout.read().splitlines()]  # type: ignore[union-attr]
        err = client.stderr.read().decode()  # type: ignore[union-attr]
        assert client.wait(timeout=120) == 0, err
    assert [(line["record"], line["status"]) for line in rest] == [
        ("line 2", "saved"), ("line 3", "saved")]
    assert "1 records were acknowledged; saving the rest in this process" in err
    assert count_rows(isolated_directories, "analyses") == 3
    assert len(journaled_ids(isolated_directories / "backups")) == 3


def test_a_server_killed_after_commit_before_acknowledging(tmp_path: Path,
                                                            isolated_directories: Path) -> None:
    """The batch is committed, the server dies before saying so: the client saves the input
    again in process, which finds the record there (duplicate), never twice."""
    fault = {"INCIDEX_SAVE_SERVER_FAULT": "kill-after-commit"}
    source = tmp_path / "in.jsonl"
    source.write_bytes(jsonl(make_record("FAULT-1"), make_record("FAULT-2")))
    with running_server(env=fault) as (server, _place):
        result = save(source, env=fault)
        server.wait(timeout=30)
    assert server.returncode == -signal.SIGKILL
    assert result.returncode == 0, result.stderr
    assert b"0 records were acknowledged; saving the rest in this process" in result.stderr
    assert [line["status"] for line in lines(result)] == ["duplicate", "duplicate"]
    assert count_rows(isolated_directories, "analyses") == 2
    assert len(journaled_ids(isolated_directories / "backups")) == 2


def test_a_server_stopped_mid_stream_says_so_and_the_client_finishes(
        isolated_directories: Path) -> None:
    with running_server() as (server, _place):
        client, stdin = piped_client()
        stdin.write(jsonl(make_record("TERM-1")))
        stdin.flush()
        assert read_ack(client)["status"] == "saved"
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
        stdin.write(jsonl(make_record("TERM-2")))
        stdin.close()
        err = client.stderr.read().decode()  # type: ignore[union-attr]
        assert client.wait(timeout=120) == 0, err
    assert "the save server was stopped; 1 records were acknowledged" in err
    assert count_rows(isolated_directories, "analyses") == 2


def test_a_changed_key_retires_the_server(tmp_path: Path, isolated_directories: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(make_record("KEY-1")))
    with running_server() as (server, place):
        assert save(tmp_path / "a.json").returncode == 0
        pii_key = tmp_path / "secrets" / "pii.key"
        os.utime(pii_key, ns=(time.time_ns(), time.time_ns()))
        refused = save(tmp_path / "a.json")
        assert refused.returncode == 3
        assert b"the store or its keys changed" in refused.stderr
        assert server.wait(timeout=60) == 0
    assert not place.socket_path.exists()


def test_an_interrupted_client_saves_what_it_read_and_exits_130(
        isolated_directories: Path) -> None:
    with running_server():
        client, stdin = piped_client()
        stdin.write(jsonl(make_record("INT-1")) + b'{"incident": {"incident_id": "INT')
        stdin.flush()
        assert read_ack(client)["status"] == "saved"
        client.send_signal(signal.SIGINT)
        # stdin stays open: the client ends on the signal alone (closing it could race the
        # signal, and the half record would then be read to its end, here as in process).
        client.wait(timeout=60)
        out = client.stdout.read()  # type: ignore[union-attr]
        err = client.stderr.read()  # type: ignore[union-attr]
        stdin.close()
    assert client.returncode == 130, err
    assert out == b""  # the half-written record is not read as one
    assert err.decode().strip() == ("incidex: interrupted; 1 saved or duplicate, 0 failed "
                                    "(records read completely were saved)")
    assert count_rows(isolated_directories, "analyses") == 1


def test_an_unknown_mode_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(make_record("MODE-1")))
    result = save(tmp_path / "a.json", mode="sometimes")
    assert result.returncode == 2
    assert result.stderr.decode().strip() == (
        "incidex: INCIDEX_SAVE_SERVER: 'sometimes' is not one of auto, on, off, required")


def test_an_idle_server_holds_no_database_file_open(tmp_path: Path,
                                                    isolated_directories: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(make_record("IDLE-1")))
    with running_server() as (server, _place):
        assert save(tmp_path / "a.json").returncode == 0
        database = isolated_directories / "incident_analysis.db"
        held = {os.path.realpath(f"/proc/{server.pid}/fd/{fd}")
                for fd in os.listdir(f"/proc/{server.pid}/fd")}
        assert not {name for name in held if name.startswith(str(database))}
        # Another writer takes the whole database at once (no busy wait, no snapshot held).
        writer = sqlite3.connect(database, timeout=0)
        try:
            writer.execute("BEGIN EXCLUSIVE")
            writer.rollback()
        finally:
            writer.close()


def test_a_role_changed_since_the_server_started_is_obeyed(tmp_path: Path) -> None:
    """The actor is resolved again for each client: demoted to viewer, the same user gets the
    same refusal (exit 4) from the server as in process."""
    from tui.save_client import os_user

    (tmp_path / "a.json").write_text(json.dumps(make_record("ROLE-1")))
    (tmp_path / "b.json").write_text(json.dumps(make_record("ROLE-2")))
    me = os_user()
    with running_server():
        assert save(tmp_path / "a.json").returncode == 0  # the store's creator: admin
        for name, role in (("someone-else", "admin"), (me, "viewer")):
            done = subprocess.run([sys.executable, "-m", "tui.cli", "users", "add", name,
                                   "--role", role], capture_output=True, timeout=120)
            assert done.returncode == 0, done.stderr
        served = save(tmp_path / "b.json")
    in_process = save(tmp_path / "b.json", mode="off")
    assert served.returncode == in_process.returncode == 4
    assert served.stderr == in_process.stderr
    assert served.stderr.decode().startswith(f"incidex: access denied: {me} (viewer) may not save")
