"""Certificates: earned by finishing a course with its pass mark, verifiable by code.

When the last lesson of a course is done, the learner's score is the share of the course's graded
questions whose latest answer is right (reviews can lift it). At or above the course's
`pass_mark` the tutor asks for the name to print, then sends the PDF and an Open Badges 2.0
assertion. Anyone can check a code with `/verify CODE` or `restart-tutor verify CODE`; an unknown
code gets the same answer whoever asks, and reveals nothing about other certificates.
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING

from bot.content import Catalog, Confidence, Course
from bot.i18n import Translator
from bot.media.badge import open_badge_assertion
from bot.media.certificate import (
    CertificateText,
    display_name,
    new_code,
    normalise_code,
    render_certificate_pdf,
)
from bot.tutor.events import Button, Document, Later
from bot.tutor.mastery import mastered_questions
from bot.tutor.ports import CertificateFact

if TYPE_CHECKING:
    from bot.tutor.engine import Turn

ISSUER_NAME = "RestART Tutor"
ISSUER_URL = "https://restartcreativity.eu"
VERIFY_BASE = "https://restartcreativity.eu/verify/"


def course_questions(course: Course) -> set[str]:
    return {
        q.id
        for lesson in course.lessons
        if lesson.role == "lesson"
        for q in lesson.questions
        if not isinstance(q, Confidence)
    }


async def score(turn: Turn, course: Course) -> float:
    questions = course_questions(course)
    if not questions:
        return 1.0
    mastered = mastered_questions(await turn.repo.answers(turn.learner.id))
    return len(questions & mastered) / len(questions)


def competences(turn: Turn, course: Course) -> list[str]:
    tags = sorted({tag for lesson in course.lessons for tag in lesson.tags})
    names = []
    for tag in tags:
        info = turn.catalog.competences.get(tag)
        if info:
            names.append(
                f"{tag.split(':')[0].capitalize()} {info.tag.split(':')[1]} "
                f"{turn.t.content(f'competence:{tag}', info.name)}"
            )
    return names


async def course_completed(turn: Turn, course: Course) -> list[str]:
    """Lines for the end of a course; asks for the certificate name when earned."""
    _ = turn.t._
    if await turn.repo.certificate(turn.learner.id, course.id):
        return [_("Your certificate is ready: /certificate")]
    result = await score(turn, course)
    percent = turn.t.percent(result)
    if result * 100 + 1e-9 < course.pass_mark:
        return [
            _(
                "Your score is {score}; the certificate needs {mark}%. Reviews can lift it: /review"
            ).format(score=percent, mark=course.pass_mark)
        ]
    turn.learner.awaiting = f"cert:{course.id}"
    return [
        _(
            "Your score is {score}: you have earned the certificate! Which name shall I "
            "print on it? Type it, or use your Telegram name."
        ).format(score=percent)
    ]


def name_button(turn: Turn) -> tuple[Button, ...]:
    _ = turn.t._
    name = display_name(turn.learner.display_name or "")
    return (Button(_("Use “{name}”").format(name=name[:40]), "cert:me"),)


async def issue(turn: Turn, course_id: str, name: str) -> None:
    _ = turn.t._
    course = turn.catalog.course(course_id)
    turn.learner.awaiting = None
    if course is None:
        return
    existing = await turn.repo.certificate(turn.learner.id, course.id)
    if existing is None:
        existing = CertificateFact(
            code=new_code(),
            learner_id=turn.learner.id,
            course_id=course.id,
            name=display_name(name, 120),
            score=await score(turn, course),
            competences=competences(turn, course),
            salt=secrets.token_hex(8),
            issued_at=turn.now,
        )
        await turn.repo.add_certificate(existing)
    turn.out.say(
        _("🎓 Congratulations! Here is your certificate. Its verification code is {code}.").format(
            code=existing.code
        )
    )
    await send(turn, existing, course)


async def send(turn: Turn, fact: CertificateFact, course: Course) -> None:
    _ = turn.t._
    text = CertificateText(
        heading=_("Certificate of completion"),
        awarded_to=_("awarded to"),
        for_completing=_("for completing the course"),
        on_date=turn.t.date(fact.issued_at.astimezone(turn.zone).date()),
        competences_heading=_("Competences covered"),
        verify_line=_("Verify with /verify {code} or restart-tutor verify {code}").format(
            code=fact.code
        ),
        issuer=_("RestART Tutor · Erasmus+ project RestART"),
        and_more=_("and {n} more"),
    )
    caption = _("Certificate: {course}").format(course=course.title)

    def pdf() -> Document:  # rendered after the unit of work (see `Later`)
        data = render_certificate_pdf(fact.name, course.title, fact.competences, fact.code, text)
        return Document(f"certificate-{fact.code}.pdf", data, caption)

    badge = open_badge_assertion(
        code=fact.code,
        recipient_id=f"tg://user?id={fact.learner_id}",
        salt=fact.salt,
        course_id=course.id,
        course_title=course.title,
        issued_on=fact.issued_at,
        verify_base_url=VERIFY_BASE,
        issuer_name=ISSUER_NAME,
        issuer_url=ISSUER_URL,
        competences=fact.competences,
    )
    turn.out.actions.append(Later(pdf))
    turn.out.actions.append(
        Document(
            f"badge-{fact.code}.json",
            json.dumps(badge, indent=2, ensure_ascii=False).encode(),
            _("Open Badges 2.0 assertion"),
        )
    )


async def typed_name(turn: Turn, text: str) -> None:
    course_id = (turn.learner.awaiting or "").removeprefix("cert:")
    name = text if text.strip() else (turn.learner.display_name or "")
    await issue(turn, course_id, name)


async def use_telegram_name(turn: Turn, _value: str) -> None:
    if not (turn.learner.awaiting or "").startswith("cert:"):
        _ = turn.t._
        turn.out.say(_("That button no longer works. Type /today to carry on."))
        return
    await typed_name(turn, turn.learner.display_name or "")


async def resend(turn: Turn, _args: str = "") -> None:
    """`/certificate`: send again every certificate the learner holds."""
    _ = turn.t._
    found = False
    for course in turn.catalog.courses.values():
        fact = await turn.repo.certificate(turn.learner.id, course.id)
        if fact:
            found = True
            await send(turn, fact, course)
    if not found:
        turn.out.say(
            _("You have no certificate yet. Finish a course with its pass mark to earn one.")
        )


def verdict(catalog: Catalog, t: Translator, fact: CertificateFact | None) -> str:
    """The answer to a verification request; the same for every unknown code."""
    _ = t._
    if fact is None:
        return _("No certificate has this code. Check it and try again.")
    course = catalog.course(fact.course_id)
    return _("✅ Valid certificate: {name}, “{course}”, issued on {date}.").format(
        name=fact.name,
        course=course.title if course else fact.course_id,
        date=t.date(fact.issued_at.date()),
    )


async def verify(turn: Turn, args: str = "") -> None:
    _ = turn.t._
    code = normalise_code(args)
    if code is None:
        turn.out.say(_("Please give a code, for example /verify K7QF-9XWA-3MTP."))
        return
    turn.out.say(verdict(turn.catalog, turn.t, await turn.repo.certificate_by_code(code)))
