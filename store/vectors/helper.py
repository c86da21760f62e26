"""A helper process that scrubs and embeds part of each large batch while this process does the
rest: a bulk `--save` uses a second core for its heaviest step.

Invariants: only the offline default embedder is helped (pure computation, each text's vector
independent of the others in its batch), so a vector is the same bytes whichever process made
it; the helper is a fresh interpreter (`python -I`) that this process starts and talks to over
its stdin and stdout only, so it inherits no database connection, lock or journal descriptor,
and it gets the scrubber's key through that pipe, never a file, an argument or the environment;
texts are handed out a slice at a time and this process takes slices from the other end, so a
slow or still-starting helper never holds a batch up; a helper that fails costs only the help
(its slice is done here, and no helper is asked again).
"""

from __future__ import annotations

import logging
import os
import pickle
import struct
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from store.privacy.scrubber import PiiScrubber
    from store.vectors.offline import HashedConceptEmbedder

log = logging.getLogger("incidex.vectors")
# Below this many texts a batch is done here alone: a one-record --save never starts a helper.
MIN_HELPED_TEXTS = 100
SLICE_TEXTS = 25
_LENGTH = struct.Struct("!I")
# The package root of this `store` (its name is generic: the helper must import this one).
_ROOT = Path(__file__).resolve().parents[2]


def usable_cores() -> int:
    """How many cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def clean_and_embed(scrubber: PiiScrubber, embedder: HashedConceptEmbedder,
                    texts: list[str]) -> np.ndarray:
    """The vectors of texts, each scrubbed of PII first."""
    return embedder.embed([scrubber.scrub(text) for text in texts]).vectors


def _send(stream: IO[bytes], value: Any) -> None:
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(payload)) + payload)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    """The next message, or EOFError when the other side closed the pipe. Messages come only
    from the process at the other end of our own pipe."""
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        raise EOFError("pipe closed")
    (size,) = _LENGTH.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        raise EOFError("pipe closed mid-message")
    return pickle.loads(payload)  # noqa: S301 - our own child's (or parent's) pipe


def serve() -> None:
    """The helper's loop: a scrubber first, then lists of texts, each answered with vectors."""
    from store.vectors.offline import HashedConceptEmbedder

    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write into the reply pipe
    scrubber = _receive(requests)
    embedder = HashedConceptEmbedder()
    while True:
        try:
            texts = _receive(requests)
        except EOFError:
            return
        _send(replies, clean_and_embed(scrubber, embedder, texts))


class EmbedHelper:
    """One helper process, started by the first large batch, stopped by close()."""

    def __init__(self, scrubber: PiiScrubber, embedder: HashedConceptEmbedder, *,
                 min_texts: int = MIN_HELPED_TEXTS, min_cores: int = 2) -> None:
        self._scrubber = scrubber
        self._embedder = embedder
        self._min_texts = min_texts
        self._min_cores = min_cores
        self._process: subprocess.Popen[bytes] | None = None
        # One request and its reply at a time on the pipe (two batches may run in two threads).
        self._pipe_lock = threading.Lock()
        self._failed = False
        self.helped_slices = 0  # how many slices the helper made (for tests and benches)

    def clean_and_embed(self, texts: list[str]) -> np.ndarray:
        """The vectors of texts (scrubbed first), made here and, for a large batch, in the
        helper too: the same rows, in the same order, as clean_and_embed() here alone."""
        return self.start(texts).finish()

    def start(self, texts: list[str]) -> HelpedBatch:
        """Hand the helper slices of texts from now on (while this process does other work);
        finish() makes the rest here and returns every row."""
        return HelpedBatch(self, texts, self._helper_for(len(texts)))

    def _feed(self, process: subprocess.Popen[bytes], batch: HelpedBatch) -> None:
        """Hand the helper slices from the front until none are left or it fails."""
        assert process.stdin is not None and process.stdout is not None
        while (item := batch.take(from_front=True)) is not None:
            position, part = item
            try:
                with self._pipe_lock:
                    _send(process.stdin, part)
                    vectors = _receive(process.stdout)
            except (OSError, EOFError, pickle.UnpicklingError) as error:
                self._give_up(error)
                return
            if not isinstance(vectors, np.ndarray) or vectors.shape != (len(part),
                                                                         self._embedder.dimension):
                self._give_up(ValueError("the helper's vectors have the wrong shape"))
                return
            batch.blocks[position] = vectors
            self.helped_slices += 1

    def _give_up(self, error: BaseException) -> None:
        if not self._failed:
            log.warning("embedding helper process failed (%s): embedding here alone", error)
        self._failed = True

    def _helper_for(self, count: int) -> subprocess.Popen[bytes] | None:
        if count < self._min_texts or self._failed or usable_cores() < self._min_cores:
            return None
        if self._process is None:
            code = (f"import sys; sys.path.insert(0, {str(_ROOT)!r}); "
                    "from store.vectors.helper import serve; serve()")
            try:
                self._process = subprocess.Popen(
                    [sys.executable, "-I", "-c", code], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, close_fds=True)
                assert self._process.stdin is not None
                _send(self._process.stdin, self._scrubber)
            except OSError as error:
                self._give_up(error)
                return None
        return self._process

    def serves(self, scrubber: PiiScrubber, embedder: Any) -> bool:
        """Whether this helper makes vectors with this scrubber (its key) and embedder."""
        return scrubber is self._scrubber and embedder is self._embedder

    @property
    def process_id(self) -> int | None:
        """The helper's process id while one runs."""
        return self._process.pid if self._process is not None else None

    def close(self) -> None:
        """Stop the helper process, if one was started."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.stdin is not None:
                process.stdin.close()
            process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()
        finally:
            if process.stdout is not None:
                process.stdout.close()


class HelpedBatch:
    """The texts of one batch being made into vectors, here and by the helper."""

    def __init__(self, helper: EmbedHelper, texts: list[str],
                 process: subprocess.Popen[bytes] | None) -> None:
        self.texts = texts
        self.blocks: dict[int, np.ndarray] = {}
        self.helper = helper
        self._slices = deque(enumerate(texts[start : start + SLICE_TEXTS]
                                       for start in range(0, len(texts), SLICE_TEXTS)))
        self._lock = threading.Lock()
        self._feeder: threading.Thread | None = None
        if process is not None:
            self._feeder = threading.Thread(target=helper._feed, args=(process, self),
                                            name="incidex-embed-helper", daemon=True)
            self._feeder.start()

    def take(self, *, from_front: bool) -> tuple[int, list[str]] | None:
        """The next slice not yet handed out (the helper takes from the front, this process
        from the back), or None."""
        with self._lock:
            if not self._slices:
                return None
            return self._slices.popleft() if from_front else self._slices.pop()

    def cancel(self) -> None:
        """Hand out nothing more and wait for the helper's slice in hand."""
        with self._lock:
            self._slices.clear()
        if self._feeder is not None:
            self._feeder.join()

    def finish(self) -> np.ndarray:
        """Every text's vector, in order: the slices left are made here."""
        helper = self.helper
        while (item := self.take(from_front=False)) is not None:
            self.blocks[item[0]] = clean_and_embed(helper._scrubber, helper._embedder, item[1])
        if self._feeder is not None:
            self._feeder.join()
        count = (len(self.texts) + SLICE_TEXTS - 1) // SLICE_TEXTS
        for position in range(count):  # a slice the helper failed on is made here
            if position not in self.blocks:
                start = position * SLICE_TEXTS
                self.blocks[position] = clean_and_embed(helper._scrubber, helper._embedder,
                                                        self.texts[start : start + SLICE_TEXTS])
        if not count:
            return clean_and_embed(helper._scrubber, helper._embedder, [])
        return np.vstack([self.blocks[position] for position in range(count)])
