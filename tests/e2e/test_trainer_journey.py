"""A trainer's day over real HTTP: an admin grants a trainer, the trainer makes a group, fifty
learners join by deep link, and a photo broadcast reaches each of them exactly once, with the
three who blocked the bot reported as blocked."""

from __future__ import annotations

import re

from bot.config import Settings
from tests.conftest import LESSONS
from tests.e2e.tg import TOKEN, TgUser, running_tutor

LEARNERS = range(3000, 3050)
BLOCKED = (3001, 3002, 3003)


async def test_grant_cohort_fifty_learners_broadcast_report(tmp_path):
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 't.db'}",
        lessons_dir=LESSONS,
        bot_token=TOKEN,
        admins=frozenset({1}),
        send_rate=500,
    )
    async with running_tutor(tmp_path, "aiogram", "polling", sender=True, settings=settings) as (
        server,
        _service,
    ):
        admin, trainer = TgUser(server, 1), TgUser(server, 2)
        await admin.onboard()
        said = await admin.send("/grant 2")
        assert "2 is now a trainer" in said
        await trainer.onboard()
        await trainer.send("/newcohort Palermo dancers")
        await trainer.press("MOOC-ART")
        said = await trainer.press("18:00")
        link = re.search(r"https://t\.me/\S+\?start=(c-\S+)", said)
        assert link, said
        for uid in LEARNERS:
            server.user_sends(uid, f"/start {link.group(1)}")
        await server.wait_for(lambda: all(server.sent(chat_id=u) for u in LEARNERS), 30)
        assert all("joined the group" in server.sent(chat_id=u)[0]["text"] for u in LEARNERS)
        for uid in BLOCKED:
            server.user_blocks(uid)
        # A learner cannot broadcast, and cannot replay the trainer's buttons.
        learner = TgUser(server, 3010)
        await learner.press("English")
        await learner.press("Rome")
        await learner.press("09:00")
        assert "for trainers" in await learner.send("/broadcast")
        await trainer.send("/broadcast")
        said = await trainer.press("Palermo dancers")
        assert "send the announcement" in said
        before = len(trainer.messages())
        server.put_update(
            {
                "message": {
                    "message_id": 555,
                    "date": 1767225600,
                    "chat": {"id": 2, "type": "private", "first_name": "T"},
                    "from": {"id": 2, "is_bot": False, "first_name": "T"},
                    "photo": [
                        {"file_id": "SMALL", "file_unique_id": "s", "width": 90, "height": 90},
                        {
                            "file_id": "BIG-PHOTO",
                            "file_unique_id": "b",
                            "width": 900,
                            "height": 900,
                        },
                    ],
                    "caption": "Rehearsal moved to Friday at 18:00.",
                }
            }
        )
        said = trainer.join(await trainer.settle(before))
        assert "Preview" in said and "Send it to 50 learners?" in said
        _message_id, send_data = trainer.button("Send now")
        said = await learner.press_data(send_data)  # replayed in their own chat
        assert "for trainers" in said
        await trainer.press("Send now")
        await server.wait_for(
            lambda: any("finished" in (m.get("text") or "") for m in server.sent(chat_id=2)), 60
        )
        report = next(
            m["text"]
            for m in reversed(server.sent(chat_id=2))
            if "finished" in (m.get("text") or "")
        )
    photos = {u: [m for m in server.sent(chat_id=u, method="sendPhoto")] for u in LEARNERS}
    for uid in LEARNERS:
        expected = 0 if uid in BLOCKED else 1
        assert len(photos[uid]) == expected, (uid, photos[uid])
    delivered = sum(len(p) for p in photos.values())
    assert delivered == 47
    assert all(
        p[0]["caption"] == "Rehearsal moved to Friday at 18:00." for p in photos.values() if p
    )
    assert "Delivered: 47" in report and "blocked: 3" in report and "failed: 0" in report
    assert "(of 50)" in report
