"""Finetuning speed of the weight-sharing protocol: seconds per arch per 100 minibatches.

Prints, side by side in one run, the plain PyTorch way (fp32, eager, one arch at a time: the way
the thesis's 4.5 s per arch per 100 minibatches on a P100 was obtained) and the harness's fast paths
(bf16 autocast, channels-last, cudnn.benchmark, CUDA graphs, several archs in flight, and arch
groups: ``--groups`` archs side by side in one network, one or two groups in flight), plus the
SPOS supernet step time, a whole-validation pass, a check that the fast path ranks archs like
the plain one (Spearman between their per-arch SoTL, final TLMini and mean ValAccMini), and on a
GPU the largest difference of any logged value between CUDA-graph replays and the eager step under
the same settings (fp32, 4 in flight).

    python benchmarks/ws_finetune_speed.py --data-root /tmp/data            # GPU, full scale
    python benchmarks/ws_finetune_speed.py --data-root /tmp/cifar --toy     # CPU, toy scale (groups of 4 too)

Each figure is printed (and the ``--json`` file rewritten) as soon as it is measured, so a run
stopped by a time limit keeps the figures it got to.

Finetuning timing covers the training rows (forward, backward, gradient statistics, SGD step, the
validation minibatch) plus one whole-validation pass at step 0 over ``--valid`` images (default 640,
so that it is small); a whole-validation pass over all 25k images is timed separately.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from harness.errors import HarnessError
from harness.spaces.nb201 import OPS
from harness.supernet.config import WSConfig
from harness.supernet.finetune import evaluate, finetune_archs
from harness.supernet.model import materialise_group
from harness.supernet.train import (
    init_supernet,
    load_images,
    resolve_device,
    train_supernet,
)


def _config(args: argparse.Namespace, **device: object) -> WSConfig:
    network = {"channels": 4, "cells_per_stage": 1} if args.toy else {}
    return WSConfig().with_overrides(
        data={"root": str(args.data_root), "limit_train": args.train, "limit_valid": args.valid},
        network=network,
        supernet={"epochs": args.supernet_epochs},
        finetune={"steps": args.steps, "eval_every": 10**6, "n_archs": args.archs},
        device={"device": args.device, **device},
        report={"sum_step": 1},
    )


def _archs(n: int, seed: int) -> list[tuple[int, tuple[str, ...]]]:
    rng = np.random.default_rng(seed)
    return [(i, tuple(OPS[j] for j in rng.integers(0, 5, 6))) for i in range(n)]


def _timed_finetune(cfg: WSConfig, supernet: torch.nn.Module, archs, out: Path) -> tuple[float, list]:
    device = resolve_device(cfg)
    train, valid = load_images(cfg, device)
    warm = archs[: max(2, cfg.device.archs_per_group)]  # cudnn autotune and allocator, at the group's size
    finetune_archs(supernet, warm, cfg, train, valid, out / "warm", progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    paths = finetune_archs(supernet, archs, cfg, train, valid, out / "timed", progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    import pandas as pd

    logs = [pd.read_parquet(p) for p in paths]
    return seconds / len(archs) * 100 / cfg.finetune.steps, logs


class Figures:
    """Measured figures, each printed and saved to ``json_path`` the moment it is recorded."""

    def __init__(self, json_path: Path | None) -> None:
        self.values: dict[str, object] = {}
        self.json_path = json_path

    def record(self, key: str, value: object) -> None:
        self.values[key] = value
        print(f"{key:<46}  {value}", flush=True)
        if self.json_path is not None:
            self.json_path.write_text(json.dumps(self.values, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--toy", action="store_true", help="C=4, N=1 (CPU scale)")
    parser.add_argument("--archs", type=int, default=16)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--train", type=int, default=None, help="training images kept (default all 25k)")
    parser.add_argument("--valid", type=int, default=640, help="validation images kept while timing finetuning")
    parser.add_argument("--supernet-epochs", type=int, default=1, help="SPOS epochs trained before finetuning")
    parser.add_argument("--in-flight", default="1,4,8")
    parser.add_argument("--groups", default="4,8,16", help="arch group sizes timed (GPU), each with 1 and 2 groups in flight")
    parser.add_argument("--out", type=Path, default=Path("/tmp/ws-speed"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    import shutil

    shutil.rmtree(args.out, ignore_errors=True)
    figures = Figures(args.json)
    print(f"{'thesis (P100, per arch per 100 minibatches)':<46}  4.5 s", flush=True)
    figures.record("device", torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else "cpu")
    figures.record("torch", torch.__version__)
    figures.record("toy", args.toy)

    # SPOS supernet: time per step (fast settings vs plain fp32), then a trained supernet for finetuning.
    base = _config(args)
    device = resolve_device(base)
    _train, _valid = load_images(base, device)
    for label, dev in (("spos_plain_fp32", {"amp": False, "channels_last": False}), ("spos_amp_cl", {})):
        cfg = _config(args, **dev).with_overrides(supernet={"epochs": args.supernet_epochs})
        tr, _ = load_images(cfg, device)
        started = time.perf_counter()
        path = train_supernet(cfg, 0, tr, args.out / label, progress=False)
        if device.type == "cuda":
            torch.cuda.synchronize()
        steps = args.supernet_epochs * (len(tr) // cfg.supernet.batch_size)
        figures.record(f"{label}_ms_per_step", 1000 * (time.perf_counter() - started) / steps)
    state = torch.load(path, map_location=device, weights_only=True)
    supernet = init_supernet(base, 0).to(device)
    supernet.load_state_dict(state["model"])

    full_cfg = _config(args).with_overrides(data={"limit_valid": None})
    _, full_valid = load_images(full_cfg, device)
    arch_net = materialise_group(supernet, [_archs(1, 1)[0][1]])  # a group of one arch
    for label, dev in (("plain_fp32", {"amp": False, "channels_last": False}), ("amp_cl", {})):
        cfg = _config(args, **dev).with_overrides(data={"limit_valid": None})
        _, full_valid = load_images(cfg, device)
        net = arch_net.to(memory_format=torch.channels_last) if cfg.device.channels_last and device.type == "cuda" else arch_net
        float(evaluate(net, full_valid, cfg)[0])  # warm-up
        started = time.perf_counter()
        float(evaluate(net, full_valid, cfg)[0])
        figures.record(f"full_valid_pass_{label}_s", time.perf_counter() - started)
    figures.record("full_valid_images", len(full_valid))

    archs = _archs(args.archs, 0)
    plain = _config(args, amp=False, channels_last=False, cuda_graphs=False, archs_in_flight=1, cudnn_benchmark=False)
    seconds, plain_logs = _timed_finetune(plain, supernet, archs, args.out / "plain")
    figures.record("finetune_plain_s_per_arch_per_100", seconds)
    # The fast paths first, so that a run stopped by a time limit still has the main figures.
    variants = {}
    for g in (int(v) for v in args.groups.split(",")):
        for streams in (s for s in (1, 2) if g * s <= args.archs):
            variants[f"amp_cl_graphs_group{g}x{streams}"] = {"cuda_graphs": True, "archs_per_group": g, "archs_in_flight": g * streams}
    variants.update({f"amp_cl_graphs_{k}": {"cuda_graphs": True, "archs_in_flight": k} for k in (int(v) for v in args.in_flight.split(","))})
    variants.update({
        # same settings, eager vs CUDA graphs: how far replays are from the eager step (exactness check)
        "fp32_eager_4": {"amp": False, "channels_last": False, "cuda_graphs": False, "archs_in_flight": 4},
        "fp32_graphs_4": {"amp": False, "channels_last": False, "cuda_graphs": True, "archs_in_flight": 4},
        "amp_cl_eager_1": {"cuda_graphs": False, "archs_in_flight": 1},
    })
    if device.type != "cuda":
        variants = {"cpu_default": {}, "cpu_group4": {"archs_per_group": 4}}
    logs_of = {}
    for label, dev in variants.items():
        seconds, logs = _timed_finetune(_config(args, **dev), supernet, archs, args.out / label)
        logs_of[label] = logs
        figures.record(f"finetune_{label}_s_per_arch_per_100", seconds)
        # Rank agreement with the plain path, on values after the last step (not the inherited weights').
        agree = {}
        for name, value in (("SoTL", lambda l: np.nansum(l.train_loss)), ("TLMini", lambda l: l.tl_mini.iloc[-1]),
                            ("ValAccMini", lambda l: l.val_acc_mini.mean())):
            agree[name] = float(spearmanr([value(l) for l in plain_logs], [value(l) for l in logs]).statistic)
        figures.record(f"rank_agreement_{label}_vs_plain", agree)
        figures.record(f"max_abs_diff_sotl_{label}", float(max(abs(np.nansum(a.train_loss) - np.nansum(b.train_loss)) for a, b in zip(plain_logs, logs))))
    if device.type == "cuda":
        columns = ["train_loss", "tl_mini", "val_acc_mini", "val_acc", "grad_l1", "grad_sum_l1"]
        figures.record("max_abs_diff_any_log_value_graphs_vs_eager_fp32", float(max(
            np.nanmax(np.abs(a[columns].to_numpy() - b[columns].to_numpy()))
            for a, b in zip(logs_of["fp32_eager_4"], logs_of["fp32_graphs_4"])
        )))


if __name__ == "__main__":
    try:
        main()
    except HarnessError as err:  # bad arguments or data: one line, no traceback
        raise SystemExit(f"error: {err}") from None
