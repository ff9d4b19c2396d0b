"""One config for a weight-sharing run: data, network, supernet training, finetuning, device, ranking.

The defaults are the thesis's protocol (Sec. 4.2 and Table B.1), with its code settling what the
text leaves open (Mirofil/AutoDL-Projects at 77776cb; the README lists every remaining difference):

* supernet: SPOS (per-cell uniform sampling, :mod:`harness.supernet.sampling`), 3 seeds, 100
  epochs, batch 64, SGD with Nesterov momentum 0.9, weight decay 5e-4, lr 0.025 cosine-annealed per
  step to 0.001, no gradient clipping (Table B.1 has none; neither has the code's supernet training);
  weight decay and momentum move every weight every step, as the code's ``zero_grad()`` did under
  PyTorch 1.x (``update_unsampled``);
* finetuning: 200 archs drawn once with a seed, 300 minibatches of 64 from the inherited weights,
  SGD with Nesterov momentum 0.9 and weight decay 5e-4 at a constant lr of 0.01 for SPOS and 0.001
  for the variants (thesis Sec. 4.2; ``finetune.lr`` overrides it), no clipping; the whole validation
  split evaluated (eval mode, batches of 1024) at step 0 and every 100 steps;
* report: SoTL (and the other sums) after 100 minibatches, ValAccMini after the first update (where
  the code measures it), TLMini and ValAcc from the inherited weights.

A TOML file has one table per section ([data], [network], [supernet], [finetune], [device],
[executor], [report]); unknown keys are refused. This module imports without torch.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from harness.errors import HarnessError, choices
from harness.supernet.estimators import check_estimators
from harness.supernet.sampling import ALGORITHMS
from harness.supernet.spaces import get_space
from harness.tomlfile import read_toml, typed

C = TypeVar("C")  # a frozen config dataclass (WSConfig, SearchConfig)


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "cifar10-valid"
    root: str = "data"  # folder holding cifar-10-batches-py/, cifar-100-python/ or ImageNet16/
    download: bool = False  # CIFAR only: fetch the official archive (MD5-checked) if missing
    split_file: str | None = None  # NB201's official split file; None: seeded halves
    split_seed: int = 0
    limit_train: int | None = None  # keep the first n training images (toy runs)
    limit_valid: int | None = None  # keep the first n validation images (ValAcc, ValAccMini)
    image_size: int | None = None  # downsample by an integer factor (2x2 means) to this side; None: native


@dataclass(frozen=True)
class NetworkConfig:
    channels: int = 16
    cells_per_stage: int = 5
    bn_affine: bool = False  # cells and head
    bn_track_running_stats: bool = False  # cells and head
    outer_bn_running_stats: bool = True  # stem and reduction blocks: running statistics, used in eval mode


@dataclass(frozen=True)
class SupernetConfig:
    algorithm: str = "spos"  # harness.supernet.sampling.ALGORITHMS
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int = 100
    batch_size: int = 64
    lr: float = 0.025
    lr_min: float = 0.001
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    grad_clip: float | None = None  # clip the update's gradient to this L2 norm; None: no clipping
    # True: every weight that has had a gradient keeps a zero one when its op is not sampled, so weight
    # decay and momentum still move it (the thesis code's zero_grad() under PyTorch 1.x); False: only
    # the sampled paths' weights change in a step
    update_unsampled: bool = True
    meta_lr: float = 1.0  # Reptile-style algorithms: theta <- theta + meta_lr * (mean rollout end - theta)


@dataclass(frozen=True)
class FinetuneConfig:
    n_archs: int = 200
    arch_seed: int = 0  # the arch set and every arch's data stream depend on this seed only
    steps: int = 300
    lr: float | None = None  # None: the algorithm's (0.01 SPOS, 0.001 the variants; WSConfig.finetune_lr)
    batch_size: int = 64
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    grad_clip: float | None = None  # per-arch L2 clipping of each step's gradient; None: no clipping
    eval_every: int = 100  # whole-validation accuracy at step 0 and every eval_every steps
    eval_batch_size: int = 1024
    val_mini_batch_size: int = 64


DENSE_SUPERNET = ("auto", "on", "off")  # device.dense_supernet


@dataclass(frozen=True)
class DeviceConfig:
    device: str = "auto"  # auto: cuda if available, else cpu
    amp: bool = True  # bfloat16 autocast on CUDA (no loss scaling needed); ignored on CPU
    channels_last: bool = True  # CUDA only
    cudnn_benchmark: bool = True
    cuda_graphs: bool = True  # CUDA only: capture each arch's training step once, replay it F times
    archs_in_flight: int = 4  # CUDA only: archs finetuned concurrently (archs_in_flight // archs_per_group streams)
    archs_per_group: int = 1  # archs finetuned side by side in one network (grouped convolutions)
    threads: int = 1  # CPU threads of torch's operators: their number changes the rounding, so it is a setting
    # "on": supernet updates run every op weighted 0/1 by the path (harness.supernet.dense), captured as one
    # CUDA graph with cuda_graphs; "off": only the path's ops, eagerly; "auto": on for CUDA, off for the CPU
    dense_supernet: str = "auto"


@dataclass(frozen=True)
class ExecutorConfig:
    """Where a ``harness ws run`` runs its tasks (one supernet training per seed, ``shards`` finetuning
    tasks per seed): what each task reserves on a Ray cluster (``--executor ray``), how often a task
    whose worker died is started again, and how the finetuning is split. The local executor runs the
    same tasks one after the other in its own process."""

    num_cpus: float | None = None  # CPUs a task reserves; None: device.threads (the torch threads it runs)
    # GPUs a task reserves (a fraction packs several tasks on one GPU: an NB201 network is small);
    # None: 1 where device.device is cuda, or auto on a cluster that has GPUs; 0 otherwise
    num_gpus: float | None = None
    max_retries: int = 3  # restarts of a task whose worker died (a user error is never retried)
    shards: int = 1  # finetuning tasks per supernet seed: shard i of n takes archs i, i + n, i + 2n, ...


@dataclass(frozen=True)
class ReportConfig:
    truth_schedule: str = "200"
    sum_step: int = 100  # Table 4.1: SoTL (and the other sums, SoG, SoGN) after 100 steps
    other_step: int = 0  # Table 4.1: the other estimators at step 0 (inherited weights) ...
    val_mini_step: int = 1  # ... but ValAccMini after the first update, where the thesis code measures it
    top_k: int = 10
    bootstrap: int = 1000  # resamples of the archs for the 95% CI of each Spearman rho (0: none)
    # names or names with options, e.g. "SoTL-E(E=50)" (harness.supernet.estimators.ws_estimator)
    estimators: tuple[str, ...] = ("SoTL", "TLMini", "ValAccMini", "ValAcc", "SoG", "SoGN")
    # Published numbers shown beside ours: a CSV with columns estimator, spearman, top_k (optional:
    # step, spearman_std, top_k_std); "": the thesis's Table 4.1 for this dataset and algorithm
    reference: str = ""
    reference_label: str = "thesis"


@dataclass(frozen=True)
class WSConfig:
    name: str = "ws"
    space: str = "nb201"  # the search space (harness.supernet.spaces.SPACES)
    data: DataConfig = field(default_factory=DataConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    supernet: SupernetConfig = field(default_factory=SupernetConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    report: ReportConfig = field(default_factory=ReportConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def finetune_lr(self) -> float:
        """``finetune.lr``, or the algorithm's finetuning lr (thesis Sec. 4.2) when it is not set."""
        return self.finetune.lr if self.finetune.lr is not None else ALGORITHMS[self.supernet.algorithm].finetune_lr

    @property
    def n_cells(self) -> int:
        """The cells a path has one draw for (the space's :meth:`~harness.supernet.spaces.base.Space.n_cells`)."""
        return get_space(self.space).n_cells(self)

    def with_overrides(self, **sections: dict[str, Any]) -> WSConfig:
        """A copy with ``section={key: value}`` overrides applied (validated like a TOML file)."""
        merged = self.to_dict()
        for section, values in sections.items():
            merged.setdefault(section, {}).update(values)
        return config_from_dict(merged)


_SECTION_CLASSES = {
    "data": DataConfig,
    "network": NetworkConfig,
    "supernet": SupernetConfig,
    "finetune": FinetuneConfig,
    "device": DeviceConfig,
    "executor": ExecutorConfig,
    "report": ReportConfig,
}


def _section(cls: type, values: dict[str, Any], where: str) -> Any:
    valid = {f.name: f for f in fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in valid:
            raise choices(f"key in [{where}]", key, valid)
        kwargs[key] = typed(value, str(valid[key].type), f"[{where}] {key}")
    return cls(**kwargs)


def config_from_dict(content: dict[str, Any]) -> WSConfig:
    """A config from its sections (a TOML file's or config.json's content): the defaults of
    :class:`WSConfig`, then the space's own defaults (:attr:`~harness.supernet.spaces.base.Space.config_defaults`),
    then ``content``."""
    space = content.get("space", WSConfig.space)
    content = under_defaults(content, get_space(typed(space, "str", "space")).config_defaults)
    out = with_sections(WSConfig(), content, _SECTION_CLASSES)
    _validate(out)
    return out


def under_defaults(content: dict[str, Any], defaults: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``content`` (a config's sections) over ``defaults`` (a space's section values): every key of
    ``defaults`` that ``content`` does not set is added to its section."""
    return {**{section: dict(values) for section, values in defaults.items()},
            **{key: ({**defaults.get(key, {}), **value} if key in defaults and isinstance(value, dict) else value)
               for key, value in content.items()}}


def with_sections(config: C, content: dict[str, Any], sections: dict[str, type]) -> C:
    """``config`` (a frozen config dataclass) with its ``name``, ``space`` and the ``sections`` of
    ``content`` (a TOML file's or config.json's) replaced, each section's keys checked and typed;
    an unknown section is refused naming the valid ones. Shared by every config kind."""
    for key, value in content.items():
        if key in ("name", "space"):
            config = replace(config, **{key: typed(value, "str", key)})
        elif key in sections:
            if not isinstance(value, dict):
                raise HarnessError(f"[{key}] must be a table")
            config = replace(config, **{key: _section(sections[key], value, key)})
        else:
            raise choices("config section", key, ["name", "space", *sections])
    return config


def read_config_content(path: str | Path) -> dict[str, Any]:
    """The sections of a TOML config file, or of the ``config.json`` a run folder records."""
    path = Path(path)
    if path.suffix != ".json":
        return read_toml(path)
    try:
        content = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise HarnessError(f"cannot read the config {path}: {err}") from None
    if not isinstance(content, dict):
        raise HarnessError(f"{path} holds no config (a JSON object of sections)")
    return content


def load_config(path: str | Path) -> WSConfig:
    """A config from a TOML file, or from the ``config.json`` a run folder records."""
    return config_from_dict(read_config_content(path))


# Settings that say where or how fast a run goes, not what it computes (the report's settings only
# shape the report): a run folder or checkpoint carries on under changes to these, and only these.
LOGISTICS = frozenset({
    "name", "data.root", "data.download", "supernet.seeds", "device.device", "device.channels_last",
    "device.cudnn_benchmark", "device.cuda_graphs", "device.archs_in_flight", "device.archs_per_group",
    "device.dense_supernet",  # the same update to rounding (tests/test_supernet_dense.py), like cuda_graphs
    # Where and how many tasks at once, never what they compute: every random stream of a supernet
    # depends on its seed and epoch and every finetuning stream on finetune.arch_seed and the step, never
    # on the worker; each arch's log is its own file, written once. Shards also decide which archs
    # share a group when device.archs_per_group > 1: rounding only, as archs_per_group itself.
    "executor.num_cpus", "executor.num_gpus", "executor.max_retries", "executor.shards",
})


def _effective(config: dict[str, Any]) -> dict[str, Any]:
    """The settings as they act: ``amp`` does nothing on the CPU, ``split_seed`` nothing with a split file
    (``threads`` nothing on a GPU: :func:`changed_settings` skips it where either run is on CUDA)."""
    out = {key: dict(value) if isinstance(value, dict) else value for key, value in config.items()}
    if out.get("device", {}).get("device") == "cpu":
        out["device"]["amp"] = False
    if out.get("data", {}).get("split_file"):
        out["data"].pop("split_seed", None)
    return out


def changed_settings(
    saved: dict[str, Any], cfg: WSConfig, sections: tuple[str, ...], ignore: frozenset[str] = frozenset()
) -> list[str]:
    """``"section.key: saved -> now"`` for every setting of ``sections`` outside :data:`LOGISTICS`
    and ``ignore`` on which the saved config (``WSConfig.to_dict()``, as JSON) and ``cfg`` disagree,
    and ``"space: saved -> now"`` when the search spaces differ (a config saved before spaces existed
    is NB201's)."""
    saved, now = _effective(saved), _effective(json.loads(json.dumps(cfg.to_dict(), default=list)))
    changes = []
    devices = saved.get("device", {}).get("device"), now["device"]["device"]
    if any(str(device).startswith("cuda") for device in devices):
        ignore = ignore | {"device.threads"}  # CPU operator threads do not touch a GPU's arithmetic
    if saved.get("space", WSConfig.space) != now["space"]:  # what every section means depends on it
        changes.append(f"space: {saved.get('space', WSConfig.space)!r} -> {now['space']!r}")
    for section in sections:
        before, after = saved.get(section, {}), now[section]
        for key in sorted(set(before) | set(after)):
            name = f"{section}.{key}"
            if name not in LOGISTICS and name not in ignore and before.get(key) != after.get(key):
                change = f"{section}.{key}: {before.get(key)!r} -> {after.get(key)!r}"
                if name == "device.amp" and devices[0] != devices[1]:  # amp acts on CUDA only
                    change += f" (bf16 autocast acts on CUDA only, and device went {devices[0]!r} -> {devices[1]!r})"
                changes.append(change)
    return changes


def _validate(cfg: WSConfig) -> None:
    from harness.data.nb201 import DATASETS, dataset_info  # torch-free modules

    space = get_space(cfg.space)
    if cfg.data.dataset not in DATASETS:
        raise choices("dataset", cfg.data.dataset, DATASETS)
    space.check(cfg)
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", cfg.device.device):
        raise HarnessError(f"unknown device {cfg.device.device!r}; valid: 'auto', 'cpu', 'cuda', 'cuda:N'")
    if cfg.supernet.algorithm not in ALGORITHMS:
        raise choices("supernet algorithm", cfg.supernet.algorithm, ALGORITHMS)
    seeds = cfg.supernet.seeds
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise HarnessError(f"supernet.seeds must be distinct integers >= 0, at least one, got {list(seeds)}")
    if cfg.finetune.n_archs < 3 or cfg.finetune.batch_size < 1 or cfg.supernet.batch_size < 1:
        raise HarnessError("finetune.n_archs must be >= 3 (a ranking needs several archs) and batch sizes >= 1")
    if cfg.device.dense_supernet not in DENSE_SUPERNET:
        raise choices("device.dense_supernet", cfg.device.dense_supernet, DENSE_SUPERNET)
    if cfg.device.dense_supernet == "on" and cfg.network.bn_track_running_stats:
        raise HarnessError("device.dense_supernet = 'on' needs network.bn_track_running_stats = false: a dense update runs "
                           "every cell op and would move the running statistics of the unsampled ones; use 'off' or 'auto'")
    if cfg.device.archs_per_group < 1 or cfg.device.archs_in_flight < 1 or cfg.device.threads < 1:
        raise HarnessError("device.archs_per_group, device.archs_in_flight and device.threads must be >= 1")
    _validate_executor(cfg)
    for name, clip in (("supernet.grad_clip", cfg.supernet.grad_clip), ("finetune.grad_clip", cfg.finetune.grad_clip)):
        if clip is not None and clip <= 0:
            raise HarnessError(f"{name} must be a positive norm, or absent (no clipping); got {clip}")
    for name, lr in (("supernet.lr", cfg.supernet.lr), ("supernet.meta_lr", cfg.supernet.meta_lr), ("finetune.lr", cfg.finetune_lr)):
        if not lr > 0:
            raise HarnessError(f"{name} must be > 0, got {lr}")
    if (cfg.supernet.nesterov and cfg.supernet.momentum <= 0) or (cfg.finetune.nesterov and cfg.finetune.momentum <= 0):
        raise HarnessError("Nesterov momentum needs momentum > 0 (supernet.momentum, finetune.momentum)")
    side = dataset_info(cfg.data.dataset).side
    size = cfg.data.image_size
    if size is not None and (size < 1 or side % size or (side // size) & (side // size - 1)):
        raise HarnessError(f"data.image_size must divide the {cfg.data.dataset} images' side {side} by a power of two "
                           f"(e.g. {side // 2}, {side // 4}), got {size}")
    if cfg.finetune.steps < 1 or cfg.finetune.eval_every < 1 or cfg.supernet.epochs < 0:
        raise HarnessError("finetune.steps and finetune.eval_every must be >= 1, supernet.epochs >= 0")
    for step in (cfg.report.sum_step, cfg.report.other_step, cfg.report.val_mini_step):
        if not 0 <= step <= cfg.finetune.steps:
            raise HarnessError(f"report step {step} out of range 0..{cfg.finetune.steps} (finetune.steps)")
    if cfg.report.sum_step < 1:
        raise HarnessError("report.sum_step must be >= 1 (SoTL sums the losses of steps 1..t)")
    if not 1 <= cfg.report.top_k <= cfg.finetune.n_archs:
        raise HarnessError(f"report.top_k must be 1..{cfg.finetune.n_archs} (finetune.n_archs: the top-k accuracy "
                           f"averages the truth of the k best-ranked archs), got {cfg.report.top_k}")
    check_estimators(cfg)  # now, not at the report after hours of training


def _validate_executor(cfg: WSConfig) -> None:
    ex = cfg.executor
    if ex.num_cpus is not None and not ex.num_cpus > 0:
        raise HarnessError(f"executor.num_cpus must be > 0 (or absent: device.threads), got {ex.num_cpus:g}")
    if ex.num_gpus is not None and (ex.num_gpus < 0 or (ex.num_gpus > 1 and ex.num_gpus != int(ex.num_gpus))):
        raise HarnessError(f"executor.num_gpus must be a fraction 0..1 or a whole number of GPUs (or absent: "
                           f"auto), got {ex.num_gpus:g}")
    if ex.max_retries < 0:
        raise HarnessError(f"executor.max_retries must be >= 0, got {ex.max_retries}")
    if not 1 <= ex.shards <= cfg.finetune.n_archs:
        raise HarnessError(f"executor.shards must be 1..{cfg.finetune.n_archs} (finetune.n_archs), got {ex.shards}")
