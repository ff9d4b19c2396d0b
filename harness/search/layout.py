"""Where a search run folder keeps each seed's files (torch-free): the checkpoint ``search-seed{seed}.pt``
and the per-epoch log ``search-seed{seed}.json`` (:mod:`harness.search.loop` writes both), beside the
folder's ``config.json`` (:mod:`harness.search.run`)."""

from __future__ import annotations

from pathlib import Path


def checkpoint_path(out_dir: Path, seed: int) -> Path:
    return Path(out_dir) / f"search-seed{seed}.pt"


def log_path(out_dir: Path, seed: int) -> Path:
    return Path(out_dir) / f"search-seed{seed}.json"
