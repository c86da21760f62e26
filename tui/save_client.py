"""The thin `incidex --save` client: hand the records to a warm save server, else save in process.

`incidex --save FILE` pays about a second importing the store (SQLAlchemy, pydantic, numpy) and
opening it. A save server (tui/save_server.py, `incidex serve`, or one started automatically)
holds the store open; this module hands it the input over a private Unix-domain socket and
prints what it answers, importing nothing but the standard library on the way.

Invariants:
- This module imports only the standard library at module level; the store and click load only
  when the records are saved in this process after all.
- The server acknowledges a record only after its batch is committed (the same Store.save_batch
  as in process: journal, backup, audit), with the very lines the in-process save prints.
- A server that stops before acknowledging every record leaves the rest to this process: the
  input is read again from its start, the acknowledged records are not printed again (saving
  them again finds them duplicate), and stderr says so. Piped input larger than REPLAY_LIMIT
  cannot be read again: the records not acknowledged are then reported as not saved.
- The socket lives in DATA_DIR/.save-server (0700, owned by the user; where that path is too
  long for a socket, $XDG_RUNTIME_DIR/incidex or /tmp/incidex-UID), is 0600, and is named by
  a hash of everything that decides what a save does (see fingerprint()): a client whose
  settings differ finds no server of its own and saves in process. The server checks the
  fingerprint, the peer's uid (SO_PEERCRED) and the user name again, and refuses otherwise.

Settings (environment only): INCIDEX_SAVE_SERVER = auto (default: use a server, and after an
in-process save start one that exits after INCIDEX_SAVE_SERVER_IDLE seconds idle, default 300),
on (use one if it answers, never start one), off (always in process), or required (fail with
exit 3 when no server answers).
"""

from __future__ import annotations

import json
import os
import queue
import socket
import stat
import struct
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

try:  # the built-in SHA-256: hashlib would load OpenSSL (milliseconds this path can spare)
    from _sha256 import sha256
except ImportError:  # pragma: no cover - other builds
    from hashlib import sha256

# Not `from typing import ...`: typing (and dataclasses, which loads inspect) cost more than the
# rest of this module; the annotations are only read by the type checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

PROTOCOL = 1
MODE_VARIABLE = "INCIDEX_SAVE_SERVER"
IDLE_VARIABLE = "INCIDEX_SAVE_SERVER_IDLE"
MODES = ("auto", "on", "off", "required")
DEFAULT_IDLE_SECONDS = 300.0
RUN_DIRECTORY = ".save-server"
# Piped input is kept (in memory) up to this size so that a server that stops mid-stream
# leaves nothing unsaved; beyond it, unacknowledged records are reported as not saved.
REPLAY_LIMIT = 64 * 1024 * 1024
CONNECT_TIMEOUT_SECONDS = 2.0
_MAX_SOCKET_PATH = 104  # sun_path is 108 bytes on Linux, 104 on the BSDs
_READ_CHUNK = 1 << 16
# Settings whose effective value the fingerprint holds (an option overrides the variable).
_LOCATION_VARIABLES = ("INCIDEX_DATA_DIR", "INCIDEX_DATABASE_URL", "INCIDEX_CONFIG_FILE")
# Other environment that changes what a save does or who does it: incidex's own settings,
# libpq's (the PostgreSQL role is the actor), the embedder's and the backup mirrors'.
_ENVIRONMENT_PREFIXES = ("INCIDEX_", "PG", "OPENAI_", "AWS_", "HF_")
_ENVIRONMENT_NAMES = ("HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "TZ")
# The code that a server runs: a change to any of them (an upgrade, an edit) is a new server.
_CODE_FILES = ("tui/save_client.py", "tui/save_server.py", "tui/headless.py", "tui/output.py",
               "store/store.py", "store/settings.py", "store/ingest/stream.py",
               "store/ingest/records.py", "store/ingest/reader.py")
_ROOT = Path(__file__).resolve().parents[1]
_OPTIONS = {"--save": "save", "--data-dir": "data_dir", "--database-url": "database_url",
            "--config": "config"}


class NotEligible(Exception):
    """These arguments or settings are not a plain --save this client can hand over."""


def save_server_mode() -> str:
    """INCIDEX_SAVE_SERVER, checked (an unknown value is a usage error, as for any setting)."""
    mode = os.environ.get(MODE_VARIABLE, "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise NotEligible(f"{MODE_VARIABLE}: {mode!r} is not one of {', '.join(MODES)}")
    return mode


def idle_seconds() -> float:
    """INCIDEX_SAVE_SERVER_IDLE: how long an automatically started server waits for a client."""
    text = os.environ.get(IDLE_VARIABLE, "").strip()
    if not text:
        return DEFAULT_IDLE_SECONDS
    try:
        value = float(text)
    except ValueError:
        raise NotEligible(f"{IDLE_VARIABLE}: {text!r} is not a number of seconds") from None
    if not value > 0:
        raise NotEligible(f"{IDLE_VARIABLE}: must be more than 0 seconds")
    return value


# Where a server for these settings lives ---------------------------------------------------


class Place:
    """A store's effective location and the socket of the save server for these settings."""

    def __init__(self, data_dir: Path, database_url: str | None, config_file: Path | None,
                 fingerprint: str, run_dir: Path) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.config_file = config_file
        self.fingerprint = fingerprint
        self.run_dir = run_dir

    @property
    def name(self) -> str:
        return self.fingerprint[:16]

    @property
    def socket_path(self) -> Path:
        return self.run_dir / f"{self.name}.sock"

    @property
    def lock_path(self) -> Path:
        return self.run_dir / f"{self.name}.lock"

    @property
    def log_path(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    def server_environment(self) -> dict[str, str]:
        """The environment a server for this place is started with (its fingerprint matches)."""
        environment = dict(os.environ)
        environment["INCIDEX_DATA_DIR"] = str(self.data_dir)
        if self.database_url is not None:
            environment["INCIDEX_DATABASE_URL"] = self.database_url
        if self.config_file is not None:
            environment["INCIDEX_CONFIG_FILE"] = str(self.config_file)
        return environment


def locate(data_dir: str | None = None, database_url: str | None = None,
           config: str | None = None) -> Place:
    """The place for these options (None: from the environment and the config file)."""
    config_file = _config_file(config)
    from_file = _config_values(config_file)
    chosen_dir = (data_dir or os.environ.get("INCIDEX_DATA_DIR")
                  or from_file.get("data_dir") or "data")
    resolved_dir = Path(str(chosen_dir)).expanduser().resolve()
    url = (database_url or os.environ.get("INCIDEX_DATABASE_URL")
           or from_file.get("database_url"))
    url = str(url) if url else None
    facts: dict[str, Any] = {
        "protocol": PROTOCOL,
        "uid": os.geteuid(),
        "cwd": os.getcwd(),
        "python": [sys.executable, sys.version],
        "code": _code_stamp(),
        "data_dir": str(resolved_dir),
        "database_url": url,
        "config": [str(config_file), _file_digest(config_file)] if config_file else None,
        "environment": sorted(
            (name, value) for name, value in os.environ.items()
            if (name.startswith(_ENVIRONMENT_PREFIXES) or name in _ENVIRONMENT_NAMES)
            and name not in _LOCATION_VARIABLES and name not in (MODE_VARIABLE, IDLE_VARIABLE)),
    }
    digest = sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()
    return Place(resolved_dir, url, config_file, digest, _run_directory(resolved_dir, digest))


def _run_directory(data_dir: Path, digest: str) -> Path:
    """DATA_DIR/.save-server; where a socket path there would be too long for the OS,
    $XDG_RUNTIME_DIR/incidex, else /tmp/incidex-UID (the socket's name, a hash of the
    settings, keys it to this store either way)."""
    socket_name = len(f"/{digest[:16]}.sock")
    for folder in (data_dir / RUN_DIRECTORY,
                   Path(os.environ.get("XDG_RUNTIME_DIR") or "/nonexistent") / "incidex",
                   Path(f"/tmp/incidex-{os.geteuid()}")):
        if len(os.fsencode(folder)) + socket_name < _MAX_SOCKET_PATH and (
                folder.parent.is_dir() or folder.parent == data_dir):
            return folder
    return data_dir / RUN_DIRECTORY  # too long: usable_socket_path() says no


def _config_file(option: str | None) -> Path | None:
    """The TOML file the settings read (as store.settings.config_file_to_read decides)."""
    named = option or os.environ.get("INCIDEX_CONFIG_FILE")
    if named:
        path = Path(named).expanduser().resolve()
        if not path.is_file():
            raise NotEligible("the config file is missing")  # the in-process path says how
        return path
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    default = Path(base) / "incidex" / "config.toml"
    return default.resolve() if default.is_file() else None


def _config_values(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    import tomllib

    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise NotEligible("the config file cannot be read") from None


def _file_digest(path: Path) -> str:
    return sha256(path.read_bytes()).hexdigest()


def _code_stamp() -> list[Any]:
    stamp: list[Any] = [str(_ROOT)]
    for name in _CODE_FILES:
        try:
            info = (_ROOT / name).stat()
            stamp.append([name, info.st_mtime_ns, info.st_size])
        except OSError:
            stamp.append([name, None])
    return stamp


def private_directory(path: Path, *, create: bool) -> bool:
    """Whether path is (or, with create, now is) a directory owned by this user, mode 0700."""
    if create:
        try:
            path.mkdir(mode=0o700, exist_ok=True)
        except OSError:
            return False
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return (stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid()
            and stat.S_IMODE(info.st_mode) & 0o077 == 0)


def usable_socket_path(place: Place) -> bool:
    return len(os.fsencode(place.socket_path)) < _MAX_SOCKET_PATH


def os_user() -> str:
    """The operating-system user running this process (as store.access.directory.os_user)."""
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        import getpass

        return getpass.getuser()


def peer_uid(connection: socket.socket) -> int:
    """The uid of the process at the other end of a Unix-domain socket (SO_PEERCRED)."""
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                        struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", credentials)
    return int(uid)


# The command line --------------------------------------------------------------------------


class SaveRequest:
    """A plain `incidex --save SOURCE` with its location options."""

    def __init__(self, save: str, data_dir: str | None = None, database_url: str | None = None,
                 config: str | None = None) -> None:
        self.save = save
        self.data_dir = data_dir
        self.database_url = database_url
        self.config = config


def parse_arguments(arguments: Sequence[str]) -> SaveRequest:
    """The request, if the arguments are only --save and the location options (else the full
    command line parses them, with its help and errors)."""
    values: dict[str, str] = {}
    position = 0
    while position < len(arguments):
        argument = arguments[position]
        name, equals, value = argument.partition("=")
        if name not in _OPTIONS or name in values:
            raise NotEligible(f"not a plain --save: {argument}")
        if not equals:
            position += 1
            if position >= len(arguments):
                raise NotEligible("an option without its value")
            value = arguments[position]
        if not value or (value.startswith("-") and value != "-"):
            raise NotEligible("an option value the full parser should judge")
        values[name] = value
        position += 1
    if "--save" not in values:
        raise NotEligible("no --save")
    return SaveRequest(**{_OPTIONS[name]: value for name, value in values.items()})


# Handing the input over --------------------------------------------------------------------


class ServerRefused(Exception):
    """No server answers, or the one that answers will not serve this client."""


class Outcome:
    """What a hand-over did: lines acknowledged, counts, and how it ended."""

    def __init__(self) -> None:
        self.acknowledged = self.ok = self.failed = 0
        # The server read the whole input and acknowledged every record.
        self.finished = False
        # A whole-save failure: its line and exit code.
        self.fatal: tuple[str, int] | None = None
        # Why the server stopped early.
        self.reason = ""


class _Input:
    """The input being handed over, and what is kept of it to read it again."""

    def __init__(self, path: str, stream: Any, regular: bool, offset: int) -> None:
        self.path = path
        self.stream = stream  # a raw binary stream
        self.regular = regular
        self.offset = offset  # where a regular stdin started
        # Piped input sent so far (None: a regular file, read again from the file; or too
        # large to keep).
        self.kept: bytearray | None = None if regular else bytearray()
        self.stop = threading.Event()
        # Held while a piece of the input is kept and sent (or handed to the replay).
        self.sending = threading.Lock()
        # Once set, the reader hands what it reads to the replay in this process.
        self.handoff: queue.Queue[bytes] | None = None
        self.done = threading.Event()
        self.error: BaseException | None = None


def open_input(path: str) -> _Input:
    """The input as the in-process save reads it; NotEligible when it cannot be opened (the
    in-process path then says why, in its words)."""
    try:
        if path == "-":
            stream = os.fdopen(os.dup(sys.stdin.fileno()), "rb", buffering=0)
        else:
            if Path(path).is_dir():
                raise NotEligible("a directory")
            stream = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the caller
    except OSError:
        raise NotEligible("the input cannot be opened") from None
    regular = stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    offset = os.lseek(stream.fileno(), 0, os.SEEK_CUR) if regular else 0
    return _Input(path, stream, regular, offset)


def connect(place: Place) -> socket.socket:
    """A connection to this place's server, or ServerRefused."""
    if not usable_socket_path(place) or not private_directory(place.run_dir, create=False):
        raise ServerRefused("no save server answers (none started for these settings)")
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(CONNECT_TIMEOUT_SECONDS)
    try:
        connection.connect(os.fspath(place.socket_path))
        if peer_uid(connection) != os.geteuid():
            raise ServerRefused("the socket belongs to another user")
    except (OSError, ServerRefused) as error:
        connection.close()
        raise ServerRefused(f"no save server answers ({error})") from None
    return connection


def handshake(connection: socket.socket, place: Place, source: _Input) -> None:
    """Introduce this client; ServerRefused unless the server agrees to serve it."""
    hello = {"protocol": PROTOCOL, "fingerprint": place.fingerprint, "user": os_user(),
             "uid": os.geteuid(), "pid": os.getpid(), "pausable": not source.regular}
    try:
        connection.sendall(json.dumps(hello).encode() + b"\n")
        answer = json.loads(_read_line(connection) or b"null")
    except (OSError, ValueError) as error:
        raise ServerRefused(f"the save server did not answer ({error})") from None
    if not isinstance(answer, dict) or answer.get("ok") is not True:
        reason = answer.get("reason") if isinstance(answer, dict) else None
        raise ServerRefused(f"the save server refused: {reason or 'no reason given'}")
    connection.settimeout(None)


def _read_line(connection: socket.socket) -> bytes:
    """One line, read a byte at a time (the handshake answer is short; nothing follows it
    before the client sends its input)."""
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = connection.recv(1)
        if not byte:
            break
        line += byte
    return bytes(line)


def _send_input(connection: socket.socket, source: _Input) -> None:
    """Read the input and send it, whole lines only while more may come (so that an
    interrupted client sends only records read completely), then end it (shutdown for
    writing). This thread stays the input's only reader: when the server is gone it goes on
    reading, keeping what it reads, and once the replay takes over (source.handoff) it hands
    every chunk to it, up to the end of the input."""
    held = b""
    broken = False  # the server went away: nothing more is sent
    try:
        while True:
            chunk = source.stream.read(_READ_CHUNK)
            with source.sending:
                if source.handoff is not None:
                    source.handoff.put(chunk)
                    if not chunk:
                        break
                    continue
                if source.stop.is_set():
                    break
                if source.kept is not None and chunk:
                    if len(source.kept) + len(chunk) <= REPLAY_LIMIT:
                        source.kept += chunk
                    else:
                        source.kept = None
                data = held + chunk
                cut = len(data) if not chunk else data.rfind(b"\n") + 1
                held = data[cut:]
                if cut and not broken:
                    try:
                        connection.sendall(data[:cut])
                    except OSError as error:
                        source.error, broken = error, True
                if not chunk:
                    break
        end_input(connection, source)
    except BaseException as error:  # noqa: BLE001 - reported by the caller
        source.error = error
        if source.handoff is not None:
            source.handoff.put(b"")
    finally:
        source.done.set()


def end_input(connection: socket.socket, source: _Input, wait: float = -1) -> None:
    """End the input here, between two sends (never inside a line); with a wait, give up
    after that long (the sender then ends it after its current send)."""
    if source.sending.acquire(timeout=wait):
        try:
            connection.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            source.sending.release()


def hand_over(connection: socket.socket, source: _Input,
              write: Callable[[str, str | None], None]) -> Outcome:
    """Send the input and print each acknowledged record's lines; returns how it ended."""
    outcome = Outcome()
    sender = threading.Thread(target=_send_input, args=(connection, source), daemon=True,
                              name="incidex-save-sender")
    sender.start()
    reader = connection.makefile("rb")
    try:
        while True:
            try:
                message = json.loads(reader.readline() or b'{"gone": true}')
            except (OSError, ValueError) as error:
                outcome.reason = f"the connection broke ({error})"
                break
            if "out" in message:  # (a failure to print is this process's own: not caught)
                write(message["out"], message.get("err"))
                outcome.acknowledged += 1
                if message.get("ok"):
                    outcome.ok += 1
                else:
                    outcome.failed += 1
            elif "fatal" in message:
                outcome.fatal = (str(message["fatal"]), int(message["code"]))
                outcome.finished = True
                break
            elif "end" in message:
                outcome.finished = bool(message["end"])
                outcome.reason = str(message.get("reason") or "")
                break
            else:
                break  # the server closed the connection without a word: it stopped
    finally:
        reader.close()
    if not outcome.finished and not outcome.reason:
        outcome.reason = "the save server stopped"
    return outcome


# The whole command -------------------------------------------------------------------------


def _print_lines(out: str, err: str | None) -> None:
    sys.stdout.write(out + "\n")
    sys.stdout.flush()
    if err is not None:
        sys.stderr.write(err + "\n")
        sys.stderr.flush()


def _say_err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def try_save(arguments: Sequence[str]) -> int | None:
    """Run `incidex --save` through a save server: the exit code, or None when the full
    command line should run in process (then, in auto mode, start_server_after() starts one)."""
    global _after
    _after = None
    try:
        request = parse_arguments(arguments)
    except NotEligible:
        return None
    try:
        mode = save_server_mode()
    except NotEligible as wrong:
        _say_err(f"incidex: {wrong}")
        return 2
    if mode == "off":
        return None
    try:
        place = locate(request.data_dir, request.database_url, request.config)
        source = open_input(request.save)
    except (NotEligible, OSError, ValueError):
        return None
    try:
        try:
            connection = connect(place)
            try:
                handshake(connection, place, source)
            except ServerRefused:
                connection.close()
                raise
        except ServerRefused as refused:
            if mode == "required":
                _say_err(f"incidex: {refused} (store in {place.data_dir}; "
                         f"{MODE_VARIABLE}=required: start one with `incidex serve`)")
                return 3
            if mode == "auto":
                _after = place
            _rewind(source)
            return None
        return _run(connection, source, request, place)
    finally:
        source.stream.close()


def _rewind(source: _Input) -> None:
    """Put a regular stdin back where it started (the in-process save reads it from there)."""
    if source.path == "-" and source.regular:
        os.lseek(sys.stdin.fileno(), source.offset, os.SEEK_SET)


def _run(connection: socket.socket, source: _Input, request: SaveRequest, place: Place) -> int:
    import signal

    def on_signal(number: int, _frame: object) -> None:
        if source.stop.is_set() and number == signal.SIGINT:
            raise KeyboardInterrupt
        source.stop.set()
        # End the input now: the server saves what it read completely, then answers.
        end_input(connection, source, wait=1.0)

    previous = {number: signal.signal(number, on_signal)
                for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        outcome = hand_over(connection, source, _print_lines)
    except KeyboardInterrupt:
        _say_err("incidex: interrupted")
        return 130
    except OSError as error:  # stdout closed under us (`| head`): the records are saved
        with suppress(OSError):
            _say_err(f"incidex: cannot write the results: {error.strerror or error}")
        return 70
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        connection.close()
    if outcome.fatal is not None:
        _say_err(outcome.fatal[0])
        return outcome.fatal[1]
    if not outcome.finished:
        return _finish_in_process(source, request, outcome)
    return _summary(outcome.ok, outcome.failed, interrupted=source.stop.is_set())


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set `stop` (the save finishes what it read); a second SIGINT
    interrupts at once (the in-process save's, here and in tui/cli.py)."""
    import signal

    def on_signal(number: int, _frame: object) -> None:
        if stop.is_set() and number == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    previous = {number: signal.signal(number, on_signal)
                for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _summary(ok: int, failed: int, *, interrupted: bool) -> int:
    """The last line and exit code, as the in-process save (tui/cli.py _save) has them."""
    if interrupted:
        _say_err(f"incidex: interrupted; {ok} saved or duplicate, {failed} failed "
                 "(records read completely were saved)")
        return 130
    if failed:
        _say_err(f"incidex: {ok} saved or duplicate, {failed} failed")
    return 1 if failed else 0


class _Replay:
    """Piped input read again: what was kept, then the rest as the input's reader thread hands
    it over (so that no chunk is read by two readers). Its fileno() is the pipe's: the save
    stream may wait on it, as on stdin in process."""

    def __init__(self, kept: bytes, rest: queue.Queue[bytes] | None, fileno: int) -> None:
        self._kept = memoryview(kept)
        self._rest = rest
        self._fileno = fileno
        self._ended = rest is None

    def read(self, size: int = -1) -> bytes:
        if self._kept:
            size = len(self._kept) if size < 0 else size
            chunk, self._kept = bytes(self._kept[:size]), self._kept[size:]
            return chunk
        if self._ended or self._rest is None:
            return b""
        chunk = self._rest.get()
        self._ended = not chunk
        if 0 <= size < len(chunk):
            self._kept = memoryview(chunk)[size:]
            return chunk[:size]
        return chunk

    def fileno(self) -> int:
        return self._fileno

    def close(self) -> None:
        pass

    def __enter__(self) -> _Replay:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _finish_in_process(source: _Input, request: SaveRequest, outcome: Outcome) -> int:
    """The server stopped before acknowledging every record: save the input again in this
    process, printing only the records it did not acknowledge."""
    what = f"{outcome.reason}; {outcome.acknowledged} records were acknowledged"
    replay: Any
    if source.regular:
        source.stop.set()
        source.done.wait()  # a file never keeps a read waiting: the reader stops at once
        _say_err(f"incidex: {what}; saving the rest in this process")
        if request.save == "-":
            os.lseek(sys.stdin.fileno(), source.offset, os.SEEK_SET)
            replay = os.fdopen(os.dup(sys.stdin.fileno()), "rb", buffering=0)
        else:
            replay = open(request.save, "rb", buffering=0)  # noqa: SIM115
        return save_rest(request, replay, skip=outcome.acknowledged, ok=outcome.ok,
                         failed=outcome.failed)
    with source.sending:
        kept = None if source.kept is None else bytes(source.kept)
        interrupted = source.stop.is_set()
        rest: queue.Queue[bytes] | None = None
        if kept is not None and not interrupted:
            rest = source.handoff = queue.Queue()
            if source.done.is_set():  # the reader already read to the end
                rest.put(b"")
    if kept is None:
        _say_err(f"incidex: {what}; the input is too large to read again, so the records "
                 "after them were NOT saved: save the rest again")
        return _summary(outcome.ok, outcome.failed + 1, interrupted=False)
    _say_err(f"incidex: {what}; saving the rest in this process")
    replay = _Replay(kept, rest, source.stream.fileno())
    return save_rest(request, replay, skip=outcome.acknowledged, ok=outcome.ok,
                     failed=outcome.failed)


def save_rest(request: SaveRequest, replay: Any, *, skip: int, ok: int, failed: int) -> int:
    """Save the input in this process as `incidex --save` does, printing only the records
    after the first `skip` (the server acknowledged those); the counts include theirs."""
    from store import Store, StoreError, load_settings
    from tui.exit_codes import ExitCode, store_error_code
    from tui.headless import save_stream
    from tui.output import say

    stop = threading.Event()
    try:
        if request.config is not None:
            os.environ["INCIDEX_CONFIG_FILE"] = request.config
        settings = load_settings(
            data_dir=Path(request.data_dir) if request.data_dir else None,
            database_url=request.database_url)
        with replay, Store.open(settings) as store, stop_on_signals(stop):  # noqa: SIM117
            more_ok, more_failed = save_stream(store, replay, sys.stdout, sys.stderr,
                                               batch_size=settings.save_batch_size, stop=stop,
                                               skip=skip)
    except KeyboardInterrupt:
        say("incidex: interrupted", err=True)
        return ExitCode.INTERRUPTED
    except StoreError as error:
        say(f"incidex: {error}", err=True)
        return store_error_code(error)
    ok, failed = ok + more_ok, failed + more_failed
    return _summary(ok, failed, interrupted=stop.is_set())


# Starting a server after an in-process save ------------------------------------------------

_after: Place | None = None


def start_server_after(code: int) -> None:
    """In auto mode, after an in-process save that reached the store, start a detached save
    server for these settings (it exits when idle; a lock keeps it the only one)."""
    place, idle = _after, None
    if place is None or code not in (0, 1):
        return
    try:
        idle = idle_seconds()
    except NotEligible:
        return
    if not usable_socket_path(place) or not private_directory(place.run_dir, create=True):
        return
    spawn_server(place, idle)


def spawn_server(place: Place, idle: float) -> None:
    """Start `python -m tui.save_server` detached (double fork: no zombie, no terminal, no
    inherited stdout pipe), for this place's environment."""
    command = [sys.executable, "-m", "tui.save_server", "--idle", repr(idle)]
    environment = place.server_environment()
    path = os.pathsep.join(filter(None, [str(_ROOT), environment.get("PYTHONPATH")]))
    environment["PYTHONPATH"] = path
    try:
        log = os.open(place.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError:
        return
    try:
        child = os.fork()
        if child == 0:  # pragma: no cover - the child only calls the OS, then leaves
            try:
                os.setsid()
                if os.fork() == 0:
                    null = os.open(os.devnull, os.O_RDWR)
                    os.dup2(null, 0)
                    os.dup2(null, 1)
                    os.dup2(log, 2)
                    os.execve(sys.executable, command, environment)
            finally:
                os._exit(0)
        os.waitpid(child, 0)
    finally:
        os.close(log)


def run_full(full_command: Callable[[], Any]) -> None:
    """Run the full command line; after an in-process save, maybe start a save server."""
    try:
        full_command()
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        start_server_after(code)
        raise
