"""aiogram's FSM storage on qstate (PyPI ``aiogram``, the ``qstate[aiogram]`` extra).

    from aiogram import Dispatcher
    from qstate.integrations.aiogram import QStateStorage

    storage = QStateStorage("redis://localhost:6379/0", state_ttl=3600, data_ttl=3600)
    dp = Dispatcher(storage=storage, events_isolation=storage.create_isolation())

Why not aiogram's own ``RedisStorage``: its ``update_data`` is a GET then a SET,
so two updates of one chat at once lose one of them; here every method is one
atomic step (one round trip on Redis), and the FSM is visible from outside
with ``qstate list``, ``qstate get`` and ``qstate watch``.

Layout. Each ``StorageKey`` is two qstate states with one scope:

* ``aiogram.state`` holds ``{"state": "Form:name"}``, expiring after ``state_ttl``;
* ``aiogram.data`` holds the FSM data, one qstate key per data key, expiring
  after ``data_ttl`` (aiogram's TTLs are separate, so the documents are too).

The scope is what the key builder makes of the key (``part=None``), aiogram's
``DefaultKeyBuilder`` strategy, with a leading separator dropped. The default
builder includes the bot, the business connection, the thread and the destiny:
``42:-100123:7:default`` is bot 42, chat -100123, user 7. (``RedisStorage``'s
default leaves out the bot, so two bots on one store would share their users'
states, and the destiny, so scenes fail with it.) A scope that qstate cannot
store as it is (over 200 characters, braces or control characters from a
business connection id or destiny) keeps bot, chat and user readable and
replaces the rest by a hash: ``42:-100123:7:#<sha256 prefix>``. So does, with
the default builder, a key whose plain join could read as another key's (a
business connection id that is a number or empty, a thread 0, a ``:`` or
``#`` in the destiny or the business connection id): two keys never share
a state.

Data. What ``RedisStorage`` accepts with its default JSON is accepted and comes
back as it would from ``RedisStorage``: the data goes through
``json.loads(json_dumps(data))``, so tuples come back as lists and int, float,
bool or None dict keys as strings. Only when qstate's own rules refuse the
result is anything escaped, entry by entry, so ordinary data stays readable
in ``qstate get``:

* a data key that is not a qstate key (empty, over 1000 characters, a lone
  surrogate) or that starts with ``~`` is stored under ``~`` + the SHA-256 of
  the key, its value the JSON text of ``[key, value]``;
* a value qstate refuses (an integer beyond 64 bits, NaN or infinity, a lone
  surrogate, nesting deeper than 100) or a dict value with a ``~`` key is
  stored as ``{"~": "<its JSON text>"}``;
* a data document holding any of these has the key ``~`` (value 1), so that
  reading data without it costs nothing extra.

``json_dumps`` / ``json_loads`` are hooks for app types, as in ``RedisStorage``:
``json_dumps`` must produce JSON text (``json.dumps(..., default=...)``), which is
stored as the plain JSON it parses to; what is read is handed to ``json_loads``
as JSON text. qstate's own ``State`` API stays strict: only this adapter converts.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import os
import random
import re
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, cast

from aiogram.exceptions import DataNotDictLikeError
from aiogram.fsm.state import State as AiogramState
from aiogram.fsm.storage.base import (
    BaseEventIsolation,
    BaseStorage,
    DefaultKeyBuilder,
    KeyBuilder,
    StateType,
    StorageKey,
)

from .._async.registry import AsyncStateRegistry
from .._async.state import AsyncState
from .._codec import check_value
from .._errors import InvalidNameError, InvalidValueError
from .._keys import MAX_KEY, check_name, check_scope
from .._model import Document

__all__ = ["QStateEventIsolation", "QStateStorage", "default_key_builder"]

ESCAPE = "~"
"""Marks escaped entries: the key of the marker, of hashed keys, of wrapped values."""

STATES_CACHED = 4096
"""``StorageKey``s whose two state objects a storage keeps ready (the most recent)."""

_Ttl = int | float | timedelta | None
_JsonLoads = Callable[..., Any]
_JsonDumps = Callable[..., str]


def default_key_builder() -> DefaultKeyBuilder:
    """aiogram's builder with every part of a ``StorageKey`` that tells two apart."""
    return DefaultKeyBuilder(
        prefix="", with_bot_id=True, with_business_connection_id=True, with_destiny=True
    )


def _seconds(ttl: _Ttl, what: str) -> float | None:
    if isinstance(ttl, timedelta):
        return ttl.total_seconds()
    if ttl is None or (type(ttl) in (int, float) and ttl > 0):
        return ttl
    raise InvalidValueError(f"{what} must be seconds (> 0), a timedelta or None, not {ttl!r}")


def _registry_of(registry_or_url: AsyncStateRegistry | str | None) -> AsyncStateRegistry:
    if isinstance(registry_or_url, AsyncStateRegistry):
        return registry_or_url
    if registry_or_url is None or isinstance(registry_or_url, str):
        return AsyncStateRegistry(registry_or_url)
    raise TypeError(
        f"pass an AsyncStateRegistry or a backend URL, not {type(registry_or_url).__name__}"
    )


class _Scopes:
    """``StorageKey`` → qstate scope, the same way for the storage and its isolation."""

    def __init__(self, key_builder: KeyBuilder | None) -> None:
        self.key_builder = default_key_builder() if key_builder is None else key_builder
        builder = self.key_builder
        self._hash_ambiguous_keys = (
            type(builder) is DefaultKeyBuilder
            and builder.separator == ":"
            and builder.with_bot_id
            and builder.with_business_connection_id
            and builder.with_destiny
        )

    def __call__(self, key: StorageKey) -> str:
        if self._hash_ambiguous_keys and _ambiguous(key):
            return _hashed_scope(key, json.dumps(_every_part(key)))
        built = self.key_builder.build(key)
        if built[:1] == ":":  # what an empty prefix leaves
            built = built[1:]
        try:
            return check_scope(built)
        except InvalidNameError:
            return _hashed_scope(key, built)


_NUMBER = re.compile(r"-?[0-9]+")


def _ambiguous(key: StorageKey) -> bool:
    """Whether ``DefaultKeyBuilder``'s plain join could give this key another's text.

    It leaves out a thread 0 and an empty business connection id, and joins
    the parts with no mark of which are there: a business connection "5" reads
    as a chat, a destiny "a:b" as two parts. Such keys (none that Telegram
    sends, in practice) get the hashed scope, computed from every part.
    """
    connection = key.business_connection_id
    return (
        key.thread_id == 0
        or (
            connection is not None
            and (not connection or _NUMBER.fullmatch(connection) is not None)
        )
        or any(":" in part or "#" in part for part in (connection or "", key.destiny))
    )


def _every_part(key: StorageKey) -> list[int | str | None]:
    """The parts of a key, named one by one: its scope must not move if aiogram
    adds a field to ``StorageKey`` (it added the business connection once)."""
    return [
        key.bot_id,
        key.chat_id,
        key.user_id,
        key.thread_id,
        key.business_connection_id,
        key.destiny,
    ]


def _hashed_scope(key: StorageKey, text: str) -> str:
    """Bot, chat and user readable; the rest of ``text`` as a SHA-256 prefix."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{key.bot_id}:{key.chat_id}:{key.user_id}:#{digest}"


def _hashed_field(key: str) -> str:
    return ESCAPE + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _is_plain_key(key: str) -> bool:
    if not 0 < len(key) <= MAX_KEY or key[0] == ESCAPE:
        return False
    return key.isascii() or _is_text(key)


def _is_text(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _storable(value: Any) -> bool:
    if type(value) is dict and ESCAPE in value:
        return False  # would read back as a wrapped value
    try:
        check_value(value)
    except InvalidValueError:
        return False
    return True


def _escape(plain: dict[str, Any]) -> Document:
    """Plain JSON data (from ``json.loads``) as a document qstate accepts."""
    document: Document = {}
    escaped = False
    for key, value in plain.items():
        if not _is_plain_key(key):
            document[_hashed_field(key)] = json.dumps([key, value])
            escaped = True
        elif _storable(value):
            document[key] = value
        else:
            document[key] = {ESCAPE: json.dumps(value)}
            escaped = True
    if escaped:
        document[ESCAPE] = 1
    return document


def _unescape_value(value: Any) -> Any:
    if type(value) is dict and ESCAPE in value:
        return json.loads(value[ESCAPE])
    return value


def _unescape(document: Document) -> dict[str, Any]:
    """The data as aiogram's code gave it (after JSON), from a document with the marker."""
    data: dict[str, Any] = {}
    for field, value in document.items():
        if field == ESCAPE:
            continue
        if field[0] == ESCAPE:
            key, inner = json.loads(cast(str, value))
            data[key] = inner
        else:
            data[field] = _unescape_value(value)
    return data


def _needs_escaping(data: Mapping[str, Any]) -> bool:
    """Whether data qstate would accept as it is still needs escaping (rare)."""
    for key, value in data.items():
        if type(key) is not str or key[:1] == ESCAPE or (type(value) is dict and ESCAPE in value):
            return True
    return False


class QStateStorage(BaseStorage):
    """aiogram's ``BaseStorage`` on any qstate backend; every method one atomic step.

    ``registry_or_url``: an ``AsyncStateRegistry`` (left open by :meth:`close`)
    or a backend URL (``None``: found as the ``qstate`` command finds it). The
    other options are ``RedisStorage``'s; ``name`` prefixes the state names.
    """

    def __init__(
        self,
        registry_or_url: AsyncStateRegistry | str | None = None,
        key_builder: KeyBuilder | None = None,
        state_ttl: _Ttl = None,
        data_ttl: _Ttl = None,
        json_loads: _JsonLoads = json.loads,
        json_dumps: _JsonDumps = json.dumps,
        *,
        name: str = "aiogram",
    ) -> None:
        self._owns_registry = not isinstance(registry_or_url, AsyncStateRegistry)
        self.registry = _registry_of(registry_or_url)
        self._scope = _Scopes(key_builder)
        self.state_ttl = _seconds(state_ttl, "state_ttl")
        self.data_ttl = _seconds(data_ttl, "data_ttl")
        self.json_loads = json_loads
        self.json_dumps = json_dumps
        self._plain_json = json_loads is json.loads and json_dumps is json.dumps
        self.name = name
        # One class per document kind: building a state then checks no name
        # and no TTL, which matters on every event (see AsyncState.__init__).
        self._fsm_state = _state_class(f"{name}.state", self.state_ttl)
        self._fsm_data = _state_class(f"{name}.data", self.data_ttl)
        # Every event needs both states of its key. Built once per key seen
        # lately, they cost a lookup (0.25 µs) instead of the key builder, the
        # scope check and two state objects (1.4 µs, more in a busy process).
        # The key builder must therefore be a pure function, as aiogram's are.
        self._states = functools.lru_cache(maxsize=STATES_CACHED)(self._build_states)

    @property
    def key_builder(self) -> KeyBuilder:
        """Fixed at construction: the states already built depend on it."""
        return self._scope.key_builder

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> QStateStorage:
        """As ``RedisStorage.from_url``, for any qstate URL (``file:bot.db``...)."""
        return cls(url, **kwargs)

    def create_isolation(self, lease: float = 60.0) -> QStateEventIsolation:
        """An event isolation on the same store and keys (``RedisStorage``'s twin)."""
        return QStateEventIsolation(
            self.registry, self.key_builder, lease=lease, name=self.name, owns_registry=False
        )

    def _build_states(self, key: StorageKey) -> tuple[AsyncState, AsyncState]:
        scope = self._scope(key)
        return self._fsm_state(self.registry, scope=scope), self._fsm_data(
            self.registry, scope=scope
        )

    def state_of(self, key: StorageKey) -> AsyncState:
        """The qstate state holding the FSM state of ``key`` (to watch or inspect it)."""
        return self._states(key)[0]

    def data_of(self, key: StorageKey) -> AsyncState:
        """The qstate state holding the FSM data of ``key`` (escaped, see the module)."""
        return self._states(key)[1]

    # -- the FSM state -------------------------------------------------------

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        target = self._states(key)[0]
        value = state.state if isinstance(state, AiogramState) else state
        if value is None:
            await target.clear()
        else:
            await target.set("state", value)

    async def get_state(self, key: StorageKey) -> str | None:
        value = await self._states(key)[0].get("state")
        return cast(str | None, value)

    # -- the FSM data --------------------------------------------------------

    def _document(self, data: Mapping[str, Any]) -> Document:
        """aiogram data as a qstate document, converted as RedisStorage's JSON would."""
        plain = json.loads(self.json_dumps(data))
        if not isinstance(plain, dict):
            raise DataNotDictLikeError(f"json_dumps made {type(plain).__name__} of the data")
        return _escape(plain)

    def _data(self, document: Document) -> dict[str, Any]:
        data = _unescape(document) if ESCAPE in document else document
        if self._plain_json:
            return data
        return cast(dict[str, Any], self.json_loads(json.dumps(data)))

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        if not isinstance(data, dict):
            raise DataNotDictLikeError(
                f"Data must be a dict or dict-like object, got {type(data).__name__}"
            )
        target = self._states(key)[1]
        if self._plain_json and not _needs_escaping(data):
            try:  # the common case: qstate takes the data as it is, validated once
                await target.replace(data)
                return
            except (InvalidValueError, InvalidNameError):
                pass  # nothing was written; convert as RedisStorage would
        await target.replace(self._document(data))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        document = await self._states(key)[1].get_all()
        return self._data(document)

    async def update_data(self, key: StorageKey, data: Mapping[str, Any]) -> dict[str, Any]:
        """Merge ``data`` in one atomic step: concurrent updates never lose each other."""
        target = self._states(key)[1]
        if self._plain_json and not _needs_escaping(data):
            try:
                return self._data(await target.update(data))
            except (InvalidValueError, InvalidNameError):
                pass
        return self._data(await target.update(self._document(dict(data))))

    async def get_value(
        self, storage_key: StorageKey, dict_key: str, default: Any | None = None
    ) -> Any | None:
        if type(dict_key) is not str:  # as RedisStorage: JSON made every key a str
            return (await self.get_data(storage_key)).get(dict_key, default)
        target = self._states(storage_key)[1]
        if _is_plain_key(dict_key):
            value = await target.get(dict_key, _ABSENT)
            if value is _ABSENT:
                return default
            value = _unescape_value(value)
        else:
            stored = await target.get(_hashed_field(dict_key))
            if stored is None:
                return default
            value = json.loads(cast(str, stored))[1]
        if self._plain_json:
            return value
        return self.json_loads(json.dumps(value))

    async def close(self) -> None:
        if self._owns_registry:
            await self.registry.aclose()


_ABSENT: Any = object()


def _state_class(name: str, ttl: float | None) -> type[AsyncState]:
    return type("AiogramFSMState", (AsyncState,), {}, name=check_name(name), ttl=ttl)


class QStateEventIsolation(BaseEventIsolation):
    """One event at a time per ``StorageKey``, across processes and machines.

    The lock is a qstate state (``aiogram.lock``) taken with ``modify``, which is
    atomic on every backend, and held as a lease: it lapses ``lease`` seconds
    after it was taken (a handler that crashed, or a process that died, does not
    block the chat forever), as ``RedisEventIsolation``'s lock does after its
    60 s timeout. It is not a ``transaction()``: on the file backend that would
    hold the database's write lock, and every write of the handler, for the
    whole event. Leases compare wall clocks: keep machines' clocks in sync.
    """

    def __init__(
        self,
        registry_or_url: AsyncStateRegistry | str | None = None,
        key_builder: KeyBuilder | None = None,
        *,
        lease: float = 60.0,
        name: str = "aiogram",
        owns_registry: bool | None = None,
    ) -> None:
        if not (type(lease) in (int, float) and 0 < lease < 10**6):
            raise InvalidValueError(f"lease must be a positive number of seconds, not {lease!r}")
        self._owns_registry = (
            not isinstance(registry_or_url, AsyncStateRegistry)
            if owns_registry is None
            else owns_registry
        )
        self.registry = _registry_of(registry_or_url)
        self._scope = _Scopes(key_builder)
        self.lease = float(lease)
        # The TTL only collects locks nobody releases; the lease decides.
        self._lock = _state_class(f"{name}.lock", self.lease + 60)

    @property
    def key_builder(self) -> KeyBuilder:
        """Fixed at construction, as the storage's."""
        return self._scope.key_builder

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        state = self._lock(self.registry, scope=self._scope(key))
        token = os.urandom(16).hex()
        pause = 0.005

        def take(data: Document) -> Document:
            until = data.get("until")
            if data.get("owner") is None or not isinstance(until, float) or until < time.time():
                return {"owner": token, "until": time.time() + self.lease}
            return data

        while (await state.modify(take)).get("owner") != token:
            await asyncio.sleep(pause * (0.5 + random.random()))  # noqa: S311
            pause = min(pause * 2, 0.1)
        try:
            yield
        finally:
            await state.modify(lambda data: {} if data.get("owner") == token else data)

    async def close(self) -> None:
        if self._owns_registry:
            await self.registry.aclose()
