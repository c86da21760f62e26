"""Cache keys: canonical, stable across processes, and refused for values with no stable form."""

from __future__ import annotations

import datetime as dt
import enum
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel

from store.cache import Cache, cached, canonical_json, make_key
from store.cache.backends import MemoryBackend


class Severity(enum.Enum):
    """An enum argument."""

    HIGH = "high"
    LOW = "low"


@dataclass(frozen=True)
class Window:
    """A dataclass argument."""

    start: dt.datetime
    hours: int


class Query(BaseModel):
    """A pydantic argument."""

    text: str
    tags: list[str]


def rich_arguments() -> dict[str, Any]:
    """Arguments of every supported kind, with dict keys deliberately out of order."""
    start = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    return {
        "payload": {"zeta": [1, 2.5, None, True], "alpha": ("a", "b"), "mid": {"y": 1, "x": 2}},
        "when": start,
        "price": Decimal("0.000150"),
        "blob": b"\x00\x01binary",
        "severity": Severity.HIGH,
        "window": Window(start, 6),
        "query": Query(text="failed logins", tags=["auth", "vpn"]),
        "vector": np.arange(6, dtype=np.float32).reshape(2, 3),
        "labels": {"b", "a", "c"},
        "request_id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "day": dt.date(2024, 5, 1),
    }


def key_in_subprocess(hash_seed: str) -> str:
    """The key of rich_arguments() computed by a fresh interpreter importing this module."""
    root = Path(__file__).resolve().parents[len(__name__.split(".")) - 1]
    script = (
        "import importlib, sys\n"
        f"sys.path.insert(0, {str(root)!r})\n"
        f"module = importlib.import_module({__name__!r})\n"
        "from store.cache import make_key\n"
        "print(make_key('similar', '3', 'hashed-ngram-v1', module.rich_arguments()))\n"
    )
    environment = {**os.environ, "PYTHONHASHSEED": hash_seed}
    completed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=environment,
        cwd=root,
        timeout=60,
        check=True,
    )
    return completed.stdout.strip()


def test_key_is_the_same_in_other_processes() -> None:
    here = make_key("similar", "3", "hashed-ngram-v1", rich_arguments())
    assert len(here) == 64 and int(here, 16) >= 0
    assert key_in_subprocess("1") == here
    assert key_in_subprocess("4242") == here


def test_key_ignores_dict_and_set_order() -> None:
    first = make_key("n", "1", "m", {"a": {"x": 1, "y": 2}, "s": {3, 1, 2}})
    second = make_key("n", "1", "m", {"s": {2, 3, 1}, "a": {"y": 2, "x": 1}})
    assert first == second


@pytest.mark.parametrize(
    ("namespace", "version", "model", "arguments"),
    [
        ("other", "1", "m", {"text": "x"}),
        ("n", "2", "m", {"text": "x"}),
        ("n", "1", "other-model", {"text": "x"}),
        ("n", "1", "m", {"text": "y"}),
        ("n", "1", "m", {"text": b"x"}),
        ("n", "1", "m", {"other": "x"}),
    ],
)
def test_key_changes_with_each_part(
    namespace: str, version: str, model: str, arguments: dict[str, Any]
) -> None:
    assert make_key(namespace, version, model, arguments) != make_key("n", "1", "m", {"text": "x"})


def test_types_that_look_alike_get_different_keys() -> None:
    pairs = [(1, True), (1, "1"), (1, 1.5), ("6162", b"ab"), ({1: "a"}, {"1": "a"})]
    for left, right in pairs:
        assert make_key("n", "1", "m", {"v": left}) != make_key("n", "1", "m", {"v": right})
    vector = np.ones(4, dtype=np.float32)
    assert make_key("n", "1", "m", {"v": vector}) == make_key("n", "1", "m", {"v": vector.copy()})
    for other in (vector.astype(np.float64), vector.reshape(2, 2), vector * 2):
        assert make_key("n", "1", "m", {"v": vector}) != make_key("n", "1", "m", {"v": other})


def test_canonical_json_of_supported_types() -> None:
    text = canonical_json(rich_arguments())
    form = json.loads(text)
    assert list(form) == sorted(form)
    assert form["when"] == {"__datetime__": "2024-05-01T10:30:00+00:00"}
    assert form["price"] == {"__decimal__": "0.000150"}
    assert form["query"]["data"] == {"text": "failed logins", "tags": ["auth", "vpn"]}
    assert form["vector"]["shape"] == [2, 3]
    assert form["severity"]["value"] == "high"


def test_unkeyable_arguments_raise_type_error_naming_them(tmp_path: Path) -> None:
    with open(tmp_path / "notes.txt", "w") as handle:
        cases: list[tuple[Any, str]] = [
            (object(), "builtins.object"),
            (lambda: 1, "builtins.function"),
            (handle, "TextIOWrapper"),
        ]
        for value, type_name in cases:
            with pytest.raises(TypeError, match=type_name) as raised:
                make_key("n", "1", "m", {"source": value})
            assert "argument 'source'" in str(raised.value)
    with pytest.raises(TypeError, match=r"argument 'payload'\['a'\]\[1\]"):
        make_key("n", "1", "m", {"payload": {"a": [1, object()]}})
    with pytest.raises(TypeError, match="naive datetime"):
        make_key("n", "1", "m", {"when": dt.datetime(2024, 1, 1)})


def test_decorated_function_refuses_unkeyable_argument_before_calling() -> None:
    calls: list[Any] = []
    cache = Cache([MemoryBackend()])

    @cached(cache, namespace="n", version="1", model="m")
    def summarise(source: Any) -> str:
        calls.append(source)
        return "summary"

    with pytest.raises(TypeError, match="argument 'source'"):
        summarise(object())
    assert calls == []


def test_equivalent_calls_share_a_key() -> None:
    cache = Cache([MemoryBackend()])

    @cached(cache, namespace="n", version="1", model="m", ignore=("trace_id",))
    def embed(text: str, normalise: bool = True, trace_id: str = "") -> list[float]:
        return [1.0]

    key = embed.cache_key("a")  # type: ignore[attr-defined]
    assert embed.cache_key(text="a") == key  # type: ignore[attr-defined]
    assert embed.cache_key("a", True, trace_id="t-1") == key  # type: ignore[attr-defined]
    assert embed.cache_key("a", False) != key  # type: ignore[attr-defined]
