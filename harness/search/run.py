"""A search run folder: the config (``config.json``) and, per seed, the checkpoint and the per-epoch
log of :func:`harness.search.loop.search` (``search-seed{seed}.pt``, ``search-seed{seed}.json``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from harness.atomic import write_atomic
from harness.errors import HarnessError
from harness.search.config import SearchConfig, changed_search_settings


def run_search(cfg: SearchConfig, out: Path, seeds: Sequence[int] | None = None) -> list[Path]:
    """Search (or resume) every seed of ``seeds`` (default ``search.seeds``) into ``out``, one after
    the other; returns their log paths. A folder holding another config's search is refused."""
    from harness.registry import load_benchmark
    from harness.search.loop import log_path, search
    from harness.supernet.train import cpu_threads, load_images, resolve_device

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    recorded = out / "config.json"
    if recorded.is_file():
        changes = changed_search_settings(json.loads(recorded.read_text()), cfg)
        if changes:
            raise HarnessError(f"{out} holds a search under other settings ({'; '.join(changes)}); use a new folder")
    write_atomic(recorded, lambda tmp: tmp.write_text(json.dumps(cfg.to_dict(), indent=2, default=list) + "\n"))
    ws = cfg.ws_config()
    device = resolve_device(ws)
    train, valid = load_images(ws, device)
    bench = load_benchmark("nb201")
    with cpu_threads(ws):
        for seed in cfg.search.seeds if seeds is None else seeds:
            search(cfg, seed, train, None if cfg.search.algorithm == "sotl-darts" else valid, out, bench=bench)
    return [log_path(out, seed) for seed in (cfg.search.seeds if seeds is None else seeds)]
