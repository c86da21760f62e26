"""Cache keys from a canonical form of a call, and codecs that turn results into bytes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import json
import re
import struct
import sys
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Protocol

from store.cache.stats import Savings

KEY_SCHEME = "incidex-cache-key/1"


def _qualified_name(kind: type) -> str:
    """The module-qualified name of a class, stable across processes."""
    return f"{kind.__module__}.{kind.__qualname__}"


def _numpy_form(value: Any, path: str) -> Any:
    """The canonical form of a numpy array or scalar, or a marker that value is not numpy."""
    numpy = sys.modules.get("numpy")
    if numpy is None:
        return _NOT_NUMPY
    if isinstance(value, numpy.ndarray):
        if value.dtype.hasobject:
            raise TypeError(f"cannot build a cache key from {path}: numpy array of Python objects")
        data = numpy.ascontiguousarray(value).tobytes()
        return {
            "__ndarray__": value.dtype.str,
            "shape": list(value.shape),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    if isinstance(value, numpy.generic) and not isinstance(value, numpy.object_):
        return {"__npscalar__": value.dtype.str, "hex": value.tobytes().hex()}
    return _NOT_NUMPY


_NOT_NUMPY = object()


def _mapping_form(value: Mapping[Any, Any], path: str) -> Any:
    """Dicts with text keys stay JSON objects; other keys become sorted [key, value] pairs."""
    if all(type(key) is str for key in value):
        return {key: canonical_form(item, f"{path}[{key!r}]") for key, item in value.items()}
    pairs = [
        [canonical_form(key, f"{path} key {key!r}"), canonical_form(item, f"{path}[{key!r}]")]
        for key, item in value.items()
    ]
    pairs.sort(key=lambda pair: json.dumps(pair[0], sort_keys=True))
    return {"__map__": pairs}


def _datetime_form(value: dt.datetime, path: str) -> Any:
    """Aware datetimes as ISO UTC; naive ones are refused because their instant is unknown."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise TypeError(
            f"cannot build a cache key from {path}: naive datetime {value.isoformat()} "
            "(give it a timezone, e.g. datetime.UTC)"
        )
    return {"__datetime__": value.astimezone(dt.UTC).isoformat()}


def _object_form(value: Any, path: str) -> Any:
    """Canonical form of the richer types: models, dataclasses, enums, numbers, bytes, dates."""
    if isinstance(value, enum.Enum):
        return {
            "__enum__": _qualified_name(type(value)),
            "value": canonical_form(value.value, path),
        }
    if isinstance(value, dt.datetime):
        return _datetime_form(value, path)
    if isinstance(value, dt.date):
        return {"__date__": value.isoformat()}
    if isinstance(value, Decimal):
        return {"__decimal__": str(value)}
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        return {"__bytes__": hashlib.sha256(data).hexdigest(), "len": len(data)}
    if isinstance(value, uuid.UUID):
        return {"__uuid__": str(value)}
    if isinstance(value, set | frozenset):
        items = [canonical_form(item, f"{path} item") for item in value]
        return {"__set__": sorted(items, key=lambda item: json.dumps(item, sort_keys=True))}
    model_dump = getattr(type(value), "model_dump", None)
    if model_dump is not None and hasattr(type(value), "model_fields"):
        return {"__model__": _qualified_name(type(value)), "data": value.model_dump(mode="json")}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {
            field.name: canonical_form(getattr(value, field.name), f"{path}.{field.name}")
            for field in dataclasses.fields(value)
        }
        return {"__dataclass__": _qualified_name(type(value)), "fields": fields}
    numpy_form = _numpy_form(value, path)
    if numpy_form is not _NOT_NUMPY:
        return numpy_form
    raise TypeError(
        f"cannot build a cache key from {path}: values of type {_qualified_name(type(value))} "
        "have no stable canonical form (pass plain data, or leave the argument out of the key)"
    )


def canonical_form(value: Any, path: str = "value") -> Any:
    """A JSON-ready form of value that is the same in every process, or TypeError naming path."""
    if value is None or type(value) in (bool, str, int, float):
        return value
    if isinstance(value, enum.Enum):
        return _object_form(value, path)
    if isinstance(value, str | int | float):
        # Subclasses (not enums, handled above) key like their base type.
        base = str if isinstance(value, str) else int if isinstance(value, int) else float
        return base(value)
    if isinstance(value, Mapping):
        return _mapping_form(value, path)
    if isinstance(value, list | tuple):
        return [canonical_form(item, f"{path}[{index}]") for index, item in enumerate(value)]
    return _object_form(value, path)


def canonical_json(value: Any, path: str = "value") -> str:
    """The canonical form of value as compact JSON with sorted keys."""
    form = canonical_form(value, path)
    return json.dumps(form, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def make_key(namespace: str, version: str, model: str, arguments: Mapping[str, Any]) -> str:
    """The sha256 hex key of one call: namespace, version, model identity and named arguments."""
    parts = {
        "scheme": KEY_SCHEME,
        "namespace": namespace,
        "version": version,
        "model": model,
        "arguments": {
            name: canonical_form(value, f"argument {name!r}") for name, value in arguments.items()
        },
    }
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Codec(Protocol):
    """Turns a function's result into bytes and back; nothing is ever pickled."""

    name: str

    def encode(self, value: Any) -> bytes:
        """The bytes stored for value."""
        ...

    def decode(self, data: bytes) -> Any:
        """The value stored as data."""
        ...


class JsonCodec:
    """Results that are plain JSON data (dict, list, str, numbers, bool, None)."""

    name = "json"

    def encode(self, value: Any) -> bytes:
        """Compact UTF-8 JSON."""
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def decode(self, data: bytes) -> Any:
        """Parse UTF-8 JSON."""
        return json.loads(data.decode("utf-8"))


class BytesCodec:
    """Results that already are bytes."""

    name = "bytes"

    def encode(self, value: Any) -> bytes:
        """The bytes themselves."""
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(f"BytesCodec needs bytes, got {type(value).__name__}")
        return bytes(value)

    def decode(self, data: bytes) -> Any:
        """The bytes themselves."""
        return data


class NumpyCodec:
    """Numeric numpy arrays (float32 vectors by default): dtype, shape and raw bytes."""

    name = "numpy"

    def __init__(self, dtype: str = "float32") -> None:
        self.dtype = dtype

    def encode(self, value: Any) -> bytes:
        """A short JSON header line (dtype and shape) followed by the C-ordered bytes."""
        import numpy

        array = numpy.ascontiguousarray(value, dtype=self.dtype)
        header = json.dumps({"dtype": array.dtype.str, "shape": list(array.shape)})
        return header.encode("ascii") + b"\n" + array.tobytes()

    def decode(self, data: bytes) -> Any:
        """A fresh writable array."""
        import numpy

        header, _, body = data.partition(b"\n")
        meta = json.loads(header)
        array = numpy.frombuffer(body, dtype=numpy.dtype(meta["dtype"]))
        return array.reshape(meta["shape"]).copy()


class PydanticCodec:
    """Results that are instances of one pydantic model class."""

    name = "pydantic"

    def __init__(self, model_class: Any) -> None:
        self.model_class = model_class

    def encode(self, value: Any) -> bytes:
        """The model's JSON."""
        return bytes(value.model_dump_json().encode("utf-8"))

    def decode(self, data: bytes) -> Any:
        """The model validated from its JSON."""
        return self.model_class.model_validate_json(data)


JSON_CODEC = JsonCodec()
BYTES_CODEC = BytesCodec()
VECTOR_CODEC = NumpyCodec("float32")


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_HEADER = struct.Struct("<4sQQ")
_MAGIC = b"IXC\x01"


def check_name(kind: str, name: str) -> str:
    """name when it is a valid prefix or namespace, else a ValueError saying what is allowed."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"cache {kind} {name!r} must be 1-128 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_key(key: str) -> str:
    """key when it is non-empty text of at most 1024 characters, else ValueError."""
    if not isinstance(key, str) or not 0 < len(key) <= 1024:
        raise ValueError("cache keys are non-empty text of at most 1024 characters")
    return key


def pack_entry(value: bytes, savings: Savings | None) -> bytes:
    """The stored form: a fixed header (magic, tokens, nano-dollars) then the value."""
    saved = savings or Savings()
    return _HEADER.pack(_MAGIC, max(0, saved.tokens), max(0, saved.nano_usd)) + bytes(value)


def unpack_entry(data: bytes) -> tuple[bytes, int, int] | None:
    """(value, tokens, nano-dollars) of a stored entry, or None when it is not one of ours."""
    if len(data) < _HEADER.size or not data.startswith(_MAGIC):
        return None
    _, tokens, nano_usd = _HEADER.unpack_from(data)
    return data[_HEADER.size :], tokens, nano_usd
