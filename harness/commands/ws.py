"""``harness ws``: the weight-sharing experiment on the config's search space (supernet, finetuning, ranking report).

    harness ws run      --config configs/ws-cifar10.toml --out runs/ws   # everything, in one process
    harness ws run      --config ... --executor ray --shards 4           # the same tasks on a Ray cluster
    harness ws train    --config ... --out DIR --seed 0                  # one supernet (resumes)
    harness ws finetune --config ... --out DIR --seed 0 --shard 1/4      # a quarter of the archs
    harness ws report   --config ... --out DIR                           # table.md, curves.png
    harness ws tables   RUN_DIR ... --out DIR                            # Tables 4.1, 4.2, 4.4, 4.5, Figs. 4.6b, 4.8
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from harness.errors import HarnessError
from harness.experiments.executors import EXECUTORS, make_executor
from harness.supernet.sampling import ALGORITHMS

# what --truth-root is on each space (the spaces' arch_set(cfg, truth_root))
TRUTH_ROOT_HELP = (
    "ground truth from official data instead of the embedded one, by the config's space: nb201: a converted NB201 "
    "store (harness data convert nb201); nb1shot1-1/2/3: a converted NB101 store (harness data convert nb101; "
    "test accuracy over the whole space); darts: a folder of the official nasbench301 models (xgb_v1.0/, "
    "lgb_runtime_v1.0/; needs the nasbench301 package)"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("ws", help="weight sharing on NB201, NAS-Bench-1Shot1 or DARTS: train supernets (SPOS, FairNAS, MultiPath, Reptile, Metaprox, ...), finetune archs, rank estimators")
    verbs = parser.add_subparsers(dest="ws_command", required=True, metavar="STEP")
    for verb, text in (
        ("run", "prepare, train every supernet seed, finetune all archs, report"),
        ("prepare", "sample the arch set and write config.json, archs.csv"),
        ("train", "train (or resume) one supernet"),
        ("finetune", "finetune (a shard of) the arch set from one supernet; skips finished archs"),
        ("report", "correlations, Table 4.1 (or 4.2) and Fig. 4.6a from finished logs"),
    ):
        p = verbs.add_parser(verb, help=text)
        p.add_argument("--config", type=Path, required=True, help="TOML config (see configs/ws-*.toml)")
        p.add_argument("--out", type=Path, default=None, help="run directory (default runs/<name>)")
        p.add_argument("--data-root", type=Path, default=None, help="overrides [data] root")
        p.add_argument("--download", action="store_true", help="CIFAR: fetch the official archive into the data root if missing")
        p.add_argument("--device", default=None, help="overrides [device] device (cpu, cuda, auto)")
        p.add_argument("--algorithm", default=None, choices=ALGORITHMS, help="overrides [supernet] algorithm")
        p.add_argument("--threads", type=int, default=None, help="overrides [device] threads (CPU operator threads; a recorded setting)")
        p.add_argument("--finetune-lr", type=float, default=None, help="overrides [finetune] lr (default: the algorithm's, 0.01 SPOS, 0.001 the variants)")
        p.add_argument("--finetune-batch", type=int, default=None, help="overrides [finetune] batch_size (thesis: 64)")
        p.add_argument("--no-progress", action="store_true")
        if verb in ("run", "prepare"):
            p.add_argument("--truth-root", type=Path, default=None, help=TRUTH_ROOT_HELP)
        if verb == "run":
            p.add_argument("--executor", choices=EXECUTORS, default="local",
                           help="where the tasks run: this process (default) or a Ray cluster ([executor] settings)")
            p.add_argument("--ray-address", default=None,
                           help="the Ray cluster to join (default: RAY_ADDRESS, else a local cluster is started)")
            p.add_argument("--shards", type=int, default=None, help="overrides [executor] shards: finetuning tasks per supernet seed")
        if verb in ("train", "finetune"):
            p.add_argument("--seed", type=int, required=True, help="supernet seed")
        if verb == "finetune":
            p.add_argument("--shard", default="0/1", help="i/n: finetune archs i, i+n, i+2n, ... (run n processes)")
            p.add_argument("--unfinished-supernet", action="store_true", help="accept a supernet cut short (stated in the run)")
        if verb == "report":
            p.add_argument("--seeds", default=None, help="comma-separated supernet seeds (default: the config's)")
            p.add_argument("--note", default="", help="a line added under the table")
            p.add_argument("--partial", action="store_true", help="report on the archs finished so far")
        if verb in ("run", "report"):
            p.add_argument("--reference", type=Path, default=None,
                           help="overrides [report] reference: a CSV of published numbers (estimator, spearman, top_k) shown beside ours")
        p.set_defaults(func=run)
    tables = verbs.add_parser("tables", help="Tables 4.1, 4.2, 4.4, 4.5 and Figs. 4.6b, 4.8 from reported run folders, beside the thesis")
    tables.add_argument("runs", type=Path, nargs="+", help="run folders reported by 'harness ws report' (one per algorithm and dataset)")
    tables.add_argument("--out", type=Path, required=True, help="folder for tables.md and the figures")
    tables.add_argument("--label", default="", help="a title suffix (e.g. 'CPU mini protocol')")
    tables.set_defaults(func=run_tables)


def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError as err:
        raise HarnessError(f"--shard must read i/n (e.g. 0/4), got {text!r}") from err
    return i, n


def _seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        seeds = [int(s) for s in text.split(",")]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0:
        raise HarnessError(f"--seeds must be comma-separated integers >= 0 (e.g. 0,1,2), got {text!r}")
    return seeds


def run_tables(args: argparse.Namespace) -> int:
    from harness.experiments.ws_tables import write_tables

    files = write_tables(args.runs, args.out, args.label)
    print(files["tables"].read_text())
    print("wrote", ", ".join(str(p) for p in files.values()))
    return 0


def run(args: argparse.Namespace) -> int:
    from harness.experiments import weight_sharing as ws
    from harness.supernet.config import load_config

    if args.ws_command in ("run", "train", "finetune") and importlib.util.find_spec("torch") is None:
        raise HarnessError(f"'harness ws {args.ws_command}' trains networks and needs torch, which is not installed: "
                           'pip install -e ".[train]" (prepare and report work without it)')
    cfg = load_config(args.config)
    overrides: dict[str, dict[str, object]] = {}
    if args.data_root is not None:
        overrides["data"] = {"root": str(args.data_root)}
    if args.download:
        overrides.setdefault("data", {})["download"] = True
    if args.device is not None:
        overrides["device"] = {"device": args.device}
    if args.threads is not None:
        overrides.setdefault("device", {})["threads"] = args.threads
    if args.finetune_lr is not None:
        overrides["finetune"] = {"lr": args.finetune_lr}
    if args.finetune_batch is not None:
        overrides.setdefault("finetune", {})["batch_size"] = args.finetune_batch
    if args.algorithm is not None:
        overrides["supernet"] = {"algorithm": args.algorithm}
    if getattr(args, "reference", None) is not None:
        overrides["report"] = {"reference": str(args.reference)}
    if getattr(args, "shards", None) is not None:
        overrides["executor"] = {"shards": args.shards}
    if overrides:
        cfg = cfg.with_overrides(**overrides)
    out = ws.run_dir(cfg, args.out)
    progress = not args.no_progress
    if args.ws_command == "run":
        with make_executor(args.executor, args.ray_address) as executor:
            files = ws.run_all(cfg, out, args.truth_root, progress, executor)
        print((out / "table.md").read_text())
        print("wrote", ", ".join(str(p) for p in files.values()))
    elif args.ws_command == "prepare":
        archs = ws.prepare(cfg, out, args.truth_root)
        print(f"{len(archs.indices)} archs; truth: {archs.truth_source}; wrote {out}")
    elif args.ws_command == "train":
        print(ws.train(cfg, args.seed, out, progress))
    elif args.ws_command == "finetune":
        archs = ws._read_arch_set(out)
        paths = ws.finetune(cfg, args.seed, archs, out, _shard(args.shard), progress, args.unfinished_supernet)
        print(f"{len(paths)} arch logs under {ws.log_dir(out, args.seed)}")
    else:
        ws.report(cfg, out, _seeds(args.seeds), args.note, partial=args.partial)
        print((out / "table.md").read_text())
    return 0
