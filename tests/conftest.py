"""Shared fixtures: a real engine on a real SQLite file in a temporary folder."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.actors import Actor, Conversation
from engine.api import Engine, EngineConfig
from engine.clock import ManualClock

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
# PIPEBOT_ADMINS of the test engine: one admin per platform (a Discord one by role).
ADMIN_ROLE = 910000000000000040
ADMINS = ("console:admin", "slack:U0ADMIN", f"discord:role:{ADMIN_ROLE}")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated database, copied per test: migrating is the slow part of opening."""
    base = tmp_path_factory.mktemp("template")
    Engine.open(base).close()
    return base / "pipebot.db"


@pytest.fixture
def engine(tmp_path: Path, clock: ManualClock, migrated_db: Path) -> Iterator[Engine]:
    base = tmp_path / "pipelines"
    base.mkdir()
    shutil.copyfile(migrated_db, base / "pipebot.db")
    eng = Engine.open(base, clock=clock, config=EngineConfig(admins=ADMINS))
    for name in ("blog-post.yaml", "release.yaml"):
        eng.import_pipeline(EXAMPLES / name)
    yield eng
    eng.close()


def person(name: str, platform: str = "console", groups: frozenset[str] = frozenset()) -> Actor:
    return Actor(platform, name, name.capitalize(), groups)


HERE = Conversation("console", "room-1")
