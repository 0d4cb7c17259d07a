"""The media package: progress PNG, certificate PDF, verification codes and Open Badges."""

from __future__ import annotations

import hashlib
import io
import json
import re
import struct
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from pypdf import PdfReader

from bot.media.badge import open_badge_assertion
from bot.media.certificate import (
    CODE_ALPHABET,
    CertificateText,
    display_name,
    new_code,
    normalise_code,
    render_certificate_pdf,
)
from bot.media.progress_card import (
    HEIGHT_PX,
    WIDTH_PX,
    ProgressPicture,
    describe_progress,
    render_progress_png,
)

TODAY = date(2026, 11, 26)  # a Thursday
LABELS = {
    "practice": "Practice",
    "areas": "Competence areas",
    "courses": "Courses",
    "streak": "Streak: {n}",
    "weekdays": "M,T,W,T,F,S,S",
    "none": "Nothing yet",
}
CODE_RE = re.compile(r"^[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}$")


def picture(**changes) -> ProgressPicture:
    fields = {
        "title": "📊 Your progress",
        "practice_days": frozenset(TODAY - timedelta(days=d) for d in (0, 1, 2, 5, 9, 30)),
        "today": TODAY,
        "areas": [
            ("Information and data literacy", 0.82),
            ("Ψηφιακή δημιουργία περιεχομένου", 0.5),
            ("Création de contenu numérique", 0.0),
            ("Safety", 1.0),
        ],
        "courses": [("Art & digital entrepreneurship", 0.35)],
        "labels": LABELS,
        "streak": 3,
    }
    fields.update(changes)
    return ProgressPicture(**fields)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    return struct.unpack(">II", data[16:24])


# --- progress picture --------------------------------------------------------------------------


def test_progress_png_has_the_documented_size():
    assert png_size(render_progress_png(picture())) == (WIDTH_PX, HEIGHT_PX) == (1080, 1350)


def test_empty_history_renders():
    empty = picture(practice_days=frozenset(), areas=[], courses=[], streak=0, title="")
    assert png_size(render_progress_png(empty)) == (1080, 1350)
    text = describe_progress(empty)
    assert "Streak: 0" in text
    assert "Competence areas: Nothing yet" in text and "Courses: Nothing yet" in text


def test_many_areas_long_labels_and_odd_values_still_render():
    areas = [(f"Area {i} " + "with a very long name " * 4, i / 20) for i in range(20)]
    odd = picture(
        areas=[*areas, ("Over", 1.7), ("Below", -0.5), ("Unknown", float("nan"))],
        courses=[("Course $x$ with $dollars$", 0.5)] * 8,
        weeks=53,
        labels={},  # every label missing: English defaults
    )
    assert png_size(render_progress_png(odd)) == (1080, 1350)
    text = describe_progress(odd)
    assert "Over 100%" in text and "Below 0%" in text and "Unknown 0%" in text


def test_calendar_ignores_days_outside_its_weeks():
    inside = frozenset(TODAY - timedelta(days=d) for d in range(0, 20, 2))
    outside = frozenset({TODAY + timedelta(days=1), TODAY - timedelta(weeks=13)})
    with_outside = picture(practice_days=inside | outside)
    assert render_progress_png(picture(practice_days=inside)) == render_progress_png(with_outside)
    assert render_progress_png(picture(practice_days=frozenset())) != render_progress_png(
        with_outside
    )
    # 11 full weeks before this one plus Monday..Thursday of it.
    assert "Practice: 10/81" in describe_progress(with_outside)


def test_describe_progress_names_the_streak_and_every_percentage():
    text = describe_progress(picture(streak=17))
    assert "Streak: 17" in text
    assert "Your progress" in text and "📊" not in text
    for expected in (
        "Information and data literacy 82%",
        "Ψηφιακή δημιουργία περιεχομένου 50%",
        "Création de contenu numérique 0%",
        "Safety 100%",
        "Art & digital entrepreneurship 35%",
    ):
        assert expected in text
    assert "Practice: 6/81" in text


def test_percentages_round_down_and_follow_the_label():
    labels = {**LABELS, "percent": "{n} %"}
    text = describe_progress(picture(areas=[("A", 0.999), ("B", 0.29)], labels=labels))
    assert "A 99 %" in text and "B 29 %" in text


def test_rendering_from_threads_gives_the_same_picture():
    pictures = [picture(streak=n) for n in range(3)]
    alone = [render_progress_png(p) for p in pictures]
    with ThreadPoolExecutor(max_workers=3) as pool:
        together = list(pool.map(render_progress_png, pictures))
    assert together == alone
    assert len(set(alone)) == 3


# --- certificate -------------------------------------------------------------------------------

TEXT = CertificateText(
    heading="Certificate of completion",
    awarded_to="awarded to",
    for_completing="for completing the course",
    on_date="26 November 2026",
    competences_heading="Competences covered",
    verify_line="Verify with /verify {code}",
    issuer="RestART Tutor · Erasmus+ project RestART",
)


def pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 1
    page = reader.pages[0]
    width, height = float(page.mediabox.width), float(page.mediabox.height)
    assert (round(width), round(height)) == (842, 595)  # A4 landscape in points
    return "\n".join(p.extract_text() for p in reader.pages)


def test_certificate_contains_name_course_and_code():
    code = new_code()
    text = pdf_text(
        render_certificate_pdf(
            "Zoë  Ångström\u200b",
            "Spotting disinformation",
            ["Evaluating data, information and digital content", "Netiquette"],
            code,
            TEXT,
        )
    )
    assert "Zoë Ångström" in text
    assert "Spotting disinformation" in text
    assert code in text
    assert "Netiquette" in text and "Certificate of completion" in text


def test_certificate_shortens_a_long_competence_list():
    competences = [f"Competence number {i}" for i in range(1, 16)]
    text = pdf_text(render_certificate_pdf("Ana", "Course", competences, new_code(), TEXT))
    assert "Competence number 11" in text
    assert "Competence number 12" not in text
    assert "and 4 more" in text


def test_certificate_accepts_a_typed_code_and_refuses_garbage():
    text = pdf_text(render_certificate_pdf("Ana", "Course", [], "k7qf 9xwa 3mtp", TEXT))
    assert "K7QF-9XWA-3MTP" in text
    with pytest.raises(ValueError):
        render_certificate_pdf("Ana", "Course", [], "not a code", TEXT)


HOSTILE_NAMES = {
    "long": "Maria " + "Konstantinopoulou " * 30,
    "emoji": "🎨🎭 Anna 👩🏽‍🎨 Maria 🇬🇷🇬🇷✨",
    "only emoji": "👩‍🎨👩‍🎨🎨",
    "arabic": "محمد العلي",
    "hebrew": "דוד לוי",
    "override": "Anna\u202eSSAP\u202c Maria",
    "zero width": "An\u200dna\u200b Ma\u200cria\ufeff\u2060",
    "controls": "Anna\x00\x07\n\tMaria\x1b[31m",
    "zalgo": "Z" + "\u0301" * 40 + "algo",
    "blank": "\u3164\u2800   \u200b",
    "one long word": "x" * 500,
}


@pytest.mark.parametrize("name", HOSTILE_NAMES.values(), ids=HOSTILE_NAMES.keys())
def test_hostile_names_give_a_valid_pdf_and_a_clean_name(name: str):
    shown = display_name(name)
    assert shown and shown == shown.strip() and "  " not in shown
    assert len(shown) <= 61
    assert not any(unicodedata.category(ch) in {"Cc", "Cf"} for ch in shown)
    assert "\u202e" not in shown and "\u200d" not in shown
    text = pdf_text(render_certificate_pdf(name, "Crowdfunding", ["Vision"], new_code(), TEXT))
    assert "Crowdfunding" in text


def test_display_name_cleans_sensibly():
    assert display_name("  Maria \n\t Callas  ") == "Maria Callas"
    assert display_name("Anna🎨Maria") == "Anna Maria"
    assert display_name("Anna\u202eSSAP") == "AnnaSSAP"
    assert display_name("𝐀𝐧𝐧𝐚") == "Anna"  # mathematical bold letters fold to plain ones
    assert display_name("Ελένη Παπαδοπούλου") == "Ελένη Παπαδοπούλου"
    assert display_name("") == display_name("🎨") == display_name("\u200b") == "Learner"
    assert display_name("Z" + "\u0301" * 40) == "\u0179\u0301\u0301\u0301"  # Ź and 3 marks


def test_display_name_truncates_at_a_word_with_an_ellipsis():
    name = "Anna Maria " + "Konstantinopoulou " * 10
    short = display_name(name, limit=30)
    assert short.endswith("…") and len(short) <= 30
    assert name.startswith(short[:-1]) and name[len(short) - 1] == " "
    assert display_name("x" * 100, limit=10) == "x" * 9 + "…"
    assert display_name("Short name", limit=10) == "Short name"


# --- verification codes ------------------------------------------------------------------------


def test_new_codes_are_unique_and_well_formed():
    codes = [new_code() for _ in range(10_000)]
    assert len(set(codes)) == len(codes)
    assert all(CODE_RE.match(code) for code in codes)
    assert not set("".join(codes)) & set("01OIL")
    assert set("".join(codes).replace("-", "")) == set(CODE_ALPHABET)  # every symbol is used


def test_normalise_code_round_trips_and_forgives_typing():
    code = new_code()
    compact = code.replace("-", "")
    for typed in (
        code,
        code.lower(),
        compact,
        compact.lower(),
        f"  {code[:4]} {code[5:9]}  {code[10:]} ",
        "-" + code.replace("-", "--") + "-",
        code.replace("-", "\u2013"),  # an en dash from a word processor
        "".join(chr(ord(c) + 0xFEE0) for c in compact),  # full-width characters
    ):
        assert normalise_code(typed) == code, typed


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "   ",
        "DROP TABLE",
        "'; DROP TABLE certificates; --",
        "K7QF-9XWA-3MT",  # 11
        "K7QF-9XWA-3MTPQ",  # 13
        "K7QF-9XWA-3MT0",
        "K7QF-9XWA-3MTO",
        "K7QF-9XWA-3MT1",
        "K7QF-9XWA-3MTI",
        "K7QF-9XWA-3MTL",
        "K7QF/9XWA/3MTP",
        "K7QF-9XWA-3MTP" * 10,
    ],
)
def test_normalise_code_rejects_what_cannot_be_a_code(garbage: str):
    assert normalise_code(garbage) is None


# --- Open Badges -------------------------------------------------------------------------------


def assertion(**changes) -> dict:
    fields = {
        "code": "K7QF-9XWA-3MTP",
        "recipient_id": "tg://user?id=123456789",
        "salt": "b5f0c3",
        "course_id": "mooc-art",
        "course_title": "Art & digital entrepreneurship",
        "issued_on": datetime(2026, 11, 26, 14, 30, tzinfo=timezone(timedelta(hours=2))),
        "verify_base_url": "https://tutor.example.org/verify/",
        "issuer_name": "RestART Tutor",
        "issuer_url": "https://tutor.example.org/",
        "competences": ["Creativity", "Spotting opportunities", "Creativity"],
    }
    fields.update(changes)
    return open_badge_assertion(**fields)


def test_badge_assertion_is_open_badges_2():
    badge = assertion()
    assert badge["@context"] == "https://w3id.org/openbadges/v2"
    assert badge["type"] == "Assertion"
    assert badge["id"] == "https://tutor.example.org/verify/K7QF-9XWA-3MTP"
    assert badge["verification"] == {"type": "hosted"}
    assert badge["issuedOn"] == "2026-11-26T12:30:00Z"
    recipient = badge["recipient"]
    assert recipient["type"] == "url" and recipient["hashed"] is True
    assert recipient["salt"] == "b5f0c3"
    digest = hashlib.sha256(b"tg://user?id=123456789b5f0c3").hexdigest()
    assert recipient["identity"] == f"sha256${digest}"
    bc = badge["badge"]
    assert bc["type"] == "BadgeClass"
    for key in ("id", "name", "description", "image", "criteria", "issuer"):
        assert bc[key], key
    assert bc["id"].startswith("https://") and bc["name"] == "Art & digital entrepreneurship"
    assert bc["image"].startswith("data:image/svg+xml;base64,")
    assert bc["criteria"]["narrative"]
    assert bc["issuer"] == {
        "type": "Profile",
        "id": "https://tutor.example.org/",
        "name": "RestART Tutor",
        "url": "https://tutor.example.org/",
    }
    assert bc["tags"] == ["Creativity", "Spotting opportunities"]
    assert [a["targetName"] for a in bc["alignment"]] == bc["tags"]
    assert all(a["targetUrl"].startswith("https://") for a in bc["alignment"])


def test_badge_assertion_is_json_and_hides_the_recipient():
    badge = assertion(issued_on=datetime(2026, 1, 1, tzinfo=UTC))
    encoded = json.dumps(badge, ensure_ascii=False)
    assert json.loads(encoded) == badge
    assert "123456789" not in encoded and "tg://" not in encoded


def test_badge_assertion_lets_another_host_verify_and_refuses_bad_input():
    other = assertion(verify_base_url="https://verify.example.net:8443/b/")
    assert other["badge"]["issuer"]["verification"] == {
        "allowedOrigins": ["verify.example.net:8443"]
    }
    with pytest.raises(ValueError):
        assertion(issued_on=datetime(2026, 11, 26, 12, 0))  # naive
    with pytest.raises(ValueError):
        assertion(salt="")
    with pytest.raises(ValueError):
        assertion(verify_base_url="/verify/")


def test_the_bot_starts_without_importing_matplotlib():
    """matplotlib and numpy load on the first drawing (on a worker thread), not with the bot:
    half a second of every start and about 40 MB (resident) of every process that never draws."""
    import subprocess
    import sys

    code = (
        "import sys, bot.runtime, bot.cli\n"
        "print(sorted({'matplotlib', 'numpy'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
