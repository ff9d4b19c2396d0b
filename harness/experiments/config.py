"""Configs of the correlation-vs-epoch experiment: TOML in, a frozen, fully resolved dataclass out.

A config file (see ``configs/*.toml``)::

    name = "fig4.4a-cifar10-hp200"
    description = "Thesis Fig. 4.4a"
    benchmark = "nb201"
    root = ""                     # converted store; "" = embedded data; --root overrides
    dataset = "cifar10-valid"
    schedule = "200"
    estimators = ["SoTL", "SoTL-all", {name = "SoTL-EMA", mu = 0.9}, "ValAcc"]
    skip_unavailable = false      # true: leave out (and record) estimators the data cannot support

    [sampling]
    n_archs = 200                 # or "all"
    repetitions = 10
    seed = 0                      # repetition r draws with numpy.random.default_rng([seed, r])
    train_seed = "random"         # "random" | "mean" | a seed label such as 777
    dedup_isomorphs = false
    drop_degenerate = false

    [truth]                       # default: final test accuracy, seed mean, same dataset/schedule
    dataset = "cifar10-valid"
    schedule = "200"
    split = "ori-test"            # default: the benchmark's test split (x-test, ori-test or test)
    metric = "accuracy"

    [ranking]
    metrics = ["spearman", "kendall", "top_k", "precision_at_k"]
    k = 10
    epochs = []                   # epochs to report; [] = every epoch

    [splits]                      # optional: which split plays a role, e.g. val = "ori-test"
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, choices
from harness.metrics import get_estimator
from harness.ranking import METRICS
from harness.tomlfile import read_toml, typed

TRAIN_SEED_POLICIES = ("random", "mean")
_TOP_KEYS = {"name", "description", "benchmark", "root", "dataset", "schedule", "estimators", "skip_unavailable",
             "sampling", "truth", "ranking", "splits"}
_SAMPLING_KEYS = {"n_archs", "repetitions", "seed", "train_seed", "dedup_isomorphs", "drop_degenerate"}
_TRUTH_KEYS = {"dataset", "schedule", "split", "metric"}
_RANKING_KEYS = {"metrics", "k", "epochs"}


@dataclass(frozen=True)
class Sampling:
    n_archs: int | str = 200
    repetitions: int = 10
    seed: int = 0
    train_seed: str | int = "random"
    dedup_isomorphs: bool = False
    drop_degenerate: bool = False


@dataclass(frozen=True)
class Truth:
    dataset: str = ""
    schedule: str = ""
    split: str = ""  # "" = the test role of the benchmark (resolved at run time)
    metric: str = "accuracy"


@dataclass(frozen=True)
class Ranking:
    metrics: tuple[str, ...] = ("spearman", "kendall", "top_k", "precision_at_k")
    k: int = 10
    epochs: tuple[int, ...] = ()


@dataclass(frozen=True)
class CorrelationConfig:
    name: str
    benchmark: str
    dataset: str
    estimators: tuple[Any, ...]
    schedule: str = ""
    root: str = ""
    description: str = ""
    skip_unavailable: bool = False
    sampling: Sampling = field(default_factory=Sampling)
    truth: Truth = field(default_factory=Truth)
    ranking: Ranking = field(default_factory=Ranking)
    splits: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["estimators"] = [dict(e) if isinstance(e, dict) else e for e in self.estimators]
        out["ranking"]["metrics"] = list(self.ranking.metrics)
        out["ranking"]["epochs"] = list(self.ranking.epochs)
        return out


def _check_keys(where: str, table: dict[str, Any], valid: set[str]) -> None:
    for key in table:
        if key not in valid:
            raise choices(f"key in {where}", key, sorted(valid))


def _sampling(raw: dict[str, Any], source: str) -> Sampling:
    where = f"{source}: sampling."
    n_archs = raw.get("n_archs", Sampling.n_archs)
    if n_archs != "all":
        typed(n_archs, "int", where + 'n_archs (a number of archs, or "all")', 2)
    train_seed = raw.get("train_seed", Sampling.train_seed)
    if isinstance(train_seed, str) and train_seed not in TRAIN_SEED_POLICIES:
        try:
            train_seed = int(train_seed)
        except ValueError:
            raise choices("train_seed", train_seed, list(TRAIN_SEED_POLICIES) + ["<a seed label>"]) from None
    if not isinstance(train_seed, str):
        typed(train_seed, "int", where + 'train_seed (a policy such as "random", or a training seed label)', 0)
    return Sampling(
        n_archs=n_archs,
        repetitions=typed(raw.get("repetitions", Sampling.repetitions), "int", where + "repetitions", 1),
        seed=typed(raw.get("seed", Sampling.seed), "int", where + "seed", 0),
        train_seed=train_seed,
        dedup_isomorphs=typed(raw.get("dedup_isomorphs", False), "bool", where + "dedup_isomorphs"),
        drop_degenerate=typed(raw.get("drop_degenerate", False), "bool", where + "drop_degenerate"),
    )


def _ranking(raw: dict[str, Any], source: str) -> Ranking:
    where = f"{source}: ranking."
    metrics, epochs = raw.get("metrics", list(Ranking.metrics)), raw.get("epochs", [])
    for key, value in (("metrics", metrics), ("epochs", epochs)):
        if not isinstance(value, (list, tuple)):
            raise HarnessError(f"{where}{key} must be a list, got {value!r}")
    if not metrics:
        raise HarnessError(f"{where}metrics is empty; valid: {', '.join(METRICS)}")
    for metric in metrics:
        if metric not in METRICS:
            raise choices(f"{source}: ranking metric", metric, METRICS)
    return Ranking(
        metrics=tuple(metrics),
        k=typed(raw.get("k", Ranking.k), "int", where + "k", 1),
        epochs=tuple(typed(e, "int", where + "epochs entry", 1) for e in epochs),
    )


def parse_config(data: dict[str, Any], source: str = "config") -> CorrelationConfig:
    """Validate a config mapping (as read from TOML) and fill in defaults."""
    _check_keys(source, data, _TOP_KEYS)
    for required in ("name", "benchmark", "dataset", "estimators"):
        if required not in data:
            raise HarnessError(f"{source}: missing required key {required!r}")
    sampling_raw = dict(data.get("sampling", {}))
    _check_keys(f"{source} [sampling]", sampling_raw, _SAMPLING_KEYS)
    truth_raw = dict(data.get("truth", {}))
    _check_keys(f"{source} [truth]", truth_raw, _TRUTH_KEYS)
    ranking_raw = dict(data.get("ranking", {}))
    _check_keys(f"{source} [ranking]", ranking_raw, _RANKING_KEYS)
    sampling = _sampling(sampling_raw, source)
    ranking = _ranking(ranking_raw, source)
    estimators = tuple(data["estimators"])
    if not estimators:
        raise HarnessError(f"{source}: estimators is empty")
    labels = [get_estimator(e).label for e in estimators]  # validates names and options
    if len(set(labels)) != len(labels):
        raise HarnessError(f"{source}: an estimator is listed twice: {labels}")
    dataset = str(data["dataset"])
    schedule = str(data.get("schedule", ""))
    truth = Truth(
        dataset=str(truth_raw.get("dataset", dataset)),
        schedule=str(truth_raw.get("schedule", schedule)),
        split=str(truth_raw.get("split", "")),
        metric=str(truth_raw.get("metric", "accuracy")),
    )
    return CorrelationConfig(
        name=str(data["name"]),
        benchmark=str(data["benchmark"]),
        dataset=dataset,
        estimators=estimators,
        schedule=schedule,
        root=str(data.get("root", "")),
        description=str(data.get("description", "")),
        skip_unavailable=typed(data.get("skip_unavailable", False), "bool", f"{source}: skip_unavailable"),
        sampling=sampling,
        truth=truth,
        ranking=ranking,
        splits={str(k): str(v) for k, v in data.get("splits", {}).items()},
    )


def load_config(path: str | Path) -> CorrelationConfig:
    return parse_config(read_toml(path), source=str(path))


def to_toml(data: dict[str, Any]) -> str:
    """Write a config mapping back as TOML (scalars, lists, inline tables, one level of tables)."""
    top = {k: v for k, v in data.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    lines = [f"{k} = {_toml_value(v)}" for k, v in top.items()]
    for name, table in tables.items():
        lines += ["", f"[{name}]"] + [f"{k} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if value is None:
        raise HarnessError("TOML has no null; leave the key out")
    raise HarnessError(f"cannot write {type(value).__name__} to TOML")
