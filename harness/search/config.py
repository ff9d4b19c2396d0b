"""One config for a differentiable search: data, network, search, device (torch-free).

The defaults are the thesis's NB201 protocol for the DARTS family (Table B.1; thesis code
Mirofil/AutoDL-Projects at 77776cb settling what the table leaves open):

* weights: SGD, lr 0.025 cosine-annealed per step to 0.001, momentum 0.9, weight decay 5e-4 (Table
  B.1's NB201 row; 3e-4 is its NB1Shot1 and DARTS-space value), Nesterov (the code's
  ``configs/nas-benchmark/algos/DARTS.config``), batch 64, 50 epochs, no gradient clipping
  (``exps/NATS-algos/search-cell.py`` clips no weight gradient);
* architecture: Adam, lr 3e-4, betas (0.5, 0.999), weight decay 1e-3, eps 1e-8 (search-cell.py
  l.1300 and its ``--arch_*`` defaults), alpha initialised as ``1e-3 * N(0, 1)`` per edge and op
  (NB201's search models, kept by the thesis code);
* SoTL-DARTS, SoVL-DARTS and SoTL-DrNAS: T = 100 unrolled steps per architecture step (thesis Sec.
  4.3; the code's ``inner_steps=100`` in ``lib/models/cell_searchs/darts/cnn/train_search_higher.py``,
  and in ``train_higher`` of the thesis fork Mirofil/DrNAS ``201-space/train_search_higher.py``);
* DARTS second order: the finite-difference step ``r / ||v||`` with r = 0.01 (Liu et al. 2019,
  Sec. 2.3; ``_hessian_vector_product`` in the code's ``lib/utils/train_loop.py``);
* DrNAS and SoTL-DrNAS (xiangning-chen/DrNAS ``201-space/train_search.py`` and ``architect.py``; the
  thesis fork's ``train_search_higher.py`` alike): the architecture optimizer is
  the DARTS family's Adam (lr 3e-4, betas (0.5, 0.999): their ``--arch_learning_rate`` default and
  Architect), alpha initialised as DARTS's (``1e-3 * randn``, ``TinyNetwork`` in
  ``201-space/search_model.py``); their regulariser, ``reg_type='l2'`` at ``reg_scale=1e-3`` (the
  defaults), is the term ``(drnas_reg_scale / 2) ||alpha||^2`` of the architecture objective, which
  their Architect applies as Adam's (coupled) weight decay ``drnas_reg_scale`` in place of
  ``--arch_weight_decay`` (which it never reads); so here too, and ``arch_weight_decay`` does not
  apply to them;
* GAEA DARTS (liamcli/gaea_release ``configs/cnn/search_method/edarts/method_edarts_space_nasbench201.yaml``
  and its README's NB201 command; Li's thesis Sec. 6.5.3, Table 6.4): exponentiated-gradient lr
  ``gaea_lr = 0.1`` (``arch_learning_rate: 0.1``; the thesis's arch lr 0.1), alpha initialised uniform
  on each edge's simplex (``ArchitectEDARTS.initialize_alphas`` in ``cnn/architect/architect_edarts.py``:
  ``normalize(ones)``) over the ops but ``none`` (``gaea_exclude_none = true``: the README's
  ``search.exclude_zero=true`` for NB201, as the thesis excludes the zero op), so
  ``[0, 1/4, 1/4, 1/4, 1/4]`` per edge; no regulariser (``arch_weight_decay: 0.0``).
  Adam's settings (``arch_lr``, betas, eps, ``arch_weight_decay``) and ``arch_init_std`` do not apply;
* network: NB201's search network (C = 16, N = 5) with the cells' and the head's BN without affine
  parameters or running statistics (the code's ``--affine 0 --track_running_stats 0`` defaults),
  the stem's and reduction blocks' BN affine with running statistics: the supernet's
  :class:`~harness.supernet.config.NetworkConfig` defaults, which this config reuses with
  ``[data]`` and ``[device]``.

A TOML file has the tables ``[data]``, ``[network]``, ``[search]``, ``[device]``; unknown keys are
refused. Of ``[device]`` a search uses ``device`` and ``threads``. Every algorithm trains on the
training half of NB201's ``cifar10-valid`` split (the issue's "50% of CIFAR-10"); SoTL-DARTS and
SoTL-DrNAS never read the validation half, so they get no more data than DARTS; nor does GAEA's single-level
variant ``gaea-erm`` (its code's ``search.single_level=true`` reads the whole training set twice, in two independent
orders, for the weight and the architecture steps; here the training half, in two orders, for the same reason).

The shared settings stay the thesis's for every algorithm; DrNAS's and GAEA's own codes train the
weights otherwise (epochs, weight decay, gradient clipping: :mod:`harness.search.algorithms` lists
the differences), and a config file sets ``epochs`` and ``weight_decay`` to follow them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, choices
from harness.search.spaces import get_search_space
from harness.supernet.config import (DataConfig, DeviceConfig, NetworkConfig, WSConfig, changed_settings, read_config_content,
                                     under_defaults, with_sections)
from harness.tomlfile import typed

# algorithm name -> what it is (harness.search.algorithms has the code)
ALGORITHMS: dict[str, str] = {
    "darts-1": "DARTS, first order (Liu et al. 2019)",
    "darts-2": "DARTS, second order: finite-difference Hessian-vector product (Liu et al. 2019)",
    "sotl-darts": "SoTL-DARTS: T unrolled training steps, summed training-loss gradients (thesis Alg. 3)",
    "sovl-darts": "SoVL-DARTS: T unrolled training steps, summed validation-loss gradients (thesis Sec. 4.3)",
    "drnas": "DrNAS: path weights sampled from Dir(elu(alpha) + 1), first order (Chen et al. 2021)",
    "sotl-drnas": "SoTL-DrNAS: DrNAS's Dirichlet path weights, SoTL-DARTS's unrolled training-loss gradient (thesis Sec. 4.3)",
    "gaea-darts": "GAEA DARTS: path weights on the simplex, exponentiated-gradient steps, first order (Li et al. 2021)",
    "gaea-erm": "GAEA DARTS single-level (ERM): GAEA DARTS with its architecture steps on training minibatches (Li et al. 2021)",
}
UNROLLED = ("sotl-darts", "sovl-darts", "sotl-drnas")  # the algorithms whose architecture step spans search.unroll_steps minibatches
TRAINING_ONLY = ("sotl-darts", "sotl-drnas", "gaea-erm")  # the algorithms that read no validation data
SINGLE_LEVEL = ("gaea-erm",)  # the algorithms whose architecture minibatches are training minibatches of their own order
# algorithm -> how its alpha becomes the path weights (harness.search.algorithms.MIXINGS): softmax(alpha),
# a Dirichlet sample of concentrations elu(alpha) + 1, or alpha itself on the simplex
MIXING: dict[str, str] = {
    "darts-1": "softmax", "darts-2": "softmax", "sotl-darts": "softmax", "sovl-darts": "softmax",
    "drnas": "dirichlet", "sotl-drnas": "dirichlet", "gaea-darts": "simplex", "gaea-erm": "simplex",
}


@dataclass(frozen=True)
class SearchSettings:
    algorithm: str = "darts-1"
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int = 50
    batch_size: int = 64
    lr: float = 0.025
    lr_min: float = 0.001
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    arch_lr: float = 3e-4
    arch_beta1: float = 0.5
    arch_beta2: float = 0.999
    arch_weight_decay: float = 1e-3
    arch_eps: float = 1e-8
    arch_init_std: float = 1e-3
    unroll_steps: int = 100  # T of SoTL-DARTS, SoVL-DARTS and SoTL-DrNAS
    hessian_r: float = 0.01  # DARTS second order: finite-difference step r / ||v||
    drnas_reg_scale: float = 1e-3  # DrNAS, SoTL-DrNAS: the L2 regulariser's scale, Adam's weight decay of alpha
    gaea_lr: float = 0.1  # GAEA: the exponentiated-gradient step size eta
    gaea_exclude_none: bool = True  # GAEA: the op none gets weight 0 and keeps it
    eigenvalue_every: int = 1  # epochs between logs of the dominant Hessian eigenvalue (0: never)
    eigenvalue_iterations: int = 50  # its power iterations at most (the thesis code's power_iter_steps)
    eigenvalue_tol: float = 1e-3  # its relative tolerance (harness.search.diagnostics)
    # the benchmark data of the derived arch's truth: None, the embedded data; on NAS-Bench-1Shot1 a converted official
    # NB101 store ('harness data convert nb101'): the truth becomes the test accuracy, every cell (harness.search.derive)
    truth_root: str | None = None


@dataclass(frozen=True)
class SearchConfig:
    name: str = "search"
    space: str = "nb201"
    data: DataConfig = field(default_factory=DataConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    search: SearchSettings = field(default_factory=SearchSettings)
    device: DeviceConfig = field(default_factory=DeviceConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def block_steps(self) -> int:
        """Training minibatches per architecture step: T for the unrolled algorithms, else 1."""
        return self.search.unroll_steps if self.search.algorithm in UNROLLED else 1

    def ws_config(self) -> WSConfig:
        """The weight-sharing config of the shared sections, for the helpers that read them (images,
        device, threads, the network shape of the weight-sharing space the search space builds on)."""
        return WSConfig(name=self.name, space=get_search_space(self.space).ws_space, data=self.data, network=self.network,
                        device=self.device)

    def with_overrides(self, **sections: Any) -> SearchConfig:
        """A copy with ``section={key: value}`` overrides applied, and ``name`` or ``space`` replaced
        (validated like a TOML file; every key of this config stays set, so a new ``space`` does not
        bring its own defaults, as it does in a file)."""
        merged = self.to_dict()
        for section, values in sections.items():
            if isinstance(values, dict):
                merged.setdefault(section, {}).update(values)
            else:
                merged[section] = values
        return search_config_from_dict(merged)


_SECTIONS = {"data": DataConfig, "network": NetworkConfig, "search": SearchSettings, "device": DeviceConfig}


def search_config_from_dict(content: dict[str, Any]) -> SearchConfig:
    """A config from its sections (a TOML file's or config.json's content) over the defaults: those
    of :class:`SearchConfig`, then the search space's own (:attr:`~harness.search.spaces.SearchSpace.config_defaults`)."""
    space = get_search_space(typed(content.get("space", SearchConfig.space), "str", "space"))
    content = under_defaults(content, space.config_defaults)
    out = with_sections(SearchConfig(), content, _SECTIONS)
    _validate(out)
    return out


def load_search_config(path: str | Path) -> SearchConfig:
    """A config from a TOML file, or from the ``config.json`` a search folder records."""
    return search_config_from_dict(read_config_content(path))


def changed_search_settings(saved: dict[str, Any], cfg: SearchConfig) -> list[str]:
    """``"section.key: saved -> now"`` for every setting that changes what a search computes: the
    shared sections as the supernet's :func:`~harness.supernet.config.changed_settings` judges them,
    and every ``[search]`` key but ``seeds``. A key the saved config lacks (one added since) counts as
    its default: its algorithm did not exist, or it changed nothing, when that config was written."""
    changes = []
    if saved.get("space", "nb201") != cfg.space:
        changes.append(f"space: {saved.get('space', 'nb201')!r} -> {cfg.space!r}")
    ws_saved = {**saved, "space": get_search_space(saved.get("space", "nb201")).ws_space}  # as ws_config() maps it
    changes += [change for change in changed_settings(ws_saved, cfg.ws_config(), ("data", "network", "device"))
                if not change.startswith("space:")]
    before, after = saved.get("search", {}), json.loads(json.dumps(asdict(cfg.search)))
    defaults = json.loads(json.dumps(asdict(SearchSettings())))
    for key in sorted(set(before) | set(after)):
        if key != "seeds" and before.get(key, defaults.get(key)) != after.get(key):
            changes.append(f"search.{key}: {before.get(key)!r} -> {after.get(key)!r}")
    return changes


def _validate(cfg: SearchConfig) -> None:
    s = cfg.search
    cfg.ws_config().with_overrides()  # [data], [network] and [device] as a weight-sharing run checks them
    if s.algorithm not in ALGORITHMS:
        raise choices("search algorithm", s.algorithm, ALGORITHMS)
    if s.truth_root is not None and not cfg.space.startswith("nb1shot1-"):
        raise HarnessError(f"search.truth_root is for the nb1shot1 spaces (a converted NB101 store); a {cfg.space} search "
                           f"reads its truth from the embedded data, got truth_root {s.truth_root!r}")
    if cfg.network.bn_track_running_stats:
        raise HarnessError("the mixed-op network runs every op of every cell: network.bn_track_running_stats must be false")
    if not s.seeds or len(set(s.seeds)) != len(s.seeds) or min(s.seeds) < 0:
        raise HarnessError(f"search.seeds must be distinct integers >= 0, at least one, got {list(s.seeds)}")
    if s.epochs < 0 or s.batch_size < 1 or s.unroll_steps < 1 or cfg.device.threads < 1 or s.eigenvalue_every < 0:
        raise HarnessError("search.epochs and eigenvalue_every must be >= 0; search.batch_size, search.unroll_steps and "
                           "device.threads >= 1")
    if s.eigenvalue_iterations < 1 or not s.eigenvalue_tol >= 0:
        raise HarnessError(f"search.eigenvalue_iterations must be >= 1 and eigenvalue_tol >= 0, got "
                           f"{s.eigenvalue_iterations}, {s.eigenvalue_tol}")
    for name in ("lr", "lr_min", "arch_lr", "arch_eps", "hessian_r", "gaea_lr"):
        if not getattr(s, name) > 0:
            raise HarnessError(f"search.{name} must be > 0, got {getattr(s, name)}")
    if not (0 <= s.arch_beta1 < 1 and 0 <= s.arch_beta2 < 1):
        raise HarnessError(f"search.arch_beta1 and arch_beta2 must be in [0, 1), got {s.arch_beta1}, {s.arch_beta2}")
    if s.nesterov and s.momentum <= 0:
        raise HarnessError("Nesterov momentum needs search.momentum > 0")
    for name in ("weight_decay", "arch_weight_decay", "arch_init_std", "drnas_reg_scale"):
        if getattr(s, name) < 0:
            raise HarnessError(f"search.{name} must be >= 0, got {getattr(s, name)}")
