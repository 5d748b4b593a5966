"""A real aiogram ``Dispatcher`` on ``QStateStorage``, seen from outside with ``qstate get``.

No network: the bot's session records each request and answers it as Telegram
would, so handlers run exactly as in production. Then the ``qstate`` executable,
in its own process, reads the dialog's FSM state and data. Also: processes
updating one chat at once lose nothing (aiogram's RedisStorage loses most; see
``bench/aiogram_lost_updates.py``).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import subprocess
import sys
from collections.abc import AsyncGenerator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.base import BaseSession
from aiogram.filters import CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import StorageKey
from aiogram.methods import SendMessage, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import Chat, Message, Update, User

from qstate.integrations.aiogram import QStateStorage

QSTATE = str(Path(sys.executable).parent / "qstate")
BOT_ID, CHAT_ID, USER_ID = 42, -100123, 7
SCOPE = f"{BOT_ID}:{CHAT_ID}:{USER_ID}:default"


class RecordingSession(BaseSession):
    """Records what the bot sends and answers as the Bot API would; no network."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[TelegramMethod[Any]] = []

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        self.requests.append(method)
        if isinstance(method, SendMessage):
            sent = Message(
                message_id=1000 + len(self.requests),
                date=datetime.now(),
                chat=Chat(id=int(method.chat_id), type="supergroup"),
                from_user=User(id=BOT_ID, is_bot=True, first_name="Bot"),
                text=method.text,
            )
            return sent  # type: ignore[return-value]
        raise AssertionError(f"the scenario sends no {type(method).__name__}")

    async def close(self) -> None:
        pass

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        raise AssertionError("no downloads in this scenario")
        yield b""  # pragma: no cover


class Signup(StatesGroup):
    name = State()
    age = State()


def signup_router() -> Router:
    router = Router()

    @router.message(CommandStart())
    async def start(message: Message, state: FSMContext) -> None:
        await state.set_state(Signup.name)
        await message.answer("Your name?")

    @router.message(Signup.name, F.text)
    async def got_name(message: Message, state: FSMContext) -> None:
        await state.update_data(name=message.text, chat_title=None)
        await state.set_state(Signup.age)
        await message.answer(f"Hi {message.text}! Your age?")

    return router


def update(update_id: int, text: str) -> Update:
    return Update(
        update_id=update_id,
        message=Message(
            message_id=update_id,
            date=datetime.now(),
            chat=Chat(id=CHAT_ID, type="supergroup", title="Test chat"),
            from_user=User(id=USER_ID, is_bot=False, first_name="Ann"),
            text=text,
        ),
    )


def run_qstate(url: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "QSTATE_URL"}
    return subprocess.run(
        [QSTATE, "--url", url, *args], cwd=cwd, capture_output=True, text=True, env=env
    )


@pytest.fixture(params=["file", pytest.param("redis", marks=pytest.mark.redis)])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store another process can read."""
    if request.param == "file":
        return f"file:{tmp_path}/bot.db"
    url: str = request.getfixturevalue("redis_url")
    return url


def test_a_two_step_dialog_is_stored_and_readable_with_qstate_get(
    shared_url: str, tmp_path: Path
) -> None:
    session = RecordingSession()

    async def main() -> None:
        storage = QStateStorage(shared_url)
        dp = Dispatcher(storage=storage, events_isolation=storage.create_isolation())
        dp.include_router(signup_router())
        bot = Bot("42:TEST", session=session)
        await dp.emit_startup()
        try:
            await dp.feed_update(bot, update(1, "/start"))
            assert await storage.get_state(_key()) == "Signup:name"
            await dp.feed_update(bot, update(2, "Ann"))
        finally:
            await dp.emit_shutdown()  # closes the storage, as on a real bot's exit

    asyncio.run(main())
    assert [r.text for r in session.requests if isinstance(r, SendMessage)] == [
        "Your name?",
        "Hi Ann! Your age?",
    ]

    state = run_qstate(shared_url, "get", "aiogram.state", "state", "--scope", SCOPE, cwd=tmp_path)
    assert state.returncode == 0, state.stderr
    assert state.stdout.strip() == "Signup:age"
    data = run_qstate(shared_url, "get", "aiogram.data", "--scope", SCOPE, "--json", cwd=tmp_path)
    assert data.returncode == 0, data.stderr
    assert json.loads(data.stdout) == {"name": "Ann", "chat_title": None}
    listed = run_qstate(shared_url, "list", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    names = {(s["state"], s["scope"]) for s in json.loads(listed.stdout)}
    assert names == {("aiogram.data", SCOPE), ("aiogram.state", SCOPE)}
    assert "aiogram.lock" not in listed.stdout, "the isolation's lock was released"


def _key() -> StorageKey:
    return StorageKey(bot_id=BOT_ID, chat_id=CHAT_ID, user_id=USER_ID)


PROCESSES, CALLS = 5, 10


def _update_many(url: str, worker: int, start: Any) -> None:
    async def main() -> None:
        storage = QStateStorage(url)
        start.wait()  # every process connected and ready: all go at once
        for call in range(CALLS):
            await storage.update_data(_key(), {f"w{worker}-{call}": call})
        await storage.close()

    asyncio.run(main())


@pytest.mark.slow
def test_processes_updating_one_chat_lose_no_key(shared_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    workers = [
        context.Process(target=_update_many, args=(shared_url, w, start)) for w in range(PROCESSES)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(120)
        assert process.exitcode == 0

    async def read() -> dict[str, Any]:
        storage = QStateStorage(shared_url)
        try:
            return await storage.get_data(_key())
        finally:
            await storage.close()

    data = asyncio.run(read())
    expected = {f"w{w}-{c}" for w in range(PROCESSES) for c in range(CALLS)}
    assert set(data) == expected, f"lost {len(expected - set(data))} keys"
