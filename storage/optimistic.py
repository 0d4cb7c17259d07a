"""Optimistic units on PostgreSQL: a press handled without a lock and written in one statement.

Why: on PostgreSQL every statement is a round trip. On loopback one costs the bot about 60 µs of
CPU (asyncpg and the event loop) and the server 30 to 80 µs, on the same cores; across a network
each also adds the network's round trip to the learner's wait. A locked unit pays BEGIN, the
learner's row `FOR UPDATE`, each statement and COMMIT: 4 round trips for a card, 7 for a graded
answer, 12 for a lesson's end. An optimistic unit pays its reads and one write: 1, 1 and 2
(tests/test_storage.py keeps the budget; docs/benchmarks.md has the figures).

How (`storage.repository.SqlRepository` runs it):

- The learner's row comes with its version, `xmin`, which every update of the row changes: from
  `LearnerCache` (the rows this process wrote last) or from one read. No lock, no transaction;
  later reads run at once, each on its own.
- Writes wait in the unit (`Upsert`, the unit's inserts). At the end one statement
  (`final_write`) updates the learner's changed columns only where `xmin` is still the one known,
  and, in the same statement, runs each waiting insert only if that update happened. The update
  happens whenever anything is written, even with no column changed, so that it changes `xmin`
  for any other unit of the same learner. A unit that writes nothing but took the learner from
  the cache checks its version with one read.
- If another unit (of this process or another) changed the learner in between, nothing is
  written: `Conflict`. The cache forgets the row and `SqlStore.run` runs the whole unit again
  (the fourth try as a locked unit, so nobody waits for ever). A double tap thus ends as with
  locks: the second press finds its button stale.
- The cache also keeps two of the learner's review cards, valid at the row's version: the one
  for the question on screen, which the unit's write selected beside the new version, and the
  last one the process wrote. A graded answer then reads its card from there: one round trip, the
  write. The version check that guards the row guards them too.
- A read of what the unit has written but holds back adds it to what it reads (answers, lessons
  done, practice days: a lesson's end). Any other read of a table with a waiting insert, a
  statement through SQLAlchemy, or a second learner first turns the unit into a locked one:
  BEGIN, the learner's row locked and its `xmin` checked (`Conflict` if it moved), the waiting
  inserts written.

SQLite units never need this: its statements run in-process and its transactions take the write
lock up front (`storage.db`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, bindparam, exists, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.util import find_tables

from storage.models import Learner

LEARNERS = Learner.__table__
VERSION = literal_column("xmin::text::bigint", BigInteger)
"""The row's version: `xid` has no cast to a number but through its text."""

INSERTS = {"sqlite": sqlite_insert, "postgresql": pg_insert}


class Conflict(Exception):
    """Another unit changed this learner after this unit read it: run the unit again."""


class Upsert:
    """INSERT … ON CONFLICT (keys) DO NOTHING, or DO UPDATE SET `refresh`, with the values given
    at execution: one write a unit may hold back (`final_write`). The statement for each dialect
    is built once, here."""

    def __init__(self, model: Any, keys: Sequence[str], refresh: Sequence[str] = ()):
        self.table = model.__table__
        self.keys = list(keys)
        self.refresh = list(refresh)
        self.statements = {
            name: self._conflict(insert(self.table)) for name, insert in INSERTS.items()
        }

    def _conflict(self, statement: Any) -> Any:
        if self.refresh:
            return statement.on_conflict_do_update(
                index_elements=self.keys, set_={c: statement.excluded[c] for c in self.refresh}
            )
        return statement.on_conflict_do_nothing(index_elements=self.keys)

    def guarded(self, columns: Sequence[str], prefix: str, guard: Any) -> Any:
        """The PostgreSQL insert of `columns`, bound as `<prefix><column>`, that inserts nothing
        unless `guard` (a CTE) has a row."""
        source = select(
            *(bindparam(prefix + c, type_=self.table.c[c].type) for c in columns)
        ).where(exists(guard.select()))
        return self._conflict(pg_insert(self.table).from_select(list(columns), source))


@lru_cache(maxsize=256)
def final_write(
    changed: tuple[str, ...],
    writes: tuple[tuple[Upsert, tuple[str, ...]], ...],
    also: ClauseElement | None = None,
):
    """The unit's one write, for the learner's `changed` columns (bound as `l_<column>`) and the
    waiting `writes` (the n-th bound as `w<n>_<column>`), checked against `b_learner` and
    `b_version`. It selects the row's new version, or nothing: a `Conflict`. Cached per shape,
    so each shape is compiled once (`storage.direct.compiled` keys by identity).

    `also`: a scalar subquery selected beside the version, a read for the learner's next update
    (`SqlRepository.prefetch_review_card`). It sees the database as the statement began, which
    is as of the version checked: anything written for this learner since changed its row too,
    and then the update writes nothing."""
    values = {c: bindparam("l_" + c, type_=LEARNERS.c[c].type) for c in changed}
    cas = (
        update(LEARNERS)
        .where(LEARNERS.c.id == bindparam("b_learner"), bindparam("b_version") == VERSION)
        .values(values or {"id": LEARNERS.c.id})
        .returning(VERSION.label("version"))
        .cte("learner")
    )
    statement = select(cas.c.version) if also is None else select(cas.c.version, also)
    for n, (write, columns) in enumerate(writes):
        statement = statement.add_cte(write.guarded(columns, f"w{n}_", cas).cte(f"w{n}"))
    return statement


@lru_cache(maxsize=512)
def tables_read(statement: ClauseElement) -> frozenset[str]:
    """The tables a read looks at: a waiting write to one of them must land before it runs."""
    return frozenset(table.name for table in find_tables(statement, include_crud=True))


class Cached(NamedTuple):
    """A learner row as this process last wrote it, its version, and what the process knows of
    the learner's review cards at that version: question id → the stored card, or None when
    there is none. Valid exactly as long as the version: every write for the learner changes
    its row."""

    row: tuple[Any, ...]
    version: int
    cards: Mapping[str, dict | None]


class LearnerCache:
    """The learner rows this process wrote last, with their versions, by external id: an
    optimistic unit starts from one instead of reading it. A row another process (or a locked
    unit) changed since is caught by the same version check as any other change: the unit
    conflicts, forgets the row and runs again on a fresh read; a unit that writes nothing checks
    the version with one read. The least recently used rows go past `size`; each keeps at most
    `cards` review cards, the newest."""

    def __init__(self, size: int = 10_000, cards: int = 2):
        self.size = size
        self.cards = cards
        self._rows: OrderedDict[str, Cached] = OrderedDict()

    def get(self, key: str) -> Cached | None:
        found = self._rows.get(key)
        if found is not None:
            self._rows.move_to_end(key)
        return found

    def put(
        self,
        key: str,
        row: tuple[Any, ...],
        version: int,
        cards: Mapping[str, dict | None] | None = None,
    ) -> None:
        kept = dict(list((cards or {}).items())[-self.cards :]) if self.cards else {}
        self._rows[key] = Cached(row, version, kept)
        self._rows.move_to_end(key)
        if len(self._rows) > self.size:
            self._rows.popitem(last=False)

    def forget(self, key: str) -> None:
        self._rows.pop(key, None)
