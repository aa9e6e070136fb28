"""Console: typing a button id decides on the card it was printed with."""

from __future__ import annotations

import io

from adapters.console.app import Console
from engine import messages
from engine.api import Engine, Seen
from tests.conftest import person
from tests.engine.test_seen import GATE


def test_a_button_of_an_out_of_date_card_is_refused(engine: Engine) -> None:
    engine.import_pipeline_text(GATE, actor=None)
    out = io.StringIO()
    console = Console(engine, "ana", io.StringIO(), out)
    try:
        console.handle("/pipeline run gate")
        console.flush_outbox()
        [ex] = engine.run("gate#v1").executions
        assert f"[a{ex.execution_id}] Approve" in out.getvalue()
        shown = console.deliverer.shown[("approve_complete", ex.execution_id)]
        assert shown == Seen(0, shown.digest) and len(shown.digest) == 12
        # Someone else asks for a revision; the console has not printed the new card yet.
        engine.request_revision(ex.execution_id, person("bob"), "not yet", shown)
        console.handle(f"a{ex.execution_id}")
        assert out.getvalue().rstrip().endswith(f"✖ {messages.STALE_CARD}")
        console.flush_outbox()  # the card of revision 1
        console.handle(f"a{ex.execution_id}")
        assert out.getvalue().rstrip().endswith("Approved Sign-off.")
    finally:
        console.loop.close()
