"""Each adapter's Bot API call over real HTTP: results as the Bot API's JSON, and every kind of
error answer mapped to the `SendError` the sender acts on."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import pytest

from bot.runtime import make_runner
from bot.transports.telegram import FileUpload, PolledUpdates, SendError
from tests.botapi import BotAPIServer
from tests.e2e.tg import TOKEN

TRANSPORTS = ("aiogram", "ptb")


@pytest.fixture(params=TRANSPORTS)
async def api_and_server(request):
    server = BotAPIServer(token=TOKEN)
    base = await server.start()
    runner = make_runner(request.param, TOKEN, base, gateway=None)  # no updates are read here
    await runner.start()
    yield runner.api, server
    await runner.close()
    await server.stop()


async def test_results_are_the_bot_apis_json(api_and_server):
    api, server = api_and_server
    markup = {"inline_keyboard": [[{"text": "Go", "callback_data": "go:1"}]]}
    sent = await api.call("sendMessage", {"chat_id": 7, "text": "hi", "reply_markup": markup})
    assert sent["chat"]["id"] == 7 and sent["text"] == "hi"
    assert sent["reply_markup"] == markup
    photo = await api.call(
        "sendPhoto",
        {
            "chat_id": 7,
            "photo": FileUpload("p.png", b"\x89PNG..."),
            "caption": "c",
            "disable_notification": True,
        },
    )
    assert photo["caption"] == "c" and photo["photo"]
    request = server.calls("sendPhoto")[0]
    upload = request.params["photo"]
    assert (upload.filename, upload.head, request.params["disable_notification"]) == (
        "p.png",
        b"\x89PNG...",
        True,
    )
    assert (await api.call("getMe", {}))["is_bot"] is True


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (429, "retry_after"),
        (403, "blocked"),
        (401, "unauthorized"),
        (400, "bad_request"),
        (500, "transient"),
    ],
)
async def test_error_answers_become_send_errors(api_and_server, status, kind):
    api, server = api_and_server
    server.fail("sendMessage", status=status, retry_after=3)
    with pytest.raises(SendError) as caught:
        await api.call("sendMessage", {"chat_id": 7, "text": "hi"})
    assert caught.value.kind == kind
    assert caught.value.retry_after == (3.0 if status == 429 else 0.0)
    await api.call("sendMessage", {"chat_id": 7, "text": "again"})  # the next call goes through


async def test_an_unknown_method_is_a_bad_request_not_a_refused_token(api_and_server):
    """PTB reports both 401 and 404 as an invalid token; only a 401 is one."""
    api, _server = api_and_server
    with pytest.raises(SendError) as caught:
        await api.call("sendNothingAtAll", {"chat_id": 7})
    assert caught.value.kind == "bad_request"


async def test_a_broken_answer_or_connection_is_transient(api_and_server):
    api, server = api_and_server
    server.fail("sendMessage", status=502, body="<html>Bad gateway</html>")
    with pytest.raises(SendError) as caught:
        await api.call("sendMessage", {"chat_id": 7, "text": "hi"})
    assert caught.value.kind == "transient"
    server.fail("sendMessage", status=0)  # the connection is dropped without an answer
    with pytest.raises(SendError) as caught:
        await api.call("sendMessage", {"chat_id": 7, "text": "hi"})
    assert caught.value.kind == "transient"


RAW_UPDATE = {
    "update_id": 7,
    "message": {
        "message_id": 1,
        "date": 1_700_000_000,
        "chat": {"id": 42, "type": "private"},
        "from": {"id": 42, "is_bot": False, "first_name": "Ada"},
        "text": "/start",
        "some_future_field": {"kept": True},
    },
}


def test_polled_updates_are_kept_until_claimed_once():
    polled = PolledUpdates()
    polled.keep({"ok": True, "result": [RAW_UPDATE, {"no": "id"}, "junk"]})
    polled.keep({"ok": True, "result": True})  # not a getUpdates answer
    polled.keep(["not", "an", "answer"])
    assert polled.raw == {7: RAW_UPDATE}
    assert polled.claim(7) == RAW_UPDATE and polled.claim(7) is None
    polled.keep({"ok": True, "result": [{"update_id": i} for i in range(PolledUpdates.KEEP + 1)]})
    polled.keep({"ok": True, "result": [RAW_UPDATE]})  # too many unclaimed: started over
    assert list(polled.raw) == [7]


@asynccontextmanager
async def polling(transport: str):
    """A runner polling the loopback server; yields (server, runner, the updates it handled)."""
    server = BotAPIServer(token=TOKEN)
    base = await server.start()
    seen: list[dict] = []

    class Gateway:
        async def handle(self, raw, _api):
            seen.append(raw)

    runner = make_runner(transport, TOKEN, base, gateway=Gateway())
    await runner.start()
    task = asyncio.create_task(runner.poll(polling_timeout=1))
    try:
        yield server, runner, seen
    finally:
        await runner.stop_polling()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await runner.close()
        await server.stop()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_polled_updates_reach_the_gateway_as_received(transport):
    """Through each framework's own polling, the gateway gets the JSON kept by the framework's
    JSON-decoding hook, not a copy rebuilt from the framework's objects."""
    async with polling(transport) as (server, runner, seen):
        claimed: list[dict | None] = []
        claim = runner.polled.claim
        runner.polled.claim = lambda update_id: claimed.append(claim(update_id)) or claimed[-1]
        server.user_sends(42, "/start")
        await server.wait_for(lambda: seen, timeout=10)
        assert seen[0]["message"]["text"] == "/start"
        assert claimed and claimed[0] is seen[0]
        assert runner.polled.raw == {}


async def test_aiogram_polling_does_not_rebuild_its_response_class(monkeypatch):
    """aiogram reads each getUpdates answer as `Response[list[Update]]`, a pydantic class that
    pydantic caches only weakly. Without the adapter's strong reference, the cyclic GC frees it
    and the next poll builds it again (milliseconds of work on the event loop, every time)."""
    import gc

    from pydantic._internal import _generics

    built: list[str] = []
    build = _generics.create_generic_submodel

    def counting(name, *args, **kwargs):
        built.append(name)
        return build(name, *args, **kwargs)

    monkeypatch.setattr(_generics, "create_generic_submodel", counting)
    async with polling("aiogram") as (server, _runner, seen):
        for n in range(1, 7):
            if n == 2:
                built.clear()  # the first poll builds it once, as it should
            gc.collect()
            server.user_sends(42, f"message {n}")
            await server.wait_for(lambda n=n: len(seen) == n, timeout=10)
        assert len(server.calls("getUpdates")) >= 6
        assert built == []
