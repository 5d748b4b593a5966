"""``QStateStorage``: aiogram's storage contract on memory, file and Redis.

``TestStorages`` is the equivalent of aiogram 3.31's own
``tests/test_fsm/storage/test_storages.py`` (every case of it), and
``test_isolation_lock`` of its ``test_isolation.py``. Data conversion is checked
against aiogram's real ``RedisStorage`` on the same private Redis: what it
returns, this storage returns.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypedDict

import pytest
from aiogram.exceptions import DataNotDictLikeError
from aiogram.fsm.state import State as FSMState
from aiogram.fsm.state import StatesGroup
from aiogram.fsm.storage.base import DefaultKeyBuilder, StorageKey
from aiogram.fsm.storage.redis import RedisStorage
from hypothesis import given, settings
from hypothesis import strategies as st

from qstate import MAX_INTEGER, AsyncStateRegistry
from qstate.integrations.aiogram import QStateEventIsolation, QStateStorage

CHAT_ID = -42
USER_ID = 42
BOT_ID = 42  # aiogram's MockedBot, token "42:TEST"

Body = Callable[[QStateStorage], Awaitable[None]]


@pytest.fixture
def storage_key() -> StorageKey:
    return StorageKey(chat_id=CHAT_ID, user_id=USER_ID, bot_id=BOT_ID)


@pytest.fixture(params=["memory", "file", pytest.param("redis", marks=pytest.mark.redis)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "file":
        return f"file:{tmp_path}/bot.db"
    redis_url: str = request.getfixturevalue("redis_url")
    return redis_url


@pytest.fixture
def with_storage(url: str) -> Callable[..., None]:
    """``with_storage(body, **options)`` runs ``body(storage)`` on a fresh loop."""

    def run(body: Body, **options: Any) -> None:
        async def main() -> None:
            storage = QStateStorage(url, **options)
            try:
                await body(storage)
            finally:
                await storage.close()

        asyncio.run(main())

    return run


class TestStorages:
    """aiogram's ``TestStorages``, case for case."""

    def test_set_state(self, with_storage: Any, storage_key: StorageKey) -> None:
        async def body(storage: QStateStorage) -> None:
            assert await storage.get_state(key=storage_key) is None

            await storage.set_state(key=storage_key, state="state")
            assert await storage.get_state(key=storage_key) == "state"
            await storage.set_state(key=storage_key, state=None)
            assert await storage.get_state(key=storage_key) is None

        with_storage(body)

    def test_set_data(self, with_storage: Any, storage_key: StorageKey) -> None:
        async def body(storage: QStateStorage) -> None:
            assert await storage.get_data(key=storage_key) == {}
            assert await storage.get_value(storage_key=storage_key, dict_key="foo") is None
            assert (
                await storage.get_value(storage_key=storage_key, dict_key="foo", default="baz")
                == "baz"
            )

            await storage.set_data(key=storage_key, data={"foo": "bar"})
            assert await storage.get_data(key=storage_key) == {"foo": "bar"}
            assert await storage.get_value(storage_key=storage_key, dict_key="foo") == "bar"
            assert (
                await storage.get_value(storage_key=storage_key, dict_key="foo", default="baz")
                == "bar"
            )

            await storage.set_data(key=storage_key, data={})
            assert await storage.get_data(key=storage_key) == {}
            assert await storage.get_value(storage_key=storage_key, dict_key="foo") is None
            assert (
                await storage.get_value(storage_key=storage_key, dict_key="foo", default="baz")
                == "baz"
            )

            class CustomTypedDict(TypedDict, total=False):
                foo: str
                bar: str

            await storage.set_data(key=storage_key, data=CustomTypedDict(foo="bar", bar="baz"))
            assert await storage.get_data(key=storage_key) == {"foo": "bar", "bar": "baz"}
            assert await storage.get_value(storage_key=storage_key, dict_key="foo") == "bar"
            assert (
                await storage.get_value(storage_key=storage_key, dict_key="foo", default="baz")
                == "bar"
            )

            with pytest.raises(DataNotDictLikeError):
                await storage.set_data(key=storage_key, data=())  # type: ignore[arg-type]

        with_storage(body)

    def test_update_data(self, with_storage: Any, storage_key: StorageKey) -> None:
        async def body(storage: QStateStorage) -> None:
            assert await storage.get_data(key=storage_key) == {}
            assert await storage.update_data(key=storage_key, data={"foo": "bar"}) == {
                "foo": "bar"
            }
            assert await storage.update_data(key=storage_key, data={}) == {"foo": "bar"}
            assert await storage.get_data(key=storage_key) == {"foo": "bar"}
            assert await storage.update_data(key=storage_key, data={"baz": "spam"}) == {
                "foo": "bar",
                "baz": "spam",
            }
            assert await storage.get_data(key=storage_key) == {
                "foo": "bar",
                "baz": "spam",
            }
            assert await storage.update_data(key=storage_key, data={"baz": "test"}) == {
                "foo": "bar",
                "baz": "test",
            }
            assert await storage.get_data(key=storage_key) == {
                "foo": "bar",
                "baz": "test",
            }

        with_storage(body)


def test_isolation_lock(url: str, storage_key: StorageKey) -> None:
    """aiogram's ``TestIsolations.test_lock``, then what the lock is for."""

    async def main() -> None:
        storage = QStateStorage(url)
        isolation = storage.create_isolation()
        async with isolation.lock(key=storage_key):
            assert True, "Are you kidding me?"

        order: list[str] = []
        inside = asyncio.Event()

        async def first() -> None:
            async with isolation.lock(key=storage_key):
                inside.set()
                order.append("first in")
                await asyncio.sleep(0.2)
                order.append("first out")

        async def second() -> None:
            await inside.wait()
            async with isolation.lock(key=storage_key):
                order.append("second in")

        other_key = StorageKey(chat_id=1, user_id=1, bot_id=BOT_ID)
        async with isolation.lock(key=other_key):  # another chat is not blocked
            await asyncio.gather(first(), second())
        assert order == ["first in", "first out", "second in"]
        assert await storage.registry.list_states("aiogram.lock") == [], "locks are released"
        await isolation.close()
        await storage.close()

    asyncio.run(main())


def test_a_lock_whose_holder_vanished_lapses_after_its_lease(
    url: str, storage_key: StorageKey
) -> None:
    async def main() -> None:
        registry = AsyncStateRegistry(url)
        isolation = QStateEventIsolation(registry, lease=0.5)
        held = isolation.lock(storage_key)
        await held.__aenter__()  # and never leaves: its process "died"
        await asyncio.wait_for(_enter_and_leave(isolation, storage_key), timeout=60)
        await isolation.close()
        await registry.aclose()

    asyncio.run(main())


async def _enter_and_leave(isolation: QStateEventIsolation, key: StorageKey) -> None:
    async with isolation.lock(key):
        pass


class Form(StatesGroup):
    name = FSMState()


def test_states_of_a_states_group_and_inspection(url: str, storage_key: StorageKey) -> None:
    async def main() -> None:
        registry = AsyncStateRegistry(url)
        storage = QStateStorage(registry)
        await storage.set_state(storage_key, Form.name)
        assert await storage.get_state(storage_key) == "Form:name"
        await storage.set_data(storage_key, {"step": 1})
        listed = await registry.list_states("aiogram.")
        assert [(s.name, s.scope, s.keys) for s in listed] == [
            ("aiogram.data", "42:-42:42:default", 1),
            ("aiogram.state", "42:-42:42:default", 1),
        ]
        assert await storage.state_of(storage_key).get_all() == {"state": "Form:name"}
        await storage.close()
        assert await registry.list_states() != [], "a registry passed in is left open"
        await registry.aclose()

    asyncio.run(main())


def test_state_and_data_expire_separately(with_storage: Any, storage_key: StorageKey) -> None:
    async def body(storage: QStateStorage) -> None:
        await storage.set_state(storage_key, "s")
        await storage.update_data(storage_key, {"a": 1})
        ttls = {s.name: s.ttl for s in await storage.registry.list_states("aiogram.")}
        assert ttls["aiogram.state"] is not None
        assert 500 < ttls["aiogram.state"] <= 600
        assert ttls["aiogram.data"] is not None
        assert 3000 < ttls["aiogram.data"] <= 3600
        await storage.set_data(storage_key, {"b": 2})
        ttls = {s.name: s.ttl for s in await storage.registry.list_states("aiogram.data")}
        assert ttls["aiogram.data"] is not None
        assert 3000 < ttls["aiogram.data"] <= 3600

    with_storage(body, state_ttl=600, data_ttl=timedelta(hours=1))


def test_no_ttl_by_default(with_storage: Any, storage_key: StorageKey) -> None:
    async def body(storage: QStateStorage) -> None:
        await storage.set_state(storage_key, "s")
        await storage.set_data(storage_key, {"a": 1})
        assert all(s.ttl is None for s in await storage.registry.list_states())

    with_storage(body)


@pytest.mark.parametrize(
    "key",
    [
        StorageKey(bot_id=1, chat_id=2, user_id=3, business_connection_id="b" * 500),
        StorageKey(bot_id=1, chat_id=2, user_id=3, destiny="{braces}\n"),
        StorageKey(bot_id=1, chat_id=2, user_id=3, destiny="é" * 300),
        StorageKey(bot_id=2**62, chat_id=-(2**62), user_id=2**62, thread_id=2**62),
    ],
)
def test_any_storage_key_maps_to_a_readable_state(with_storage: Any, key: StorageKey) -> None:
    async def body(storage: QStateStorage) -> None:
        await storage.set_state(key, "s")
        await storage.set_data(key, {"a": 1})
        assert await storage.get_state(key) == "s"
        assert await storage.get_data(key) == {"a": 1}
        [info, _] = await storage.registry.list_states("aiogram.")
        assert info.scope.startswith(f"{key.bot_id}:"), "bot, chat, user stay readable"
        assert f":{key.chat_id}:" in info.scope
        assert f":{key.user_id}:" in info.scope
        # a key differing only in its last characters is another state
        almost = StorageKey(
            bot_id=key.bot_id,
            chat_id=key.chat_id,
            user_id=key.user_id,
            thread_id=key.thread_id,
            business_connection_id=key.business_connection_id,
            destiny=key.destiny[:-1] + "x",
        )
        assert await storage.get_state(almost) is None
        assert await storage.get_data(almost) == {}

    with_storage(body)


AMBIGUOUS_KEYS = [
    StorageKey(bot_id=42, chat_id=1, user_id=3),
    StorageKey(bot_id=42, chat_id=1, user_id=3, thread_id=0),
    StorageKey(bot_id=42, chat_id=1, user_id=3, business_connection_id=""),
    StorageKey(bot_id=42, business_connection_id="1", chat_id=2, user_id=3),
    StorageKey(bot_id=42, chat_id=1, thread_id=2, user_id=3),
    StorageKey(bot_id=42, chat_id=1, user_id=2, destiny="3:default"),
    StorageKey(bot_id=42, chat_id=1, user_id=2, destiny="3"),
    StorageKey(bot_id=42, business_connection_id="a:b", chat_id=1, user_id=3),
    StorageKey(bot_id=42, business_connection_id="a", chat_id=1, user_id=3, destiny="b:default"),
    StorageKey(bot_id=42, chat_id=1, user_id=3, destiny="#" + "0" * 32),
]


def test_keys_that_aiogram_would_join_alike_get_states_of_their_own(with_storage: Any) -> None:
    """DefaultKeyBuilder's plain join gives some of these the same text (a
    business connection "1" reads as a chat); the default scopes tell them apart."""

    async def body(storage: QStateStorage) -> None:
        scopes = [storage.state_of(key).scope for key in AMBIGUOUS_KEYS]
        assert len(set(scopes)) == len(AMBIGUOUS_KEYS), scopes
        assert scopes[0] == "42:1:3:default", "an ordinary key keeps its readable scope"
        for i, key in enumerate(AMBIGUOUS_KEYS):
            await storage.set_data(key, {"i": i})
        for i, key in enumerate(AMBIGUOUS_KEYS):
            assert await storage.get_data(key) == {"i": i}
            parts = storage.state_of(key).scope.split(":")
            assert parts[0] == "42", "bot, chat and user stay readable"
            assert {str(key.chat_id), str(key.user_id)} <= set(parts)

    with_storage(body)


# Small alphabets, so that keys whose parts could run together are common.
storage_keys = st.builds(
    StorageKey,
    bot_id=st.integers(0, 1),
    chat_id=st.integers(-1, 2),
    user_id=st.integers(0, 2),
    thread_id=st.none() | st.integers(0, 2),
    business_connection_id=st.none() | st.text(alphabet="12:#a", max_size=3),
    destiny=st.text(alphabet="12:#d", max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(storage_keys, min_size=2, max_size=40, unique=True))
def test_no_two_storage_keys_share_a_scope(keys: list[StorageKey]) -> None:
    storage = QStateStorage("memory://")
    scopes = {storage.state_of(key).scope for key in keys}
    assert len(scopes) == len(keys)


def test_custom_key_builder_as_redis_storage(with_storage: Any) -> None:
    async def body(storage: QStateStorage) -> None:
        key = StorageKey(bot_id=1, chat_id=2, user_id=3)
        await storage.set_state(key, "s")
        [info] = await storage.registry.list_states()
        assert info.scope == "fsm:2:3"
        with pytest.raises(ValueError, match="destiny"):
            await storage.set_state(StorageKey(bot_id=1, chat_id=2, user_id=3, destiny="x"), "s")

    with_storage(body, key_builder=DefaultKeyBuilder())


# What aiogram users store, converted as RedisStorage's default JSON converts it.
AWKWARD: list[Any] = [
    {"tuple": (1, 2, (3,)), "nested": {"t": (4,)}},
    {7: "int key", 2.5: "float key", False: "bool key", None: "None key"},
    {"": "empty key", "k" * 5000: "long key", "~": "tilde key", "~x": 1},
    {"big": 2**64, "nested": [2**70, -(2**80)], "edge": MAX_INTEGER},
    {"deep": json.loads("[" * 150 + "]" * 150)},
    {"wrapped-looking": {"~": "not an escape"}, "ok": {"a": {"~": 1}}},
    {"unicode": "Введите телефон", "emoji key 🙂": "✓"},
    {"lone": "\ud800", "\udc80": "lone key"},
    {"nan": math.inf, "list": [-math.inf]},
]


@pytest.mark.redis
@pytest.mark.parametrize("data", AWKWARD, ids=range(len(AWKWARD)))
def test_data_converts_as_redis_storage_does(
    redis_url: str, storage_key: StorageKey, url: str, data: Any
) -> None:
    async def main() -> None:
        theirs = RedisStorage.from_url(redis_url)
        ours = QStateStorage(url)
        try:
            await theirs.set_data(storage_key, data)
            expected = await theirs.get_data(storage_key)
            await ours.set_data(storage_key, data)
            assert await ours.get_data(storage_key) == expected
            for dict_key, value in expected.items():
                assert await ours.get_value(storage_key, dict_key) == value
            await ours.set_data(storage_key, {"before": 1})
            merged = await ours.update_data(storage_key, data)
            assert merged == {"before": 1, **expected}
            assert await ours.get_data(storage_key) == merged
            assert await ours.update_data(storage_key, {"after": 2}) == {**merged, "after": 2}
            await ours.set_data(storage_key, {"plain": 1})
            assert await ours.get_data(storage_key) == {"plain": 1}, "escapes are replaced too"
        finally:
            await theirs.close()
            await ours.close()

    asyncio.run(main())


def test_ordinary_data_is_stored_as_it_is(with_storage: Any, storage_key: StorageKey) -> None:
    async def body(storage: QStateStorage) -> None:
        await storage.set_data(storage_key, {"name": "Ann", "age": 30, "tags": ["a"]})
        raw = await storage.data_of(storage_key).get_all()
        assert raw == {"name": "Ann", "age": 30, "tags": ["a"]}
        await storage.update_data(storage_key, {"": 1})
        raw = await storage.data_of(storage_key).get_all()
        assert raw["name"] == "Ann"
        assert raw["~"] == 1, "escaped data is marked"

    with_storage(body)


def test_nan_round_trips(with_storage: Any, storage_key: StorageKey) -> None:
    async def body(storage: QStateStorage) -> None:
        await storage.set_data(storage_key, {"nan": math.nan})
        assert math.isnan((await storage.get_data(storage_key))["nan"])

    with_storage(body)


def test_json_hooks_for_app_types(with_storage: Any, storage_key: StorageKey) -> None:
    def dumps(value: Any) -> str:
        return json.dumps(
            value, default=lambda v: {"$dt": v.isoformat()} if isinstance(v, datetime) else v
        )

    def loads(text: str) -> Any:
        return json.loads(
            text,
            object_hook=lambda d: datetime.fromisoformat(d["$dt"]) if set(d) == {"$dt"} else d,
        )

    when = datetime(2024, 5, 1, 12, 30)

    async def body(storage: QStateStorage) -> None:
        await storage.set_data(storage_key, {"when": when, "n": (1, 2)})
        assert await storage.get_data(storage_key) == {"when": when, "n": [1, 2]}
        assert await storage.update_data(storage_key, {"later": [when]}) == {
            "when": when,
            "n": [1, 2],
            "later": [when],
        }
        assert await storage.get_value(storage_key, "when") == when
        raw = await storage.data_of(storage_key).get("when")
        assert raw == {"$dt": "2024-05-01T12:30:00"}, "stored as plain, inspectable JSON"

    with_storage(body, json_dumps=dumps, json_loads=loads)


def test_unserializable_data_is_refused_as_redis_storage_refuses_it(
    with_storage: Any, storage_key: StorageKey
) -> None:
    async def body(storage: QStateStorage) -> None:
        await storage.set_data(storage_key, {"keep": 1})
        with pytest.raises(TypeError):
            await storage.set_data(storage_key, {"when": datetime(2024, 1, 1)})
        with pytest.raises(TypeError):
            await storage.update_data(storage_key, {"s": {1, 2}})
        assert await storage.get_data(storage_key) == {"keep": 1}

    with_storage(body)


def test_bad_ttl_is_refused() -> None:
    with pytest.raises(ValueError, match="state_ttl"):
        QStateStorage("memory://", state_ttl=-1)


def test_states_are_built_once_per_recent_key(with_storage: Any) -> None:
    """Every event brings a new, equal StorageKey: its states come from the cache,
    which stays bounded however many users write."""
    from qstate.integrations.aiogram import STATES_CACHED

    async def body(storage: QStateStorage) -> None:
        first = StorageKey(bot_id=1, chat_id=2, user_id=3)
        again = StorageKey(bot_id=1, chat_id=2, user_id=3)
        other = StorageKey(bot_id=1, chat_id=2, user_id=3, thread_id=4)
        assert storage.data_of(again) is storage.data_of(first)
        assert storage.state_of(again) is storage.state_of(first)
        assert storage.data_of(other).scope != storage.data_of(first).scope
        await storage.set_state(first, "s")
        assert await storage.get_state(again) == "s"
        assert await storage.get_state(other) is None
        for user in range(STATES_CACHED + 10):
            storage.data_of(StorageKey(bot_id=1, chat_id=2, user_id=user))
        assert storage._states.cache_info().currsize == STATES_CACHED
        assert await storage.get_state(first) == "s", "a key that left the cache is built anew"
        with pytest.raises(AttributeError):  # the cached states were built with it
            storage.key_builder = DefaultKeyBuilder()  # type: ignore[misc]

    with_storage(body)
