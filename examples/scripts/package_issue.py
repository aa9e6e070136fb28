"""Package a newsletter issue: read the approved draft from context/, write a report and HTML.

pipebot runs this in the execution's workspace with inputs.json (the form), a read-only
context/ folder (earlier checkpoints' artifacts) and an outputs/ folder (this step's artifacts).
"""

import html
import json
import os
from pathlib import Path

inputs = json.loads(Path(os.environ["PIPEBOT_INPUTS"]).read_text())
context = Path(os.environ["PIPEBOT_CONTEXT"])
outputs = Path(os.environ["PIPEBOT_OUTPUTS"])

draft = next(context.glob("draft/issue.md"), None)
text = draft.read_text() if draft else ""
words = len(text.split())
print(f"packaging {inputs['slug']}: {words} words")
paragraphs = "\n".join(f"<p>{html.escape(p)}</p>" for p in text.split("\n\n") if p.strip())
slug = html.escape(inputs["slug"])
(outputs / "issue.html").write_text(f"<article id='{slug}'>\n{paragraphs}\n</article>\n")
(outputs / "report.json").write_text(json.dumps({"slug": inputs["slug"], "words": words}, indent=2))
