"""A private redis-server on a free loopback port that a test can stop, pause and start again."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

REDIS_SERVER = "/usr/bin/redis-server"
SHARED_REDIS_URL = "redis://127.0.0.1:6379/0"
READY_LINE = "Ready to accept connections"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def redis_answers(host: str = "127.0.0.1", port: int = 6379, timeout: float = 0.5) -> bool:
    """True when a Redis server at host:port answers PING."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def require_shared_redis() -> str:
    """The shared Redis URL; skips the test when it does not answer, fails it when CI=true."""
    import pytest

    if redis_answers():
        return SHARED_REDIS_URL
    message = "Redis at 127.0.0.1:6379 does not answer"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: the Redis tests must run)")
    pytest.skip(message)


class RedisServer:
    """redis-server with no persistence in its own directory; start() reuses the same port."""

    def __init__(self, directory: Path | None = None, port: int | None = None) -> None:
        if not Path(REDIS_SERVER).exists() and shutil.which("redis-server") is None:
            raise FileNotFoundError("redis-server is not installed")
        self.executable = REDIS_SERVER if Path(REDIS_SERVER).exists() else "redis-server"
        self._own_directory = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="incidex-redis-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    @property
    def url(self) -> str:
        """The redis:// URL of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it logs that it accepts connections."""
        if self.process is not None:
            raise RuntimeError("redis-server is already running")
        command = [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            "--daemonize", "no",
            "--logfile", "",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        ready = threading.Event()
        threading.Thread(target=self._read_output, args=(self.process, ready), daemon=True).start()
        if not ready.wait(timeout) or self.process.poll() is not None:
            log = "".join(self.output[-20:])
            self.stop()
            raise RuntimeError(f"redis-server on port {self.port} did not start:\n{log}")

    def _read_output(self, process: subprocess.Popen[str], ready: threading.Event) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.output.append(line)
            if READY_LINE in line:
                ready.set()
        ready.set()  # the server exited: let start() see it at once

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): it accepts connections but never answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Unfreeze a paused server."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and wait for it to exit (a paused one is resumed first)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGCONT)
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def close(self) -> None:
        """Stop the server and remove its directory if this object made it."""
        self.stop()
        if self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def running_redis_server(directory: Path | None = None) -> Iterator[RedisServer]:
    """A generator for a pytest fixture: a started private server, stopped afterwards."""
    with RedisServer(directory) as server:
        yield server
