"""`cached`: one way to cache a sync or async function's results by a stable key of its call."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import logging
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from store.cache.keys import JSON_CODEC, Codec, make_key
from store.cache.stats import Savings

if TYPE_CHECKING:
    from store.cache.tiered import Cache

logger = logging.getLogger("incidex.cache")

F = TypeVar("F", bound=Callable[..., Any])
_BYPASS: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "incidex_cache_bypass", default=False
)


@contextlib.contextmanager
def bypass_cache() -> Iterator[None]:
    """Within this block cached functions neither read nor write the cache."""
    token = _BYPASS.set(True)
    try:
        yield
    finally:
        _BYPASS.reset(token)


@dataclass(frozen=True)
class CallOptions:
    """The cache_* keywords a caller may add to one call; they never reach the function."""

    bypass: bool = False
    refresh: bool = False
    ttl_seconds: float | None = None


def _pop_options(kwargs: dict[str, Any]) -> CallOptions:
    return CallOptions(
        bypass=bool(kwargs.pop("cache_bypass", False)) or _BYPASS.get(),
        refresh=bool(kwargs.pop("cache_refresh", False)),
        ttl_seconds=kwargs.pop("cache_ttl_seconds", None),
    )


class CachedCall:
    """What `cached` knows about one function: how to key a call and how to store its result."""

    def __init__(
        self,
        function: Callable[..., Any],
        cache: Any,
        namespace: str,
        version: str,
        model: str,
        codec: Codec,
        ttl_seconds: float | None,
        savings: Callable[[Any], Savings | None] | None,
        ignore: Collection[str],
    ) -> None:
        self.function = function
        self.signature = inspect.signature(function)
        unknown = set(ignore) - set(self.signature.parameters)
        if unknown:
            raise ValueError(f"ignore names no parameter of {function.__qualname__}: {unknown}")
        self._cache = cache
        self.namespace = namespace
        self.version = version
        self.model = model
        self.codec = codec
        self.ttl_seconds = ttl_seconds
        self.savings = savings
        self.ignore = frozenset(ignore)
        self._encode_failed = False

    def cache(self) -> Cache | None:
        """The cache to use now (a provider is asked on every call)."""
        from store.cache.tiered import Cache

        if self._cache is None or isinstance(self._cache, Cache):
            return self._cache
        provided: Cache | None = self._cache()
        return provided

    def key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """The key of one call, with defaults applied so equivalent calls share it."""
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = {
            name: value for name, value in bound.arguments.items() if name not in self.ignore
        }
        return make_key(self.namespace, self.version, self.model, arguments)

    def decode(self, cache: Cache, key: str, data: bytes | None) -> tuple[bool, Any]:
        """(True, value) for a usable hit; a value the codec cannot read is dropped."""
        if data is None:
            return False, None
        try:
            return True, self.codec.decode(data)
        except Exception as error:  # any codec failure means the entry is unusable
            logger.warning("dropping unreadable cache entry in %s: %s", self.namespace, error)
            cache.delete(self.namespace, key)
            return False, None

    def encode(self, result: Any) -> tuple[bytes, Savings | None] | None:
        """The bytes and savings to store for result, or None (logged once) if it cannot be."""
        try:
            data = self.codec.encode(result)
            saved = self.savings(result) if self.savings is not None else None
        except Exception:  # the call succeeded; a result the codec cannot write is not cached
            if not self._encode_failed:
                self._encode_failed = True
                logger.exception(
                    "%s results cannot be cached with the %s codec", self.namespace, self.codec.name
                )
            return None
        return data, saved

    def store(self, cache: Cache, key: str, result: Any, options: CallOptions) -> None:
        """Write result under key with the call's TTL (or the function's, or the cache's)."""
        encoded = self.encode(result)
        if encoded is None:
            return
        ttl = options.ttl_seconds if options.ttl_seconds is not None else self.ttl_seconds
        cache.set(self.namespace, key, encoded[0], ttl, savings=encoded[1])


def _sync_wrapper(call: CachedCall) -> Callable[..., Any]:
    @functools.wraps(call.function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        options = _pop_options(kwargs)
        cache = call.cache()
        if cache is None or options.bypass:
            return call.function(*args, **kwargs)
        key = call.key(args, kwargs)
        if not options.refresh:
            hit, value = call.decode(cache, key, cache.get(call.namespace, key))
            if hit:
                return value
        result = call.function(*args, **kwargs)
        call.store(cache, key, result, options)
        return result

    return wrapper


def _async_wrapper(call: CachedCall) -> Callable[..., Any]:
    @functools.wraps(call.function)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        options = _pop_options(kwargs)
        cache = call.cache()
        if cache is None or options.bypass:
            return await call.function(*args, **kwargs)
        key = call.key(args, kwargs)
        # Redis and disk block; keep them off the event loop.
        offload = cache.is_remote
        if not options.refresh:
            if offload:
                data = await asyncio.to_thread(cache.get, call.namespace, key)
            else:
                data = cache.get(call.namespace, key)
            hit, value = call.decode(cache, key, data)
            if hit:
                return value
        result = await call.function(*args, **kwargs)
        if offload:
            await asyncio.to_thread(call.store, cache, key, result, options)
        else:
            call.store(cache, key, result, options)
        return result

    return wrapper


def cached(
    cache: Any,
    *,
    namespace: str,
    version: str,
    model: str,
    codec: Codec = JSON_CODEC,
    ttl_seconds: float | None = None,
    savings: Callable[[Any], Savings | None] | None = None,
    ignore: Collection[str] = (),
) -> Callable[[F], F]:
    """Cache a function's results; a sync function stays sync and an async one stays async.

    cache is a Cache, a zero-argument callable returning one (or None), or None (no caching).
    The key is sha256 over namespace, version, model (the model, embedder or prompt/schema
    identity the result depends on) and the call's arguments, except those named in ignore.
    savings(result) tells what the call cost, credited to the stats on every hit. A call may
    pass cache_bypass=True, cache_refresh=True (skip the read, store the result) or
    cache_ttl_seconds=...; these keywords never reach the function.
    """
    from store.cache.keys import check_name

    check_name("namespace", namespace)

    def decorate(function: F) -> F:
        call = CachedCall(
            function, cache, namespace, version, model, codec, ttl_seconds, savings, ignore
        )
        is_async = inspect.iscoroutinefunction(function)
        wrapper = _async_wrapper(call) if is_async else _sync_wrapper(call)
        wrapper.cache_key = lambda *args, **kwargs: call.key(args, kwargs)  # type: ignore[attr-defined]
        wrapper.invalidate = functools.partial(_invalidate, call)  # type: ignore[attr-defined]
        wrapper.clear = functools.partial(_clear, call)  # type: ignore[attr-defined]
        wrapper.cached_call = call  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def _invalidate(call: CachedCall, *args: Any, **kwargs: Any) -> bool:
    """Remove the cached result of one call; True when some tier had it."""
    cache = call.cache()
    return False if cache is None else cache.delete(call.namespace, call.key(args, kwargs))


def _clear(call: CachedCall) -> int:
    """Remove every cached result of this function's namespace."""
    cache = call.cache()
    return 0 if cache is None else cache.clear(call.namespace)


def invalidate_namespace(cache: Cache, namespace: str) -> int:
    """Remove every entry of one namespace from every tier."""
    return cache.clear(namespace)
