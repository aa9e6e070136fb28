"""Deleting a pipeline through Discord: owners and admins only, active runs only with cancel_runs."""

from __future__ import annotations

from engine import messages
from tests.adapters.discord.helpers import ALICE, BOB, OLIVE, Bot, command
from tests.fakes.discord_fake import FakeDiscord


async def test_owners_delete_with_cancel_runs(fake: FakeDiscord, bot: Bot) -> None:
    owned = f"{{id: owned, owners: ['discord:{ALICE.id}'], checkpoints: [{{id: brief}}]}}"
    imported = await command(fake, OLIVE, "import", yaml=owned)  # OLIVE has the admin role
    assert imported.content == "Pipeline **owned** imported as version 1."
    await command(fake, BOB, "run", pipeline="owned")

    refused = await command(fake, BOB, "delete", pipeline="owned")
    assert refused.ephemeral and refused.content == messages.NOT_DELETER
    active = await command(fake, ALICE, "delete", pipeline="owned")
    assert active.ephemeral and active.content.startswith("owned has active runs (owned#v1)")
    deleted = await command(fake, ALICE, "delete", pipeline="owned", cancel_runs=True)
    assert not deleted.ephemeral
    assert deleted.content.startswith("Deleted pipeline owned and cancelled owned#v1;")
    assert "owned" not in {p.slug for p in bot.engine.pipelines()}
    assert bot.engine.run("owned#v1").info.status == "cancelled"
    fake.assert_no_errors()
