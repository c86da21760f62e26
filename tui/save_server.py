"""The save server: holds the store open and saves what `incidex --save` clients hand it.

`incidex serve` runs one in the foreground (for systemd); `incidex --save` in auto mode starts
a detached one (`python -m tui.save_server --idle SECONDS`) after a save in process. The client
side, the socket's place and the settings fingerprint are in tui/save_client.py.

Invariants:
- One server per fingerprint: it holds an exclusive lock (flock) on its lock file for its whole
  life; a second one exits at once, before loading the store.
- A client is served only if its uid (SO_PEERCRED) and user name are this process's and its
  fingerprint is this server's; the actor is resolved again for each client (a role changed
  since start counts), and every batch goes through Store.save_batch, as in process.
- A record is acknowledged only after the batch holding it is committed.
- Batches of concurrent clients are saved one at a time; between clients, the database
  connections are closed (no file handle, no snapshot held while nobody is saving).
- When the database file or the keys (SECRETS_DIR) change under it (a restore, a rotation),
  the server refuses new clients and exits: the next save starts a fresh one.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from tui.save_client import (
    PROTOCOL,
    NotEligible,
    Place,
    locate,
    os_user,
    peer_uid,
    private_directory,
    usable_socket_path,
)

if TYPE_CHECKING:
    from store import SaveEvent, Settings, Store

MAX_CLIENTS = 16
HANDSHAKE_TIMEOUT_SECONDS = 5.0
_ACCEPT_POLL_SECONDS = 0.5
_READ_CHUNK = 1 << 16


class AlreadyServing(Exception):
    """Another save server holds the lock for these settings."""


def acquire_lock(place: Place) -> int:
    """The lock file's descriptor, locked for this process's life; AlreadyServing if taken."""
    import fcntl

    descriptor = os.open(place.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip()
        os.close(descriptor)
        raise AlreadyServing(f"a save server (pid {holder or '?'}) already serves these "
                             "settings") from None
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
    return descriptor


class _SocketInput:
    """The client's input, read from the socket as it comes (a regular file's: in line)."""

    def __init__(self, connection: socket.socket) -> None:
        self._connection = connection

    def read(self, size: int = -1) -> bytes:
        return self._connection.recv(_READ_CHUNK if size < 0 else size)


class _PipedInput(_SocketInput):
    """A piped input's: its fileno() tells the save stream that it may pause."""

    def fileno(self) -> int:
        return self._connection.fileno()


class _OneBatchAtATime:
    """The store, with the batches of concurrent clients saved one after the other."""

    def __init__(self, store: Store, lock: threading.Lock) -> None:
        self._store = store
        self._lock = lock

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def save_batch(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return self._store.save_batch(*args, **kwargs)


class Refused(Exception):
    """This client will not be served; the message says why."""


class SaveServer:
    """Accepts clients on the place's socket until stopped or idle."""

    def __init__(self, place: Place, store: Store, idle_seconds: float | None,
                 log: Any = None) -> None:
        self.place = place
        self.store = store
        self.idle_seconds = idle_seconds
        self.log = log or sys.stderr
        self.stopping = threading.Event()
        self._batch_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._clients: dict[int, threading.Event] = {}
        self._threads: list[threading.Thread] = []
        self._last_activity = time.monotonic()
        self._state = self._current_state()
        self._listener: socket.socket | None = None
        self._socket_inode: int | None = None
        # Fault injection for the tests: "kill-after-commit" dies after a batch is committed,
        # before it is acknowledged.
        self.fault = os.environ.get("INCIDEX_SAVE_SERVER_FAULT", "")

    # Life --------------------------------------------------------------------------------

    def serve_forever(self) -> None:
        """Listen, serve, and return when stopped or idle (the socket removed)."""
        self._listen()
        self.note(f"serving {self.place.socket_path} (pid {os.getpid()}, idle exit "
                  f"{self.idle_seconds or 'never'})")
        try:
            while not self.stopping.is_set():
                try:
                    connection, _address = cast(socket.socket, self._listener).accept()
                except TimeoutError:
                    if self._idle_for_too_long():
                        self.note("idle: exiting")
                        break
                    continue
                self._start_client(connection)
        finally:
            self._close_listener()
            self.stop()
            for thread in self._threads:
                thread.join(timeout=60)

    def stop(self) -> None:
        """Stop accepting; clients being served save what they read and are told to finish
        in process."""
        self.stopping.set()
        with self._count_lock:
            for stop in self._clients.values():
                stop.set()

    def note(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} incidex save server: {text}",
                  file=self.log, flush=True)

    def _listen(self) -> None:
        path = os.fspath(self.place.socket_path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a dead server's (the lock is ours: no live one uses it)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        previous = os.umask(0o177)
        try:
            listener.bind(path)
        finally:
            os.umask(previous)
        os.chmod(path, 0o600)
        listener.listen(64)
        listener.settimeout(_ACCEPT_POLL_SECONDS)
        self._listener = listener
        self._socket_inode = os.stat(path).st_ino

    def _close_listener(self) -> None:
        path = os.fspath(self.place.socket_path)
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == self._socket_inode:
                os.unlink(path)
        if self._listener is not None:
            self._listener.close()

    def _idle_for_too_long(self) -> bool:
        if self.idle_seconds is None:
            return False
        with self._count_lock:
            return not self._clients and (
                time.monotonic() - self._last_activity > self.idle_seconds)

    def _start_client(self, connection: socket.socket) -> None:
        with self._count_lock:
            busy = len(self._clients) >= MAX_CLIENTS
        if busy:
            _refuse(connection, "busy")
            return
        self._threads = [thread for thread in self._threads if thread.is_alive()]
        thread = threading.Thread(target=self._serve_client, args=(connection,), daemon=True,
                                  name="incidex-save-client")
        self._threads.append(thread)
        thread.start()

    # One client --------------------------------------------------------------------------

    def _serve_client(self, connection: socket.socket) -> None:
        stop = threading.Event()
        with self._count_lock:
            self._clients[id(stop)] = stop
            self._last_activity = time.monotonic()
        try:
            with connection:
                try:
                    hello = self._admit(connection)
                except Refused as refused:
                    self.note(f"refused a client: {refused}")
                    _refuse(connection, str(refused))
                    return
                self._save(connection, hello, stop)
        except OSError as error:
            self.note(f"a client went away: {error}")
        finally:
            with self._count_lock:
                del self._clients[id(stop)]
                self._last_activity = time.monotonic()
                last = not self._clients
            if last:
                with self._batch_lock:
                    self.store.engine.dispose()

    def _admit(self, connection: socket.socket) -> dict[str, Any]:
        """The client's hello, if it is to be served; Refused otherwise."""
        connection.settimeout(HANDSHAKE_TIMEOUT_SECONDS)
        if peer_uid(connection) != os.geteuid():
            raise Refused("the client runs as another user")
        try:
            hello = json.loads(_read_line(connection))
        except ValueError:
            raise Refused("not a save client") from None
        if not isinstance(hello, dict) or hello.get("protocol") != PROTOCOL:
            raise Refused("another protocol version")
        if hello.get("fingerprint") != self.place.fingerprint:
            raise Refused("the client's settings differ from this server's")
        if hello.get("uid") != os.geteuid() or hello.get("user") != os_user():
            raise Refused("the client is another user")
        if self.stopping.is_set():
            raise Refused("the server is stopping")
        if self._changed():
            self.note("the database file or the keys changed: exiting")
            self.stopping.set()
            raise Refused("the store or its keys changed since the server started")
        with self._batch_lock:
            actor = self.store.refresh_actor()
        connection.settimeout(None)
        _send(connection, {"ok": True, "actor": actor.describe()})
        return hello

    def _save(self, connection: socket.socket, hello: dict[str, Any],
              stop: threading.Event) -> None:
        from store import iter_save_batches

        source = _PipedInput(connection) if hello.get("pausable") else _SocketInput(connection)
        store = cast("Store", _OneBatchAtATime(self.store, self._batch_lock))
        settings: Settings = self.store.settings
        try:
            for batch in iter_save_batches(store, cast(Any, source),
                                           batch_size=settings.save_batch_size, stop=stop):
                if self.fault == "kill-after-commit":
                    os.kill(os.getpid(), signal.SIGKILL)
                connection.sendall(b"".join(_event_message(event) for event in batch))
        except OSError:
            raise
        except Exception as error:  # noqa: BLE001 - told to the client as the CLI would say it
            line, code = _failure_line(error)
            _send(connection, {"fatal": line, "code": code})
            return
        if stop.is_set():
            _send(connection, {"end": False, "reason": "the save server was stopped"})
        else:
            _send(connection, {"end": True})

    def _changed(self) -> bool:
        """Whether the database file or a key file known so far changed (a restore, a
        rotation); key files new since (the first save creates the keyring) join the known."""
        current = self._current_state()
        with self._count_lock:
            known = self._state
            if current[0] != known[0] or any(current[1].get(path, "gone") != value
                                              for path, value in known[1].items()):
                return True
            self._state = (known[0], {**current[1], **known[1]})
        return False

    def _current_state(self) -> tuple[Any, dict[str, tuple[int, int]]]:
        """What must not change under a running server: the database file, the keys."""
        from store import secrets_directory

        database = _sqlite_path(self.place)
        try:
            where = os.stat(database) if database is not None else None
            file_id = (where.st_dev, where.st_ino) if where is not None else None
        except OSError:
            file_id = None
        keys: dict[str, tuple[int, int]] = {}
        folder = secrets_directory(self.store.settings)
        # The keys (rotation, a new PII key), and which data-key database is in place (a
        # restore); not what changes with every save (audit anchors, new data keys).
        watched = [*folder.glob("*.key"), *folder.glob("keyring/*")]
        for path in watched:
            with contextlib.suppress(OSError):
                info = path.stat()
                keys[str(path)] = (info.st_mtime_ns, info.st_size)
        for path in folder.glob("datakeys-*.db"):
            with contextlib.suppress(OSError):
                info = path.stat()
                keys[str(path)] = (info.st_dev, info.st_ino)
        return file_id, keys


def _sqlite_path(place: Place) -> Path | None:
    url = place.database_url
    if url is None:
        return place.data_dir / "incident_analysis.db"
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///").split("?")[0])
    return None


def _read_line(connection: socket.socket, limit: int = 65536) -> bytes:
    line = bytearray()
    while not line.endswith(b"\n") and len(line) < limit:
        byte = connection.recv(1)
        if not byte:
            break
        line += byte
    return bytes(line)


def _send(connection: socket.socket, message: dict[str, Any]) -> None:
    connection.sendall(json.dumps(message).encode() + b"\n")


def _refuse(connection: socket.socket, reason: str) -> None:
    with contextlib.suppress(OSError):
        _send(connection, {"ok": False, "reason": reason})
    connection.close()


def _event_message(event: SaveEvent) -> bytes:
    """One record's acknowledgement: the very lines the in-process save prints for it."""
    from tui.output import write_json_line, write_line

    out = io.StringIO()
    write_json_line(out, event.as_json())
    err: str | None = None
    if not event.ok:
        lines = io.StringIO()
        write_line(lines, f"incidex: {event.result.error}")
        err = lines.getvalue().removesuffix("\n")
    message = {"out": out.getvalue().removesuffix("\n"), "err": err, "ok": event.ok}
    return json.dumps(message).encode() + b"\n"


def _failure_line(error: Exception) -> tuple[str, int]:
    """What the command line says and exits with for an error that ends a whole save."""
    from store import StoreError
    from tui.exit_codes import ExitCode, store_error_code
    from widgets.format import printable

    if not isinstance(error, StoreError):
        return (printable(f"incidex: internal error: {type(error).__name__}: {error} "
                          "(set INCIDEX_DEBUG=1 for a traceback)"), ExitCode.INTERNAL_ERROR)
    return printable(f"incidex: {error}"), store_error_code(error)


def warm_up(store: Store) -> None:
    """Load what the first save would (price table, record models, PII patterns, embedder);
    a failure here only means the first client pays for it."""
    from store import warm_up_save

    try:
        warm_up_save(store)
    except Exception as error:  # noqa: BLE001 - a save would meet it again, and say so
        print(f"incidex save server: warm-up failed: {type(error).__name__}: {error}",
              file=sys.stderr, flush=True)


def run(place: Place, settings: Settings, idle_seconds: float | None, *,
        lock: int | None = None, log: Any = None) -> int:
    """Serve until stopped (SIGTERM, SIGINT) or idle; AlreadyServing if another one runs.
    `lock` is the lock file's descriptor when the caller took it already."""
    from store import Store

    if not usable_socket_path(place):
        raise click.ClickException(f"the socket path {place.socket_path} is too long")
    if not private_directory(place.run_dir, create=True):
        raise click.ClickException(f"{place.run_dir} is not a private (0700) directory of "
                                   "this user")
    if lock is None:
        lock = acquire_lock(place)
    try:
        with Store.open(settings) as store:
            warm_up(store)
            server = SaveServer(place, store, idle_seconds, log)
            previous = {number: signal.signal(number, lambda *_: server.stop())
                        for number in (signal.SIGTERM, signal.SIGINT)}
            try:
                server.serve_forever()
            finally:
                for number, handler in previous.items():
                    signal.signal(number, handler)
    finally:
        os.close(lock)
    return 0


@click.command()
@click.option("--idle", "idle", type=click.FloatRange(min=0), default=0, show_default=True,
              metavar="SECONDS", help="Exit after this long without a client (0: never).")
@click.pass_context
def serve(ctx: click.Context, idle: float) -> None:
    """Hold the store open and save what `incidex --save` hands over a private socket.

    \b
    Runs in the foreground until SIGTERM (for systemd); `incidex --save` uses it when its
    settings match this process's (environment, config file, data directory, working
    directory, version). See INCIDEX_SAVE_SERVER in the README.
    """
    from tui.output import say

    root = ctx.find_root().params
    config = root.get("config_file")
    try:
        place = locate(str(root["data_dir"]) if root.get("data_dir") else None,
                       root.get("database_url"), str(config) if config else None)
    except NotEligible as problem:
        raise click.ClickException(str(problem)) from None
    place.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        run(place, ctx.obj, idle or None)
    except AlreadyServing as running:
        say(f"incidex: {running}", err=True)
        sys.exit(1)


def _detached(arguments: list[str]) -> int:
    """`python -m tui.save_server --idle SECONDS`: the server --save starts (settings from the
    environment it was given); exits at once, before loading the store, if another runs."""
    idle = float(arguments[arguments.index("--idle") + 1]) if "--idle" in arguments else None
    try:
        place = locate()
        if not usable_socket_path(place) or not private_directory(place.run_dir, create=True):
            return 1
        lock = acquire_lock(place)
    except (NotEligible, AlreadyServing, OSError):
        return 0
    from store import load_settings

    return run(place, load_settings(), idle, lock=lock)


if __name__ == "__main__":
    sys.exit(_detached(sys.argv[1:]))
