"""The tables: the system of record for learners, answers, lessons done and practice days.

Every instant is stored as UTC (`UTCDateTime` keeps SQLite and PostgreSQL alike); a learner's
local dates are computed from their IANA zone when they are written, because a streak is a
calendar matter in the learner's own zone. Telegram ids need 52 bits: BIGINT.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every database."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):  # type: ignore[override]
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):  # type: ignore[override]
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Learner(Base):
    __tablename__ = "learners"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    display_name: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(8), default="en")
    time_zone: Mapped[str | None] = mapped_column(String(64))
    daily_time: Mapped[str | None] = mapped_column(String(5))
    onboarding: Mapped[str] = mapped_column(String(16), default="new")
    awaiting: Mapped[str | None] = mapped_column(String(48))
    nudges_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    role: Mapped[str] = mapped_column(String(16), default="learner")
    quiz_mode: Mapped[str] = mapped_column(String(8), default="buttons")
    course_id: Mapped[str | None] = mapped_column(String(40))
    lesson_id: Mapped[str | None] = mapped_column(String(40))
    item_index: Mapped[int] = mapped_column(Integer, default=0)
    pending_token: Mapped[str | None] = mapped_column(String(16))
    pending_selection: Mapped[str | None] = mapped_column(String(64))
    reviewing: Mapped[str | None] = mapped_column(String(48))
    """The question (or "booster:<n>:<question>") on screen in a review session."""
    next_nudge_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    weekdays: Mapped[str | None] = mapped_column(String(7))
    quiet_hours: Mapped[str | None] = mapped_column(String(11))
    paused_until: Mapped[date | None] = mapped_column(Date)
    streak_days: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    share_name: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    """Consent to appear by name (not a pseudonym) in a trainer's export."""
    last_practice_day: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Answer(Base):
    """One answer to one presentation of a question. `token` names the presentation, so the
    same button pressed twice is stored once (the unique key), whatever the transport does."""

    __tablename__ = "answers"
    __table_args__ = (
        UniqueConstraint("learner_id", "token", name="uq_answers_learner_token"),
        Index("ix_answers_learner_question", "learner_id", "question_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("learners.id", ondelete="CASCADE"))
    question_id: Mapped[str] = mapped_column(String(40))
    lesson_id: Mapped[str] = mapped_column(String(40))
    token: Mapped[str] = mapped_column(String(16))
    choice: Mapped[str] = mapped_column(String(64))
    correct: Mapped[bool | None] = mapped_column(Boolean)
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    context: Mapped[str] = mapped_column(String(12), default="lesson", server_default="lesson")
    """lesson | review | booster: where the answer was given."""


ANSWER_FACT_COLUMNS = (
    Answer.question_id,
    Answer.lesson_id,
    Answer.choice,
    Answer.correct,
    Answer.answered_at,
    Answer.context,
)
"""An answer as the engine reads it (`bot.tutor.ports.AnswerFact`, in that order)."""


class LessonCompletion(Base):
    __tablename__ = "lesson_completions"

    learner_id: Mapped[int] = mapped_column(
        ForeignKey("learners.id", ondelete="CASCADE"), primary_key=True
    )
    lesson_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    course_id: Mapped[str] = mapped_column(String(40))
    completed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PracticeDay(Base):
    """A calendar day, in the learner's zone, on which they finished a lesson or exercise."""

    __tablename__ = "practice_days"

    learner_id: Mapped[int] = mapped_column(
        ForeignKey("learners.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)


class PausePeriod(Base):
    """A vacation hold: local days on which the streak is frozen and no nudge is sent."""

    __tablename__ = "pause_periods"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    learner_id: Mapped[int] = mapped_column(
        ForeignKey("learners.id", ondelete="CASCADE"), index=True
    )
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)


class OutboxMessage(Base):
    """A proactive message on its way: nudges, reminders, broadcasts.

    The idempotency key makes "at most one nudge per learner per local date" a unique constraint;
    `lease_until` lets another worker take over a row whose sender died.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "not_before"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    learner_id: Mapped[int | None] = mapped_column(
        ForeignKey("learners.id", ondelete="CASCADE"), index=True
    )
    chat_id: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[dict | None] = mapped_column(JSON)
    broadcast_id: Mapped[int | None] = mapped_column(Integer, index=True)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class InstanceLock(Base):
    """A named lease held by one process (the SQLite sender is single-instance)."""

    __tablename__ = "instance_locks"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(80))
    lease_until: Mapped[datetime] = mapped_column(UTCDateTime)


class ReviewCard(Base):
    """FSRS state of one question for one learner (the `fsrs` package's Card, as JSON)."""

    __tablename__ = "review_cards"
    __table_args__ = (Index("ix_review_cards_due", "learner_id", "due"),)

    learner_id: Mapped[int] = mapped_column(
        ForeignKey("learners.id", ondelete="CASCADE"), primary_key=True
    )
    question_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    due: Mapped[datetime] = mapped_column(UTCDateTime)
    card: Mapped[dict] = mapped_column(JSON)


class TestScore(Base):
    """A pre- or post-test result. The first completion is the score (a unique key)."""

    __tablename__ = "test_scores"

    learner_id: Mapped[int] = mapped_column(
        ForeignKey("learners.id", ondelete="CASCADE"), primary_key=True
    )
    course_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # pre | post
    discernment: Mapped[float | None] = mapped_column(Float)
    confidence: Mapped[float | None] = mapped_column(Float)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Booster(Base):
    """A spaced booster (three mixed items) due some days after a course was finished."""

    __tablename__ = "boosters"

    learner_id: Mapped[int] = mapped_column(
        ForeignKey("learners.id", ondelete="CASCADE"), primary_key=True
    )
    course_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    due_on: Mapped[date] = mapped_column(Date)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Certificate(Base):
    __tablename__ = "certificates"

    code: Mapped[str] = mapped_column(String(20), primary_key=True)
    learner_id: Mapped[int] = mapped_column(
        ForeignKey("learners.id", ondelete="CASCADE"), index=True
    )
    course_id: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    score: Mapped[float] = mapped_column(Float)
    competences: Mapped[list] = mapped_column(JSON)
    salt: Mapped[str] = mapped_column(String(40))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Cohort(Base):
    __tablename__ = "cohorts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    course_id: Mapped[str | None] = mapped_column(String(40))
    default_time: Mapped[str | None] = mapped_column(String(5))
    owner_id: Mapped[int] = mapped_column(ForeignKey("learners.id", ondelete="CASCADE"), index=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CohortMember(Base):
    __tablename__ = "cohort_members"

    cohort_id: Mapped[int] = mapped_column(
        ForeignKey("cohorts.id", ondelete="CASCADE"), primary_key=True
    )
    learner_id: Mapped[int] = mapped_column(
        ForeignKey("learners.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TrainerInvite(Base):
    """A one-time link that makes whoever opens it a trainer."""

    __tablename__ = "trainer_invites"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("learners.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_by: Mapped[int | None] = mapped_column(ForeignKey("learners.id", ondelete="SET NULL"))


class Broadcast(Base):
    """A trainer's announcement: draft → scheduled → sending → done (or cancelled)."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("learners.id", ondelete="CASCADE"))
    owner_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    cohort_id: Mapped[int | None] = mapped_column(Integer)
    """None: all of the owner's cohorts."""
    text: Mapped[str | None] = mapped_column(String(4096))
    media_kind: Mapped[str | None] = mapped_column(String(10))  # photo | document
    media_id: Mapped[str | None] = mapped_column(String(200))
    media_bytes: Mapped[bytes | None] = mapped_column(LargeBinary)
    media_name: Mapped[str | None] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(10), default="draft")
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    total: Mapped[int] = mapped_column(Integer, default=0)
    progress_message_id: Mapped[int | None] = mapped_column(BigInteger)
    progress_text: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PollLink(Base):
    """Telegram poll id → the learner and question presentation it was sent for."""

    __tablename__ = "poll_links"

    poll_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("learners.id", ondelete="CASCADE"))
    token: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
