"""``harness search``: differentiable architecture search on NB201, NAS-Bench-1Shot1 and the DARTS space (DARTS, SoTL-DARTS, SoVL-DARTS, DrNAS,
SoTL-DrNAS, GAEA DARTS bilevel and ERM).

    harness search run --config configs/search-toy-cpu.toml --data-root DATA [--algorithm sotl-darts] [--seed 0]
    harness search run --config ... --executor ray [--ray-address HEAD:6379]      # one Ray task per seed
    harness search report RUN_DIR [RUN_DIR ...] --out DIR [--label TEXT]            # tables and figure, beside the thesis
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from harness.errors import HarnessError
from harness.experiments.executors import EXECUTORS, make_executor
from harness.search.config import ALGORITHMS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("search", help="differentiable NAS on NB201, NAS-Bench-1Shot1 and the DARTS space: DARTS (1st/2nd order), SoTL-DARTS, SoVL-DARTS, DrNAS, SoTL-DrNAS, GAEA DARTS (bilevel, ERM)")
    verbs = parser.add_subparsers(dest="search_command", required=True, metavar="STEP")
    p = verbs.add_parser("run", help="search (or resume) every seed; per-epoch derived arch, its benchmark truth and diagnostics")
    p.add_argument("--config", type=Path, required=True, help="TOML config (see configs/search-*.toml)")
    p.add_argument("--out", type=Path, default=None, help="run directory (default runs/<name>-<algorithm>)")
    p.add_argument("--data-root", type=Path, default=None, help="overrides [data] root")
    p.add_argument("--device", default=None, help="overrides [device] device (cpu, cuda, auto)")
    p.add_argument("--algorithm", default=None, choices=ALGORITHMS, help="overrides [search] algorithm")
    p.add_argument("--truth-root", type=Path, default=None,
                   help="overrides [search] truth_root: on the nb1shot1 spaces a converted official NB101 store ('harness data "
                        "convert nb101'), whose test accuracy of every cell is then the truth (default: the embedded table)")
    p.add_argument("--seed", type=int, action="append", default=None, help="search this seed only (repeatable; default: [search] seeds)")
    p.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="where the seeds run: this process, one after the other (default), or a Ray cluster, one task per seed")
    p.add_argument("--ray-address", default=None, help="the Ray cluster to join (default: RAY_ADDRESS, else a local one)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)
    report_parser = verbs.add_parser("report", help="per-seed and per-algorithm tables of run folders, CIFAR-10 beside the thesis "
                                                    "(Tables 4.6, 4.8; Li Table 6.4), and the trajectory figure")
    report_parser.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR",
                               help="folders of 'harness search run', one per algorithm, all of one space")
    report_parser.add_argument("--out", type=Path, required=True, help="folder for table.md, table.csv, trajectories.csv/.png/.pdf")
    report_parser.add_argument("--label", default="", help="a title suffix naming the protocol (e.g. 'CPU mini protocol')")
    report_parser.set_defaults(func=report)


def run(args: argparse.Namespace) -> int:
    from harness.search.config import load_search_config

    if importlib.util.find_spec("torch") is None:
        raise HarnessError('\'harness search run\' trains networks and needs torch: pip install -e ".[train]"')
    from harness.search.run import run_search

    cfg = load_search_config(args.config)
    overrides: dict[str, dict[str, object]] = {}
    if args.data_root is not None:
        overrides["data"] = {"root": str(args.data_root)}
    if args.device is not None:
        overrides["device"] = {"device": args.device}
    if args.algorithm is not None:
        overrides.setdefault("search", {})["algorithm"] = args.algorithm
    if args.truth_root is not None:
        overrides.setdefault("search", {})["truth_root"] = str(args.truth_root.expanduser().resolve())
    if overrides:
        cfg = cfg.with_overrides(**overrides)
    out = args.out if args.out is not None else Path("runs") / f"{cfg.name}-{cfg.search.algorithm}"
    with make_executor(args.executor, args.ray_address) as executor:
        paths = run_search(cfg, out, args.seed, executor, progress=not args.no_progress)
    for path in paths:
        print("wrote", path)
    return 0


def report(args: argparse.Namespace) -> int:
    from harness.search.report import write_report

    files = write_report(args.runs, args.out, args.label)
    print(files["table"].read_text())
    print("wrote", ", ".join(str(path) for path in files.values()))
    return 0
