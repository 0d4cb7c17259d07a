"""Open Badges 2.0 assertions for finished courses, as plain JSON-ready data.

A certificate PDF is for people; an Open Badge is the same achievement for machines (Europass,
Badgr/Canvas Credentials and LinkedIn-style wallets import it). We issue hosted badges: the
assertion below is served at `verify_base_url + code`, the URL that is its id, so revoking or
checking a badge is a matter of that page, not of cryptographic keys. The BadgeClass and the
issuer Profile are embedded rather than linked so that one document says everything.

The learner is never named: the recipient is `sha256(recipient_id + salt)` with the salt shown, as
Open Badges 2.0 prescribes, of type "url", so `recipient_id` should be a URL-like identifier
such as "tg://user?id=123456789". A hash of a short number with a published salt can be found by
trying every number, so it proves who a badge belongs to rather than hiding it; nothing else
about the learner is in the assertion.

Spec: https://www.imsglobal.org/sites/default/files/Badges/OBv2p0Final/index.html
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

__all__ = ["OB2_CONTEXT", "badge_image_data_uri", "open_badge_assertion", "recipient_identity"]

OB2_CONTEXT = "https://w3id.org/openbadges/v2"


def recipient_identity(recipient_id: str, salt: str) -> str:
    """The hashed identity Open Badges 2.0 expects: "sha256$" + hex(sha256(id + salt))."""
    digest = hashlib.sha256((recipient_id + salt).encode("utf-8")).hexdigest()
    return f"sha256${digest}"


def open_badge_assertion(
    *,
    code: str,
    recipient_id: str,
    salt: str,
    course_id: str,
    course_title: str,
    issued_on: datetime,
    verify_base_url: str,
    issuer_name: str,
    issuer_url: str,
    competences: list[str],
    issuer_email: str | None = None,
) -> dict[str, Any]:
    """A hosted Open Badges 2.0 Assertion with its BadgeClass and issuer Profile embedded.

    `verify_base_url` ends where the code begins (e.g. "https://tutor.example.org/verify/");
    `issued_on` must be timezone-aware; `salt` must not be empty (an unsalted hash of a Telegram
    id is reversed by a lookup table). Each competence becomes a tag and an alignment; OB 2.0
    requires an alignment `targetUrl`, and since only names are known here it points at the
    badge's criteria anchor on the issuer's site. `issuer_email` (optional, an addition to the
    first design) fills the Profile's `email`, which the 1EdTech validator expects of issuers.
    """
    if not salt:
        raise ValueError("a recipient salt is required")
    if issued_on.tzinfo is None or issued_on.utcoffset() is None:
        raise ValueError("issued_on must be timezone-aware")
    for name, url in (("verify_base_url", verify_base_url), ("issuer_url", issuer_url)):
        if urlsplit(url).scheme not in {"http", "https"} or not urlsplit(url).netloc:
            raise ValueError(f"{name} must be an absolute http(s) URL: {url!r}")

    issuer_root = issuer_url.rstrip("/")
    badge_id = f"{issuer_root}/badges/{quote(course_id, safe='')}"
    profile: dict[str, Any] = {
        "type": "Profile",
        "id": issuer_url,
        "name": issuer_name,
        "url": issuer_url,
    }
    if issuer_email:
        profile["email"] = issuer_email
    verify_authority = urlsplit(verify_base_url).netloc
    if verify_authority != urlsplit(issuer_url).netloc:
        # Hosted assertions are trusted on the issuer id's own host[:port] only, unless listed here.
        profile["verification"] = {"allowedOrigins": [verify_authority]}

    unique = list(dict.fromkeys(c.strip() for c in competences if c and c.strip()))
    return {
        "@context": OB2_CONTEXT,
        "type": "Assertion",
        "id": f"{verify_base_url}{code}",
        "recipient": {
            "type": "url",
            "hashed": True,
            "salt": salt,
            "identity": recipient_identity(recipient_id, salt),
        },
        "badge": {
            "type": "BadgeClass",
            "id": badge_id,
            "name": course_title,
            "description": f"Completed the course “{course_title}” with {issuer_name}.",
            "image": badge_image_data_uri(course_title),
            "criteria": {
                "id": f"{badge_id}#criteria",
                "narrative": (
                    f"Finish every lesson and exercise of the course “{course_title}” "
                    f"in {issuer_name}."
                ),
            },
            "issuer": profile,
            "tags": unique,
            "alignment": [
                {"targetName": name, "targetUrl": f"{badge_id}#competence-{_slug(name, i)}"}
                for i, name in enumerate(unique, start=1)
            ],
        },
        "issuedOn": issued_on.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "verification": {"type": "hosted"},
    }


def badge_image_data_uri(course_title: str) -> str:
    """A small self-contained SVG badge (OB 2.0 requires an image; a data URI is allowed)."""
    initials = "".join(w[0] for w in re.findall(r"\w+", course_title)[:3]).upper() or "R"
    initials = initials.replace("&", "").replace("<", "")[:3]
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256">'
        '<circle cx="128" cy="128" r="120" fill="#0072B2"/>'
        '<circle cx="128" cy="128" r="104" fill="none" stroke="#fff" stroke-width="6"/>'
        '<text x="128" y="150" font-family="DejaVu Sans,Arial,sans-serif" font-size="64" '
        f'font-weight="bold" fill="#fff" text-anchor="middle">{initials}</text></svg>'
    )
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _slug(name: str, index: int) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:48]
    return f"{index}-{slug}" if slug else str(index)
