"""The estimator registry: every estimator a small pure function with a declared direction and inputs.

An :class:`Estimator` names the *signals* it reads (``train_loss``, ``val_acc``, ``params``,
``zc:synflow``, step-level ``minibatch_train_loss`` ...). :func:`required_columns` maps those
signals to the columns of one benchmark through ``bench.capabilities()``; this is the one path every
runner uses. A benchmark that lacks a signal raises :class:`~harness.errors.NotAvailableError`
("not available: nb101 records no training loss ..."); an estimator never falls back to another
signal.

Levels:

* ``"curve"``: inputs ``[..., T]`` per epoch (or per step); the output ``[..., T]`` is the value
  after each t (see :mod:`harness.metrics.curves`).
* ``"step"``: the same, but the inputs are step-level logs of a finetuning run (no benchmark
  records them; the weight-sharing runner passes them directly).
* ``"static"``: one value per architecture (params, FLOPs, zero-cost scores), input ``[...]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from harness.benchmark import Benchmark, Column
from harness.errors import HarnessError, NotAvailableError, choices
from harness.metrics import curves

Level = Literal["curve", "step", "static"]

# Curve signals: role (which split) and metric. Split names are matched against these candidates in
# order, so the same estimator works on NB201 (x-valid, ori-test), NB101 and NB301 (valid, test).
SPLIT_CANDIDATES: dict[str, tuple[str, ...]] = {
    "train": ("train",),
    "val": ("x-valid", "valid", "val", "validation"),
    "test": ("x-test", "ori-test", "test"),
}
METRIC_CANDIDATES: dict[str, tuple[str, ...]] = {
    "loss": ("loss", "cross_entropy"),
    "acc": ("accuracy", "acc"),
}
CURVE_SIGNALS: dict[str, tuple[str, str]] = {
    "train_loss": ("train", "loss"),
    "train_acc": ("train", "acc"),
    "val_loss": ("val", "loss"),
    "val_acc": ("val", "acc"),
}
STEP_SIGNALS: dict[str, str] = {
    "minibatch_train_loss": "training loss of each finetuning minibatch [..., steps]",
    "minibatch_val_acc": "accuracy on one validation minibatch after each step [..., steps]",
    "grads": "gradient vector of each step [..., steps, params]",
    "grad_l1": "L1 norm of each step's gradient [..., steps]",
    "grad_l2": "L2 norm of each step's gradient [..., steps]",
}
SIGNAL_WORDS = {
    "train_loss": "training losses",
    "train_acc": "training accuracies",
    "val_loss": "validation losses",
    "val_acc": "validation accuracies",
    "params": "parameter counts",
    "flops": "FLOPs",
}
BENCHMARK_TITLES = {
    "nb201": "NAS-Bench-201",
    "nb101": "NAS-Bench-101",
    "nb301": "NAS-Bench-301",
    "nb1shot1-1": "NAS-Bench-1Shot1 space 1",
    "nb1shot1-2": "NAS-Bench-1Shot1 space 2",
    "nb1shot1-3": "NAS-Bench-1Shot1 space 3",
}
# NASLib / NAS-Bench-Suite-Zero names of the zero-cost proxies (all oriented "higher is better" by
# NASLib's convention; Krishnakumar et al. 2022, Table 1).
ZERO_COST_PROXIES = ("epe_nas", "fisher", "grad_norm", "grasp", "jacov", "l2_norm", "nwot", "plain", "snip", "synflow", "zen")


@dataclass(frozen=True)
class Estimator:
    """One ranking estimator: ``fn(*inputs, **options)`` with a declared direction."""

    name: str
    fn: Callable[..., np.ndarray]
    inputs: tuple[str, ...]
    higher_is_better: bool
    level: Level
    description: str
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def minimize(self) -> bool:
        return not self.higher_is_better

    @property
    def label(self) -> str:
        """The name plus any non-default options, e.g. ``SoTL-E(E=3)``."""
        defaults = _REGISTRY[self.name].options if self.name in _REGISTRY else {}
        changed = {k: v for k, v in self.options.items() if defaults.get(k) != v}
        if not changed:
            return self.name
        return self.name + "(" + ",".join(f"{k}={v}" for k, v in sorted(changed.items())) + ")"

    @property
    def reads_history(self) -> bool:
        """Whether the value at t depends on the points before t (sums, windows of E > 1, EMAs): such
        an estimator needs every epoch 1..t, where a pointwise one (ValAcc, SoTL-E with E = 1) takes
        any recorded epochs."""
        pointwise = self.fn in (curves.value_at, curves.last_epoch_sum) or (self.fn is curves.window_sum and self.options.get("E") == 1)
        return self.level != "static" and not pointwise

    def with_options(self, **options: Any) -> Estimator:
        """A copy with ``options`` set; their values are checked now, not when data reaches the estimator."""
        unknown = set(options) - set(self.options)
        if unknown:
            raise HarnessError(
                f"estimator {self.name} has no option {sorted(unknown)[0]!r}; options: {sorted(self.options) or 'none'}"
            )
        out = replace(self, options={**self.options, **options})
        if options and out.level != "static":
            try:  # the curve estimators with options read one curve [..., T]; a two-point curve checks them
                out.fn(np.zeros((1, 2)), **out.options)
            except HarnessError as err:
                raise HarnessError(f"estimator {out.name}: {err}") from None
        return out

    def __call__(self, *inputs: np.ndarray) -> np.ndarray:
        """Compute from arrays given in the order of ``inputs``."""
        if len(inputs) != len(self.inputs):
            raise HarnessError(f"{self.name} takes {len(self.inputs)} inputs {self.inputs}, got {len(inputs)}")
        return np.asarray(self.fn(*inputs, **self.options), dtype=np.float64)

    def compute(self, signals: Mapping[str, np.ndarray]) -> np.ndarray:
        """Compute from a mapping signal name -> array; raises naming a missing signal."""
        missing = [s for s in self.inputs if s not in signals]
        if missing:
            raise NotAvailableError(f"not available: {self.name} needs {missing[0]!r}; given: {sorted(signals)}")
        return self(*(signals[s] for s in self.inputs))


def _static(values: np.ndarray) -> np.ndarray:
    """A static estimator's score is the recorded value itself: score(a) = v(a), one per architecture.

    The values are the benchmark's parameter count or FLOPs, or a zero-cost proxy's score as NASLib
    computed it at initialisation (NAS-Bench-Suite-Zero, Krishnakumar et al. 2022): grad_norm, snip
    (Lee et al. 2019), grasp (Wang et al. 2020), fisher (Turner et al. 2020), synflow (Tanaka et al.
    2020) and jacov as collected by Abdelfattah et al. 2021; nwot (Mellor et al. 2021), epe_nas (Lopes
    et al. 2021), zen (Lin et al. 2021), l2_norm and plain (NASLib baselines). All are ranked higher is
    better, NASLib's orientation; params and FLOPs are the size baselines of the same paper.
    """
    return np.asarray(values, dtype=np.float64).copy()


_REGISTRY: dict[str, Estimator] = {}


def register(estimator: Estimator) -> Estimator:
    """Add an estimator to the registry (names are case-insensitive and unique)."""
    if estimator.name.lower() in {k.lower() for k in _REGISTRY}:
        raise HarnessError(f"estimator {estimator.name!r} is already registered")
    _REGISTRY[estimator.name] = estimator
    return estimator


def _curve(name: str, fn: Callable[..., np.ndarray], signal: str, higher: bool, doc: str, level: Level = "curve", **options: Any) -> None:
    register(Estimator(name, fn, (signal,), higher, level, doc, dict(options)))


_curve("SoTL", curves.last_epoch_sum, "train_loss", False,
       "sum of training losses over the last epoch, t (the thesis's SoTL, Sec. 3.1; = SoTL-E with E = 1)")
_curve("SoTL-all", curves.cumulative_sum, "train_loss", False, "sum of training losses over all epochs 1..t (Ru et al.'s SoTL)")
_curve("SoTL-E", curves.window_sum, "train_loss", False, "sum of training losses over the last E epochs", E=1)
_curve("SoTL-EMA", curves.moving_average, "train_loss", False, "EMA of training losses (variant: ema|ema-sum|discounted)", variant="ema", mu=None)
_curve("SoVL", curves.cumulative_sum, "val_loss", False, "sum of validation losses over epochs 1..t")
_curve("SoVL-E", curves.window_sum, "val_loss", False, "sum of validation losses over the last E epochs", E=1)
_curve("ValAcc", curves.value_at, "val_acc", True, "validation accuracy at epoch t")
_curve("ValLoss", curves.value_at, "val_loss", False, "validation loss at epoch t")
_curve("TrainLoss", curves.value_at, "train_loss", False, "training loss at epoch t")
_curve("TrainAcc", curves.value_at, "train_acc", True, "training accuracy at epoch t")
_curve("TLMini", curves.value_at, "minibatch_train_loss", False, "training loss of the minibatch at step t", level="step")
_curve("ValAccMini", curves.value_at, "minibatch_val_acc", True, "accuracy on one validation minibatch after step t", level="step")
# Direction of SoG/SoGN: larger (more consistent) gradients mean faster learning, the convention of the
# gradient-norm zero-cost proxy (Abdelfattah et al. 2021). The thesis's own direction for them is not
# stated in the material this was built from; pass a negated score if yours differs.
_curve("SoG", curves.sum_of_gradients_l1, "grads", True, "L1 norm of the gradient summed over steps 1..t", level="step")
_curve("SoGN", curves.sum_of_gradient_norms, "grad_l1", True, "sum over steps 1..t of each step's gradient L1 norm (thesis)", level="step")
_curve("SoGN-L2", curves.sum_of_gradient_norms, "grad_l2", True, "sum over steps 1..t of each step's gradient L2 norm", level="step")
register(Estimator("Params", _static, ("params",), True, "static", "number of parameters (more is better, NAS-Bench-Suite-Zero baseline)"))
register(Estimator("FLOPs", _static, ("flops",), True, "static", "floating point operations (more is better, NAS-Bench-Suite-Zero baseline)"))
for _proxy in ZERO_COST_PROXIES:
    register(Estimator(_proxy, _static, (f"zc:{_proxy}",), True, "static", f"zero-cost proxy {_proxy} (NASLib score; higher is better)"))


def estimator_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def get_estimator(spec: str | Mapping[str, Any] | Estimator, **options: Any) -> Estimator:
    """An estimator by name (case-insensitive), with options.

    ``spec`` is a name (``"SoTL-E"``), a name with options (``"SoTL-E(E=3)"``,
    ``"SoTL-EMA(variant=ema-sum,mu=0.99)"``), a mapping ``{"name": ..., **options}`` (TOML inline
    tables), or an :class:`Estimator`.
    """
    if isinstance(spec, Estimator):
        return spec.with_options(**options) if options else spec
    if isinstance(spec, Mapping):
        spec = dict(spec)
        if "name" not in spec:
            raise HarnessError(f"an estimator table needs a 'name' key, got {sorted(spec)}")
        name = str(spec.pop("name"))
        return get_estimator(name, **spec, **options)
    text = str(spec).strip()
    if text.endswith(")") and "(" in text:
        text, _, inner = text[:-1].partition("(")
        for item in filter(None, (p.strip() for p in inner.split(","))):
            key, sep, raw = item.partition("=")
            if not sep:
                raise HarnessError(f"estimator option {item!r} in {spec!r} must read key=value")
            options.setdefault(key.strip(), _parse_value(raw.strip()))
    by_lower = {k.lower(): v for k, v in _REGISTRY.items()}
    estimator = by_lower.get(text.strip().lower())
    if estimator is None:
        raise choices("estimator", text, _REGISTRY)
    return estimator.with_options(**options) if options else estimator


def _parse_value(raw: str) -> Any:
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return None if raw.lower() == "none" else raw


def benchmark_title(bench: Benchmark) -> str:
    return BENCHMARK_TITLES.get(bench.name, bench.name)


def required_columns(
    estimator: Estimator,
    bench: Benchmark,
    dataset: str,
    schedule: str | int | None = None,
    splits: Mapping[str, str] | None = None,
) -> dict[str, Column]:
    """The benchmark column behind each input signal of ``estimator`` (the one path every runner uses).

    ``splits`` overrides the split used for a role, e.g. ``{"val": "ori-test"}``. Raises
    :class:`NotAvailableError` naming what the benchmark lacks; never substitutes another signal.
    """
    caps = bench.capabilities()
    title = benchmark_title(bench)
    if dataset not in caps.datasets:
        raise choices(f"dataset for {bench.name}", dataset, caps.datasets)
    columns = [c for c in caps.columns if c.dataset == dataset]
    if schedule is not None:
        schedule = str(schedule)
        if schedule not in {c.schedule for c in columns}:
            raise caps.unknown(f"schedule for {bench.name} {dataset}", schedule, sorted({c.schedule for c in columns}))
    out: dict[str, Column] = {}
    for signal in estimator.inputs:
        if signal in STEP_SIGNALS:
            raise NotAvailableError(
                f"not available: {estimator.name} needs step-level logs ({STEP_SIGNALS[signal]}), which {title} "
                "does not record; compute it from a finetuning run's logs"
            )
        if signal in CURVE_SIGNALS:
            out[signal] = _curve_column(estimator, signal, columns, schedule, splits or {}, title, dataset, bench)
        else:
            out[signal] = _static_column(estimator, signal, columns, schedule, title, dataset)
    return out


def role_column(
    bench: Benchmark,
    dataset: str,
    schedule: str | int | None,
    role: str,
    metric: str,
    splits: Mapping[str, str] | None = None,
) -> Column:
    """The column of a role (``train``, ``val``, ``test``) and metric (``loss``, ``acc``).

    The split is ``splits[role]`` when given, else the first of :data:`SPLIT_CANDIDATES` the
    benchmark has. Raises :class:`NotAvailableError` naming what the benchmark has instead.
    """
    if role not in SPLIT_CANDIDATES:
        raise choices("split role", role, SPLIT_CANDIDATES)
    if metric not in METRIC_CANDIDATES:
        raise choices("metric kind", metric, METRIC_CANDIDATES)
    caps = bench.capabilities()
    schedule = None if schedule in (None, "") else str(schedule)
    columns = [c for c in caps.columns if c.dataset == dataset and (schedule is None or c.schedule == schedule)]
    wanted = (splits[role],) if splits and role in splits else SPLIT_CANDIDATES[role]
    for split in wanted:
        for name in METRIC_CANDIDATES[metric]:
            found = [c for c in columns if c.split == split and c.metric == name]
            if len(found) > 1:
                raise HarnessError(f"{benchmark_title(bench)} {dataset} has several schedules for {split}/{name}; choose one (schedule=... in Python, --schedule on the command line)")
            if found:
                return found[0]
    for absence in caps.absent:  # the benchmark's own word on why, where it has one
        if any(absence.matches(split, name) for split in wanted for name in METRIC_CANDIDATES[metric]):
            raise NotAvailableError(absence.message, recorded_nowhere=True)
    where = dataset + (f" (schedule {schedule})" if schedule is not None else "")
    have = sorted({f"{c.split}/{c.metric}" for c in columns})
    word = {"train": "training", "val": "validation", "test": "test"}[role] + {"loss": " losses", "acc": " accuracies"}[metric]
    raise NotAvailableError(
        f"not available: {benchmark_title(bench)} records no {word} for {where} "
        f"(splits tried: {', '.join(wanted)}); it has: {', '.join(have) or 'nothing'}"
    )


def _curve_column(
    estimator: Estimator, signal: str, columns: list[Column], schedule: str | None,
    splits: Mapping[str, str], title: str, dataset: str, bench: Benchmark,
) -> Column:
    role, metric = CURVE_SIGNALS[signal]
    try:
        column = role_column(bench, dataset, schedule, role, metric, splits)
    except NotAvailableError as err:
        raise NotAvailableError(f"{err} (needed by {estimator.name})", err.recorded_nowhere) from None
    if len(column.epochs) < 2:
        raise NotAvailableError(
            f"not available: {title} records {SIGNAL_WORDS[signal]} of {column} only at epoch(s) "
            f"{list(column.epochs)}, not per epoch (needed by {estimator.name})"
        )
    if estimator.reads_history and column.epochs != tuple(range(1, len(column.epochs) + 1)):
        raise NotAvailableError(
            f"not available: {estimator.name} combines every epoch 1..t, but {title} records "
            f"{SIGNAL_WORDS[signal]} of {column} only at epochs {list(column.epochs)}; a pointwise "
            "estimator (ValAcc, ValLoss, TrainAcc, TrainLoss) reads those epochs"
        )
    return column


def _static_column(estimator: Estimator, signal: str, columns: list[Column], schedule: str | None, title: str, dataset: str) -> Column:
    metric = signal.removeprefix("zc:")
    found = [c for c in columns if c.metric == metric and not c.epochs]
    preferred = [c for c in found if c.schedule == schedule] or found
    if preferred:
        return preferred[0]
    what = SIGNAL_WORDS.get(signal, f"zero-cost proxy {metric!r}")
    hint = "; the NASLib zero-cost tables are in harness.zerocost" if signal.startswith("zc:") else ""
    raise NotAvailableError(f"not available: {title} records no {what} for {dataset} (needed by {estimator.name}){hint}")
