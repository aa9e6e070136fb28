"""TEMPORARY stand-in for engine.artifacts.add_revision (branch i9diff); removed when it lands."""

from __future__ import annotations

from engine.models import ArtifactRow
from engine.tx import Tx
from engine.workspace import Workspace, sha256_of


def add_revision(tx: Tx, ws: Workspace, row: ArtifactRow, content: bytes, author: str, kind: str) -> None:
    path = ws.absolute(row.path)
    path.write_bytes(content)
    row.size, row.sha256 = len(content), sha256_of(path)
