"""The RestART-kit in the chat: `/toolkit` browses by topic, `/toolkit <words>` searches, and
inline mode (`@bot copyright` in any chat) drops a resource into a conversation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.content.model import Resource
from bot.trainers.toolkit_search import ToolkitIndex
from bot.tutor.events import Button, InlineAnswer, InlineResult

if TYPE_CHECKING:
    from bot.tutor.engine import Turn

SHOWN = 5
INLINE_RESULTS = 20


def index(turn: Turn) -> ToolkitIndex:
    tutor = turn.tutor
    if getattr(tutor, "_toolkit_index", None) is None:
        catalog = tutor.catalog

        def translations(resource: Resource) -> list[str]:
            return [
                turn.tutor.translated(lang, f"resource:{resource.id}", resource.what)
                for lang in ("it", "es", "el")
            ]

        tutor._toolkit_index = ToolkitIndex.from_catalog(catalog, translations)
    return tutor._toolkit_index


def describe(turn: Turn, resource: Resource) -> str:
    what = turn.t.content(f"resource:{resource.id}", resource.what)
    return f"{resource.name}\n{what}\n{resource.url}"


async def toolkit(turn: Turn, args: str = "") -> None:
    _ = turn.t._
    kit = turn.catalog.toolkit
    if kit is None:
        turn.out.say(_("The RestART-kit is not installed."))
        return
    query = args.strip()
    if not query:
        buttons = tuple(
            (Button(turn.t.content(f"topic:{t.id}", t.title)[:60], f"tk:{t.id}"),)
            for t in kit.topics
        )
        turn.out.say(
            _(
                "The RestART-kit: resources for trainers. Pick a topic, or search with "
                "/toolkit and a few words (for example /toolkit copyright)."
            ),
            buttons,
        )
        return
    hits = index(turn).search(query[:200], limit=SHOWN)
    if not hits:
        turn.out.say(
            _("Nothing found for “{query}”. Try other words, or /toolkit to browse.").format(
                query=query[:60]
            )
        )
        return
    turn.out.say("\n\n".join(describe(turn, h.resource) for h in hits))


async def topic(turn: Turn, topic_id: str) -> None:
    _ = turn.t._
    resources = index(turn).by_topic(topic_id)
    if not resources:
        turn.out.say(_("That topic does not exist. /toolkit shows them all."))
        return
    turn.out.say("\n\n".join(describe(turn, r) for r in resources))


async def inline(turn: Turn, query_id: str, query: str) -> None:
    hits = index(turn).search(query[:200], limit=INLINE_RESULTS) if query.strip() else []
    resources = [h.resource for h in hits] or list(turn.catalog.resources.values())[:10]
    turn.out.actions.append(
        InlineAnswer(
            query_id,
            tuple(
                InlineResult(
                    r.id,
                    r.name,
                    turn.t.content(f"resource:{r.id}", r.what)[:200],
                    describe(turn, r),
                    r.url,
                )
                for r in resources
            ),
        )
    )


def related(turn: Turn, resource_ids: list[str]) -> list[str]:
    """Lines naming a lesson's related RestART-kit resources."""
    found = [turn.catalog.resources[r] for r in resource_ids if r in turn.catalog.resources]
    return [f"📚 {r.name}: {r.url}" for r in found]
