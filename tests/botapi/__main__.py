"""Run the loopback Bot API server standalone: ``python -m tests.botapi --port 8081``.

Run it from the repository root (``tests`` is a namespace package).

The first line printed is the base URL (``http://127.0.0.1:8081``); point aiogram at it with
``TelegramAPIServer.from_base(url)`` and PTB with ``base_url=url + "/bot"``. Another process
drives the simulated users through the control interface under ``/_test/`` (JSON):

* ``POST /_test/user_sends`` ``{"user_id": 1, "text": "/start"}``
* ``POST /_test/press`` ``{"user_id": 1, "callback_data": "next"}``
* ``POST /_test/poll_answer`` ``{"user_id": 1, "poll_id": "...", "option_ids": [0]}``
* ``POST /_test/inline_query`` / ``POST /_test/update`` (raw update)
* ``POST /_test/block`` ``{"user_id": 1, "blocked": true}``
* ``POST /_test/fail`` ``{"method": "sendMessage", "status": 429, "retry_after": 1, "times": 1}``
* ``POST /_test/slow`` / ``POST /_test/clear_faults`` / ``POST /_test/limits``
* ``GET /_test/sent?chat_id=1`` / ``GET /_test/requests?method=sendMessage`` /
  ``GET /_test/answered_callbacks`` / ``GET /_test/webhook_deliveries`` / ``GET /_test/state``

It runs until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from .server import DEFAULT_TOKEN, BotAPIServer


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.botapi", description="Loopback Telegram Bot API test server."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8081, help="port (0: any free port)")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the only accepted bot token")
    parser.add_argument("--bot-username", default="restart_tutor_bot")
    parser.add_argument(
        "--per-chat-limit",
        type=int,
        default=None,
        help="enable the flood guard: messages per chat per second",
    )
    parser.add_argument(
        "--global-limit", type=int, default=None, help="flood guard: messages per second overall"
    )
    parser.add_argument(
        "--no-record",
        action="store_true",
        help="do not keep the list of requests (long benchmarks)",
    )
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    server = BotAPIServer(
        token=args.token, bot_username=args.bot_username, record_requests=not args.no_record
    )
    if args.per_chat_limit is not None or args.global_limit is not None:
        server.enforce_limits(args.per_chat_limit, args.global_limit)
    base_url = await server.start(args.host, args.port)
    print(base_url, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
