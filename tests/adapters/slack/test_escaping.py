"""Words from people, agents and scripts cannot ping or spoof: escaped in text and blocks.

The fake records any unescaped ``<!…>``, ``<@…>``, ``<#…>`` or link in a message's text or
mrkdwn, so `assert_all_ok` fails on one.
"""

from __future__ import annotations

from pathlib import Path

from engine.sandbox import SandboxConfig
from engine.worker import Worker, WorkerConfig
from tests.adapters.slack.conftest import CHANNEL, Harness, all_text

EVIL = "<!channel> <!here> <!everyone> <@U0BEN> <#C0PIPE> <http://evil.example|your bank> & co"
ESCAPED = (
    "&lt;!channel&gt; &lt;!here&gt; &lt;!everyone&gt; &lt;@U0BEN&gt; &lt;#C0PIPE&gt; "
    "&lt;http://evil.example|your bank&gt; &amp; co"
)
NOTES = """
id: notes
name: Notes
checkpoints:
  - id: note
    name: Note
    mode: human_only
    inputs: [{id: note, label: Note, type: text, required: true}]
    human: {approval_to_complete: true, max_revisions: 2}
"""


async def test_form_values_and_feedback_reach_slack_escaped(h: Harness) -> None:
    h.engine.import_pipeline_text(NOTES, actor=None)
    await h.command("run notes")
    await h.click("U0ANA", h.last_with_button("open_form"), "open_form")
    [form] = h.fake.opened_views.values()
    assert (await h.sim.view_submission(h.url, "U0ANA", form, {"note": EVIL})).body == ""
    await h.settle()
    review = h.last_with_button("approve_complete")
    assert ESCAPED in all_text(review) and "<!channel>" not in all_text(review)

    await h.click("U0BEN", review, "request_revision")
    feedback = [*h.fake.opened_views.values()][-1]
    assert (await h.sim.view_submission(h.url, "U0BEN", feedback, {"feedback": EVIL})).body == ""
    await h.settle()
    notice = next(m for m in h.thread() if m.text.startswith("Revision 1 of Note"))
    assert ESCAPED in notice.text  # the top-level text: what notifications are built from
    asked = h.last_with_button("open_form")
    assert ESCAPED in all_text(asked) and "<@U0BEN>" not in all_text(asked)
    await h.click("U0ANA", asked, "open_form")  # the modal shows the feedback (mrkdwn), escaped
    h.fake.assert_all_ok()


SCRIPTED = """
id: scripted
name: Scripted
checkpoints:
  - id: report
    name: Report
    mode: script
    script:
      code: |
        import os, pathlib, sys
        evil = EVIL
        pathlib.Path(os.environ["PIPEBOT_OUTPUTS"], "report.txt").write_text(evil)
        print(evil)
    outputs: [{name: report, format: txt}]
    human: {approval_to_complete: false}
  - id: fails
    name: Fails
    mode: script
    script:
      code: |
        import sys
        sys.exit(EVIL)
    outputs: [{name: never, format: txt}]
""".replace("EVIL", repr(EVIL))


async def test_script_output_reaches_slack_escaped(h: Harness, tmp_path: Path) -> None:
    h.engine.import_pipeline_text(SCRIPTED, actor=None)
    worker = Worker(h.engine, None, WorkerConfig(sandbox=SandboxConfig("none")), name="w")
    await h.command("run scripted")
    while await worker.drain():
        await h.settle()
    texts = [all_text(m) for m in h.fake.messages_in(CHANNEL, h.run_message().ts)]
    assert any(ESCAPED in t for t in texts)  # the artifact preview
    failed = next(m for m in h.thread() if "failed" in m.text)
    assert "&lt;!channel&gt;" in failed.text and "<!channel>" not in failed.text
    h.fake.assert_all_ok()
