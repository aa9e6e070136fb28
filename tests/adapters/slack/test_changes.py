"""Show changes through real slack-bolt and the loopback fake: a script checkpoint revised once,
a long diff attached as a .diff file, a run that extends v1 compared with v1."""

from __future__ import annotations

from engine import messages
from engine.sandbox import SandboxConfig
from engine.worker import Worker, WorkerConfig
from tests.adapters.slack.conftest import Harness, all_text, button_id

# Short words: 3 lines, a short diff; 30 characters or more: 150 lines, a long one.
SCRIPTED = """
id: scripted
name: Scripted
approvers: [slack:U0ANA, slack:U0BEN]
checkpoints:
  - id: report
    name: Report
    mode: script
    inputs: [{id: words, label: Words, type: text, required: true}]
    script:
      code: |
        import json, os, pathlib
        words = json.load(open(os.environ["PIPEBOT_INPUTS"]))["words"]
        lines = 3 if len(words) < 30 else 150
        text = "# Report\\n" + "".join(f"{i}: {words}\\n" for i in range(lines))
        pathlib.Path(os.environ["PIPEBOT_OUTPUTS"], "report.md").write_text(text)
    outputs: [{name: report, format: md}]
    human: {approval_to_complete: true, max_revisions: 2}
"""


async def fill(h: Harness, worker: Worker, words: str) -> None:
    await h.click("U0ANA", h.last_with_button("open_form"), "open_form")
    form = [*h.fake.opened_views.values()][-1]
    assert (await h.sim.view_submission(h.url, "U0ANA", form, {"words": words})).body == ""
    await h.settle()
    while await worker.drain():
        await h.settle()


async def revise(h: Harness, worker: Worker, words: str) -> None:
    await h.click("U0BEN", h.last_with_button("approve_complete"), "request_revision")
    feedback = [*h.fake.opened_views.values()][-1]
    assert (await h.sim.view_submission(h.url, "U0BEN", feedback, {"feedback": "again"})).body == ""
    await h.settle()
    await fill(h, worker, words)


def changes_messages(h: Harness) -> list[str]:
    return [all_text(m) for m in h.thread() if m.text.startswith("Changes in")]


def worker_for(h: Harness) -> Worker:
    h.engine.import_pipeline_text(SCRIPTED, actor=None)
    return Worker(h.engine, None, WorkerConfig(sandbox=SandboxConfig("none")), name="w")


async def test_show_changes_posts_the_diff_of_a_revision_once(h: Harness) -> None:
    worker = worker_for(h)
    await h.command("run scripted")
    await fill(h, worker, "alpha")
    assert button_id(h.last_with_button("approve_complete"), "show_changes") is None  # a first attempt
    await revise(h, worker, "beta <!channel> @everyone")
    review = h.last_with_button("show_changes")
    await h.click("U0CAROL", review, "show_changes")  # anyone in the thread may ask
    [posted] = changes_messages(h)
    assert "revision 1 → 2" in posted and "report.md: changed (+3 −3 lines)" in posted
    assert "--- report.md (revision 1)" in posted and "+++ report.md (revision 2)" in posted
    assert "-0: alpha" in posted and "+0: beta &lt;!channel&gt; @everyone" in posted
    assert "<!channel>" not in posted
    assert not [f for f in h.fake.uploaded_files if f.name.endswith(".diff")]
    await h.click("U0BEN", review, "show_changes")
    assert len(changes_messages(h)) == 1
    assert messages.CHANGES_ABOVE in h.ephemerals_for("U0BEN")
    h.fake.assert_all_ok()


async def test_a_long_diff_is_uploaded_as_a_file(h: Harness) -> None:
    worker = worker_for(h)
    await h.command("run scripted")
    await fill(h, worker, "the first words, long enough for many lines")
    await revise(h, worker, "the second words, long enough for many lines <!here>")
    await h.click("U0ANA", h.last_with_button("show_changes"), "show_changes")
    [posted] = changes_messages(h)
    assert "report.md: changed (+150 −150 lines)" in posted and "attached as report-r1.diff" in posted
    [diff] = [f for f in h.fake.uploaded_files if f.name == "report-r1.diff"]
    assert diff.content is not None and diff.thread_ts == h.run_message().ts
    text = diff.content.decode()
    assert text.startswith("--- report.md (revision 1)\n+++ report.md (revision 2)\n")
    assert "+149: the second words, long enough for many lines <!here>" in text
    h.fake.assert_all_ok()


async def test_a_run_extending_v1_is_compared_with_v1(h: Harness) -> None:
    worker = worker_for(h)
    await h.command("run scripted")
    await fill(h, worker, "version one")
    await h.click("U0BEN", h.last_with_button("approve_complete"), "approve_complete")
    await h.command("run scripted extend:1")
    await fill(h, worker, "version two")
    await h.click("U0BEN", h.last_with_button("show_changes"), "show_changes")
    [posted] = changes_messages(h)
    assert "against v1" in posted and "--- report.md (v1)" in posted and "+++ report.md (v2)" in posted
    assert "-0: version one" in posted and "+0: version two" in posted
    h.fake.assert_all_ok()
