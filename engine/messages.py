"""User-facing wording, in one place, so every platform says the same thing."""

from __future__ import annotations

from datetime import datetime

NOT_APPROVER = "You may not approve this: you are not one of this pipeline's approvers."
SELF_APPROVAL = "You may not approve this: you started this run, and this pipeline asks for someone else."
NOT_RUN_CONTROLLER = (
    "You may not do this: only the person who started the run, an approver, an owner or an admin can."
)
NOT_IMPORTER = "You may not import pipelines: ask an admin (PIPEBOT_ADMINS)"
SCRIPTS_ADMINS_ONLY = (
    "You may not import pipelines with script checkpoints: only an admin (PIPEBOT_ADMINS) may, "
    "or the operator with `pipebot pipelines import`"
)
NOT_DELETER = "You may not delete this pipeline: only its owners or an admin (PIPEBOT_ADMINS) may."
NOT_RUNNER = "You may not start {pipeline}: you are not one of its runners."
NOT_IN_CHANNEL = "{pipeline} may not run in this conversation: see its channels."
NO_PIPELINE = "There is no pipeline '{slug}'. Try /pipeline list."
ACTIVE_RUNS = (
    "{slug} has active runs ({runs}): cancel them first, or delete with cancel-runs "
    "(/pipeline delete {slug} cancel-runs, or pipebot pipelines delete {slug} --cancel-runs)."
)
RUN_PAUSED = "{run} is paused: resume it first (/pipeline resume {run})."
RUN_OVER = "{run} is {status}: nothing more can be done in it."
NO_REVISIONS_LEFT = "No revisions left for {checkpoint} (at most {max} allowed)."
NOT_WAITING = "{checkpoint} is not waiting for this (it is {status})."
STALE_CARD = "This card is out of date: see the latest one in the thread."
# Show changes (engine.changes)
CHANGES_HEAD = "Changes in *{checkpoint}* ({what}), shown for {who}"
CHANGES_REVISIONS = "revision {a} → {b}"
CHANGES_PREVIOUS = "against the previous revision"
CHANGES_VERSION = "against v{version}"
CHANGES_NONE = "none"
CHANGES_POSTED = "The changes are posted in the thread."
CHANGES_ABOVE = "The changes are above, in the thread."
CHANGES_NOTHING = "{checkpoint} has nothing to compare with: no earlier revision and no extended version."
CHANGES_NOT_TEXT = "not compared: not a text file"
CHANGES_GONE = "not compared: the earlier content is no longer available"
CHANGES_TOO_BIG = "not compared: too large"
CHANGES_NO_DIFF = "No text changed."
CHANGES_ATTACHED = "The diff is long: attached as {file}."
CHANGE_STATUS = {
    "changed": "{name}: changed (+{added} −{removed} lines)",
    "added": "{name}: new (+{added} lines)",
    "unchanged": "{name}: unchanged",
    "removed": "{name}: not made this time",
    "skipped": "{name}: {note}",
}


def change_line(name: str, status: str, added: int, removed: int, note: str) -> str:
    return CHANGE_STATUS[status].format(name=name, added=added, removed=removed, note=note)


SANDBOX_MISSING = (
    "Scripts run in a bubblewrap sandbox, and it cannot run here ({reason}): install the bubblewrap "
    "package (apt-get install bubblewrap), or set PIPEBOT_SCRIPT_SANDBOX=none to run scripts unsandboxed."
)


def at(when: datetime) -> str:
    return when.strftime("%H:%M")


def decided(verb: str, who: str, when: datetime) -> str:
    return f"{verb} by {who} at {at(when)}"


def already(verb: str, who: str, when: datetime) -> str:
    return f"Already {verb.lower()} by {who} at {at(when)}."


def progress_bar(done: int, total: int, width: int = 10) -> str:
    filled = round(width * done / total) if total else 0
    return "▰" * filled + "▱" * (width - filled) + f" {done}/{total}"


# Chat surfaces shared by the adapters (buttons, modals, file inputs, artifacts).
FEEDBACK_PROMPT = "What should change?"
FEEDBACK_TO_ADDRESS = "Feedback to address: {feedback}"
ACTION_UNAVAILABLE = "{action} is not available in this version of pipebot."
IMPORT_FILE_TOO_LARGE = "{name} is {size:,} bytes: /pipeline import takes at most {limit:,} bytes."
ARTIFACT_GONE = "Artifact {id} has no file any more ({path}): was its archive purged?"
NUMBER_TOO_LARGE = "There is nothing with that number: it is too large."
UNKNOWN_BUTTON = "This button does not belong to pipebot, or it is too old to use."
RESTARTED_BEFORE_FORM = "pipebot restarted before your form could open: click {button} again."
FORM_NOT_SAVED = "pipebot could not answer your form in time and did not save it: {problems}. Open it again."
TOO_LATE_TO_ANSWER = (
    "pipebot restarted and could not answer your last command or click in time: check the run"
    " (/pipeline status) and try again if it did not happen."
)
FILE_UNAVAILABLE = "could not be fetched; attach it again"
UNREADABLE_FORM = "This form could not be read: open it again from the latest card in the run's thread."
ARTIFACT_TOO_BIG = (
    "{file} is {size}, too big to attach here: fetch it with `pipebot artifacts get {artifact_id}`."
)
ARTIFACT_MISSING = "{file} is no longer on disk (archived or removed)."


def file_too_big(size: int, limit: int) -> str:
    return f"file is {size} bytes; the limit is {limit}"


def size_text(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            break
    return f"{value:.1f} {unit}"


# Deadlines, reminders, escalation, reject, reassign (engine.timers, engine.human).
REASON_NEEDED = "Say why: the reason is empty."
REASON_PROMPT = "Why is it rejected?"
COMMENT_PROMPT = "Comment (optional)"
REASSIGN_PROMPT = "Hand this decision to"
BY_DEADLINE = {
    "approve": "Approved automatically",
    "reject": "Rejected automatically",
    "cancel": "Cancelled automatically",
    "fail": "Failed automatically",
}
_UNITS = {"s": ("s", "s"), "m": ("min", "min"), "h": ("h", "h"), "d": ("day", "days")}


def duration_text(duration: str) -> str:
    """``48h`` as "48 h", ``2d`` as "2 days"."""
    number, unit = int(duration[:-1]), duration[-1]
    one, many = _UNITS[unit]
    return f"{number} {one if number == 1 else many}"


def no_decision(outcome: str, duration: str) -> str:
    return f"{BY_DEADLINE[outcome]}: no decision within {duration_text(duration)}"


def escalated(who: str, duration: str) -> str:
    return f"Escalated to {who}: no decision within {duration_text(duration)}"


def rejected(who: str, when: datetime, reason: str) -> str:
    return f"Rejected by {who} at {at(when)}: {reason}"


def with_comment(decided: str, comment: str | None) -> str:
    return f"{decided}: “{comment}”" if comment else decided


def reminder(number: int, total: int, checkpoint: str, run: str, what: str, due: str | None) -> str:
    return f"Reminder ({number} of {total}): *{checkpoint}* in {run} waits for {what}" + (
        f" ({due})." if due else "."
    )


def due_in(seconds: float) -> str:
    """ "due in 3 h" / "overdue by 5 min", rounded to the largest unit."""
    late, left = seconds < 0, abs(seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if left >= size:
            text = duration_text(f"{round(left / size)}{unit}")
            break
    else:
        text = duration_text(f"{max(1, round(left))}s")
    return f"overdue by {text}" if late else f"due in {text}"


# Edit and approve (engine.edits, engine.human).
EDITED_VERB = "Edited and approved"
NOTHING_TO_EDIT = (
    "There is nothing to edit here: only agent and script outputs in md, txt, json, yaml or csv"
    " can be edited."
)
NOT_EDITABLE = "{names}: not an output of this checkpoint that can be edited."
EDIT_UNCHANGED = "No changes to keep."
REASSIGN_ONE_PERSON = "Choose one person to hand this to."
# An edit that does not name the version it was made on (a forged or pre-edit dialog): refused.
EDIT_WITHOUT_VERSION = "This edit does not say which version it changes: open Edit and approve again."
EDIT_TOO_LONG = (
    "is {size:,} characters, at most {limit:,} can be edited in chat (PIPEBOT_MAX_MULTILINE_CHARS)"
)


def edit_too_long(file: str, chars: int, limit: int, artifact_id: int) -> str:
    return (
        f"{file} is {chars:,} characters, too long to edit here (at most {limit:,}): download it from"
        f" the run's thread or with `pipebot artifacts get {artifact_id}`, or request a revision."
    )


def edit_refused(file: str, problems: list[str]) -> str:
    return f"The edited {file} {'; it '.join(problems)}. Nothing was changed."


def edited(who: str, files: list[str], checkpoint: str) -> str:
    return f"{who} edited {', '.join(files)} of *{checkpoint}*; the original is kept as an earlier revision."
