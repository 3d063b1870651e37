"""The on-disk layout of a bench run, as dataclasses, and its loader.

::

    RUN_DIR/manifest.json                     provenance: versions, commit, hardware, config, times
    RUN_DIR/cells/<cell_id>/result.json       one finished cell (:class:`gemkit.results.CellResult`)
    RUN_DIR/cells/<cell_id>/items/<bench>.jsonl  one line per item: {"id", "correct", "score"?}
    RUN_DIR/cells/<cell_id>/train_log.jsonl   training metrics, one line per logged step

The base model and the SFT model are cells too (method ``base``, ``sft``). A cell directory only
exists once its ``result.json`` is complete (the runner renames it into place), so every cell found
here is finished: either ``ok`` or ``failed`` with its error. The report reads nothing else.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gemkit.errors import DataError
from gemkit.io import atomic_dir, write_jsonl
from gemkit.results import (
    RESULT_FILE,
    BenchmarkOutcome,
    CellResult,
    TrainInfo,
    load_cell,
    load_cells,
    parse_cell,
)

#: the cell record lives in :mod:`gemkit.results` (the runner writes it too); re-exported here for the report
__all__ = ["BenchmarkOutcome", "CellResult", "Manifest", "Run", "TrainInfo", "load_cell", "load_manifest", "load_run",
           "write_cell"]


@dataclass
class Manifest:
    gemkit_version: str | None = None
    git_commit: str | None = None
    packages: dict[str, str | None] = field(default_factory=dict)
    hardware: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    started: str | None = None
    finished: str | None = None
    cells: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Run:
    path: Path
    manifest: Manifest
    cells: list[CellResult]

    def benchmarks(self) -> list[str]:
        """Benchmark names in first-seen order over all cells."""
        names: list[str] = []
        for cell in self.cells:
            names += [n for n in cell.benchmarks if n not in names]
        names += [n for n in self.manifest.config.get("benchmarks") or [] if n not in names]
        return names


def load_manifest(path: str | Path) -> Manifest:
    path = Path(path)
    if not path.is_file():
        return Manifest()
    data = json.loads(path.read_text(encoding="utf-8"))
    known = {k: data[k] for k in Manifest.__dataclass_fields__ if k in data}
    return Manifest(**known)


def load_run(run_dir: str | Path) -> Run:
    """Every finished cell of ``run_dir`` (sorted by cell id) and its manifest."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(run_dir, "no such run directory")
    cells = load_cells(run_dir)
    return Run(run_dir, load_manifest(run_dir / "manifest.json"), cells)


def write_cell(run_dir: str | Path, record: CellResult | dict[str, Any], *,
               items: dict[str, list[dict[str, Any]]] | None = None,
               train_log: list[dict[str, Any]] | None = None) -> Path:
    """Write one cell in this layout, all at once: the directory appears complete or not at all.

    ``record`` is the cell's :class:`CellResult`, or a ``result.json`` object, which is parsed by
    :func:`gemkit.results.parse_cell` first (errors name the file it would become); ``items`` maps a
    benchmark to its per-item rows.
    """
    cell_id = record.cell_id if isinstance(record, CellResult) else str(record.get("cell_id"))
    target = Path(run_dir) / "cells" / cell_id
    if not isinstance(record, CellResult):
        record = parse_cell(record, target / RESULT_FILE)
    with atomic_dir(target) as tmp:
        for name, rows in (items or {}).items():
            write_jsonl(tmp / "items" / f"{name}.jsonl", rows)
        if train_log is not None:
            write_jsonl(tmp / "train_log.jsonl", train_log)
        record.save(tmp)
    return target
