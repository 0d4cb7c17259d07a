"""SQLite's WAL checkpoints, done on a worker thread instead of inside a commit on the event loop.

In WAL mode every commit appends to the `-wal` file, and by default the commit that takes the file
past 1,000 pages also copies it back into the database and fsyncs the database file. Our SQLite
connection runs on the event loop's thread (`storage.inline_sqlite`), so that commit held every
update in the process for the copy and the fsync: about 6 ms on the benchmark machine, every few
hundred updates, and 10 to 20 ms of queue behind it under load (bench/NOTES.md).

The serving process therefore opens its engine with `create_engine(..., manual_checkpoints=True)`,
which turns the automatic checkpoint off on its connection, and runs a `WalCheckpointer`: every
`every` seconds a PASSIVE checkpoint from its own connection, on a worker thread. PASSIVE never
waits for the writer or for readers; it copies what it can, and once all is copied the next
writer starts the WAL file again from its beginning, so the file stays small. Other processes
on the same file (a CLI command) keep SQLite's automatic checkpoint, and the last connection to
close checkpoints whatever is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3

log = logging.getLogger(__name__)


class WalCheckpointer:
    def __init__(self, database: str, every: float = 1.0):
        self.database = database
        self.every = every
        self.runs = 0
        self._connection: sqlite3.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def checkpoint(self) -> tuple[int, int, int]:
        """One PASSIVE checkpoint: (busy, frames in the WAL, frames copied). Blocking."""
        if self._connection is None:
            # Used by one worker thread at a time (the task awaits each call), never at once.
            self._connection = sqlite3.connect(
                self.database, isolation_level=None, check_same_thread=False, uri=True
            )
        busy, frames, copied = self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.runs += 1
        return busy, frames, copied

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="sqlite-wal-checkpoints")

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):  # the wait ends early only for a stop
                await asyncio.wait_for(self._stopping.wait(), self.every)
                return
            try:
                await asyncio.to_thread(self.checkpoint)
            except sqlite3.Error as exc:  # another process checkpointing, a disk error: next time
                log.warning("WAL checkpoint failed: %s", exc)

    async def stop(self) -> None:
        """Let a checkpoint under way finish (its thread cannot be cancelled), then close."""
        if self._task is not None:
            self._stopping.set()
            await self._task
            self._task = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None
