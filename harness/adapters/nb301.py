"""NAS-Bench-301 (DARTS space) behind the shared query interface: surrogate predictions, not records.

NAS-Bench-301 has no table: its ~1.08e18 architectures are scored by surrogate models fitted to about
60k real training runs. Two backends, one interface:

* **Backend A (default, embedded)**: YAHPO Gym's ONNX surrogate of the NB301 learning curves
  (``harness/embedded/nb301``), run with onnxruntime. Per architecture and epoch 1..98 it predicts
  validation accuracy, validation cross-entropy and runtime. The (arch, epoch) rows of a query go
  through the session in batches of 8,192 rows (350 archs x 98 epochs = 5 calls), not one by one. Columns (dataset ``cifar10``, schedule ``"98"``):

  - ``valid/accuracy``: validation accuracy in **percent** (the model outputs a fraction; x 100,
    not clipped);
  - ``valid/loss``: validation cross-entropy;
  - ``train/time``: YAHPO's ``runtime`` target, seconds of training up to epoch t.

* **Backend B (optional)**: the official ``nasbench301`` ensembles (``xgb`` for performance,
  ``lgb_runtime`` for runtime) when the package is importable and ``nb_models=`` names the folder the
  official downloader writes (``xgb_v1.0/``, ``lgb_runtime_v1.0/``). It adds the columns
  ``cifar10/100/valid/accuracy`` (final validation accuracy, percent, of the 100-epoch NB301 training
  protocol) and ``cifar10/100/train/time`` (total runtime, seconds), without an epoch axis.
  Noise is off by default (the ensemble mean). With ``noise=True`` the official noise model is used
  (mean + N(0, std of the members' predictions)) but drawn from the ``rng`` Generator you pass.
  Loading the official models reseeds numpy's global RNG (``SurrogateModel.__init__`` calls
  ``np.random.seed``); this adapter saves and restores numpy's, Python's and torch's global RNG state
  around loading and predicting, so the caller's state is untouched.

No seeds: neither model exposes training seeds, so every column has ``seeds == ()``. No training
loss and no test accuracy: SoTL/TLMini raise :class:`NotAvailableError`, and the ground truth of
NB301 experiments is the surrogate's *final validation accuracy* (``cifar10/98/valid/accuracy`` at
epoch 98, or ``cifar10/100/valid/accuracy`` from the official ensemble).

Architectures: rows are canonical DARTS encodings ``int8 [n, 32]`` (:mod:`harness.spaces.darts`);
``resolve`` accepts genotypes, genotype strings, NB301 config dicts, NASLib compact archs or
encodings, one or many. ``sample(n, seed)`` draws uniformly from the whole space.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from harness.benchmark import Absence, Benchmark, Capabilities, Column
from harness.errors import HarnessError
from harness.spaces import darts

NAME = "nb301"
DATASET = "cifar10"
SCHEDULE = "98"
EPOCHS: tuple[int, ...] = tuple(range(1, 99))
ENSEMBLE_SCHEDULE = "100"
MODEL_FILE = "model_v2.onnx"
ENCODING_FILE = "encoding_v2.json"

NO_TRAIN_LOSS = (
    "not available: NAS-Bench-301 records no training losses (nor training accuracies: neither the "
    "YAHPO surrogate nor the official ensemble predicts them), so SoTL, SoTL-E, SoTL-EMA and TLMini cannot be computed; "
    "use SoVL, ValLoss or ValAcc (split='valid')"
)
NO_TEST = (
    "not available: NAS-Bench-301 has no test accuracy; its ground truth is the surrogate's final "
    "validation accuracy (split='valid', metric='accuracy')"
)

# YAHPO output columns (nb301 y_names): val_accuracy, val_cross_entropy, runtime, runtime_increase
_OUTPUT = {"accuracy": 0, "loss": 1, "time": 2}
N_OUTPUTS = 4
# Rows per onnxruntime call: the model's activations for 34,300 rows at once peak near 0.5 GB; chunks
# of 8,192 rows keep the peak near 0.2 GB at the same speed (benchmarks/bench_nb301.py).
ROWS_PER_CALL = 8192
_SCALE = {"accuracy": 100.0, "loss": 1.0, "time": 1.0}


def _columns_a() -> tuple[Column, ...]:
    return (
        Column(DATASET, SCHEDULE, "valid", "accuracy", (), EPOCHS, False,
               "YAHPO ONNX surrogate: predicted validation accuracy after t epochs, percent (model fraction x 100)"),
        Column(DATASET, SCHEDULE, "valid", "loss", (), EPOCHS, True,
               "YAHPO ONNX surrogate: predicted validation cross-entropy after t epochs"),
        Column(DATASET, SCHEDULE, "train", "time", (), EPOCHS, True,
               "YAHPO ONNX surrogate: predicted runtime in seconds up to epoch t (YAHPO target 'runtime')"),
    )


def _columns_b() -> tuple[Column, ...]:
    return (
        Column(DATASET, ENSEMBLE_SCHEDULE, "valid", "accuracy", (), (), False,
               "official nasbench301 xgb ensemble: predicted final validation accuracy, percent"),
        Column(DATASET, ENSEMBLE_SCHEDULE, "train", "time", (), (), True,
               "official nasbench301 lgb_runtime ensemble: predicted total training runtime, seconds"),
    )


_NOTES = (
    "surrogate predictions, not recorded runs: backend A = YAHPO Gym ONNX surrogate of the NB301 learning curves",
    "no training seeds: the surrogates expose none, so every column has seeds=()",
    "NAS-Bench-301 records no training losses: SoTL and TLMini are not available",
    "no test accuracy: the ground truth is the surrogate's final validation accuracy "
    "(cifar10/98/valid/accuracy at epoch 98, or cifar10/100/valid/accuracy from the official ensemble)",
    "architectures are unindexed (~1.08e18): rows are canonical 32-integer DARTS encodings; use sample(n, seed)",
)


class OnnxSurrogate:
    """Backend A: YAHPO's ONNX model, one session call per 8,192 (arch, epoch) rows."""

    def __init__(self, model_dir: str | Path | None, threads: int | None = None):
        import onnxruntime as ort

        base = resources.files("harness.embedded") / "nb301" if model_dir is None else Path(model_dir)
        model_path, encoding_path = Path(str(base / MODEL_FILE)), Path(str(base / ENCODING_FILE))
        for path in (model_path, encoding_path):
            if not path.is_file():
                raise HarnessError(
                    f"{path} not found: an NB301 YAHPO model directory holds {MODEL_FILE} and {ENCODING_FILE} "
                    "(yahpo_data v2 'nb301' folder); pass root=None for the embedded copy"
                )
        try:
            darts.check_onnx_codes(json.loads(encoding_path.read_text()))
        except json.JSONDecodeError as exc:
            raise HarnessError(f"{encoding_path} is not valid JSON: {exc}") from None
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for corrupt files
            raise HarnessError(f"{model_path} is not a loadable ONNX model: {exc}") from None
        names = [i.name for i in self.session.get_inputs()]
        if names != ["x_cat", "x_cont"] or self.session.get_inputs()[0].shape[1] != darts.ONNX_LENGTH:
            raise HarnessError(f"{model_path} is not YAHPO's NB301 model: inputs {names}, expected x_cat [B, 34], x_cont [B, 1]")
        self.source = str(model_path)
        self._cache: tuple[bytes, tuple[int, ...], np.ndarray] | None = None

    def outputs(self, encodings: np.ndarray, epochs: tuple[int, ...]) -> np.ndarray:
        """Raw model outputs ``float32 [n, len(epochs), 4]``; the last result is kept for the next metric."""
        key = encodings.tobytes()
        if self._cache is not None and self._cache[0] == key and self._cache[1] == epochs:
            return self._cache[2]
        n, e = len(encodings), len(epochs)
        x_cat = np.repeat(darts.encodings_to_onnx(encodings), e, axis=0)
        x_cont = np.tile(np.asarray(epochs, dtype=np.float32), n)[:, None]
        out = np.empty((n * e, N_OUTPUTS), dtype=np.float32)
        for start in range(0, n * e, ROWS_PER_CALL):
            stop = start + ROWS_PER_CALL
            out[start:stop] = self.session.run(None, {"x_cat": x_cat[start:stop], "x_cont": x_cont[start:stop]})[0]
        self._cache = (key, epochs, out.reshape(n, e, N_OUTPUTS))
        return self._cache[2]


@contextmanager
def preserved_global_rng() -> Iterator[None]:
    """Restore numpy's, Python's and (if loaded) torch's global RNG state on exit."""
    np_state, py_state = np.random.get_state(), random.getstate()
    torch = sys.modules.get("torch")
    torch_state = torch.random.get_rng_state() if torch is not None else None
    try:
        yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
        torch = sys.modules.get("torch")
        if torch is not None and torch_state is not None:
            torch.random.set_rng_state(torch_state)


@dataclass
class OfficialEnsemble:
    """Backend B: the official nasbench301 performance and runtime ensembles."""

    performance: Any  # nasbench301.api.SurrogateAPI
    runtime: Any
    fixed_hyperparameters: dict[str, Any]
    noise: bool
    rng: np.random.Generator | None  # required when noise is on
    source: str

    def predict(self, metric: str, encodings: np.ndarray) -> np.ndarray:
        api = self.performance if metric == "accuracy" else self.runtime
        out = np.empty(len(encodings), dtype=np.float64)
        with preserved_global_rng():
            for i, enc in enumerate(_progress(encodings, f"nasbench301 {metric}")):
                config = darts.encoding_to_config(enc)
                if self.noise:
                    members = np.asarray(api.model.query_members({**self.fixed_hyperparameters, **config}), dtype=float)
                    out[i] = members.mean() + self.rng.normal(0.0, members.std())
                else:
                    out[i] = float(np.asarray(api.predict(config=config, representation="configspace", with_noise=False)).ravel()[0])
        return out


def _progress(items: np.ndarray, desc: str) -> Any:
    if len(items) < 200:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="arch")


class NB301Benchmark(Benchmark):
    """NB301 surrogate predictions; rows are canonical DARTS encodings."""

    name = NAME

    def __init__(self, surrogate: OnnxSurrogate, ensemble: OfficialEnsemble | None = None):
        self.surrogate = surrogate
        self.ensemble = ensemble
        columns = _columns_a() + (_columns_b() if ensemble is not None else ())
        sources = f"backend A: {surrogate.source}" + (f"; backend B: {ensemble.source}" if ensemble else "")
        self._caps = Capabilities(NAME, columns, None, _NOTES + (sources,), absent=_ABSENT)

    def capabilities(self) -> Capabilities:
        return self._caps

    def resolve(self, archs: Any) -> np.ndarray:
        if isinstance(archs, (int, np.integer)):
            raise HarnessError(
                f"NB301 has no architecture index (got {archs!r}): pass a genotype, an NB301 config dict, a NASLib "
                "compact arch or a 32-integer encoding, or draw archs with sample(n, seed)"
            )
        return darts.to_encodings(archs)

    def arch_label(self, row: Any) -> str:
        return str(darts.encoding_to_genotype(row))

    def sample(self, n: int, seed: int | np.random.Generator, with_data: bool = False) -> np.ndarray:
        """``n`` distinct architectures drawn uniformly from the whole space, as encodings ``[n, 32]``
        (the surrogate scores every arch, so ``with_data`` changes nothing)."""
        return darts.sample_encodings(n, seed)

    def _read(self, column: Column, rows: np.ndarray, seed_pos: np.ndarray, epoch_pos: np.ndarray) -> np.ndarray:
        if column.schedule == ENSEMBLE_SCHEDULE:
            assert self.ensemble is not None
            return self.ensemble.predict(column.metric, rows)[:, None, None]
        epochs = tuple(column.epochs[int(p)] for p in epoch_pos)
        raw = self.surrogate.outputs(rows, epochs)[:, :, _OUTPUT[column.metric]]
        return (raw.astype(np.float64) * _SCALE[column.metric])[:, None, :]


_ABSENT = (
    Absence(NO_TRAIN_LOSS, metric="loss", split="train"),
    Absence(NO_TRAIN_LOSS, metric="accuracy", split="train"),
    *(Absence(NO_TEST, split=split) for split in ("test", "ori-test", "x-test")),
)


def load_official_ensemble(
    nb_models: Path,
    version: str = "1.0",
    noise: bool = False,
    rng: np.random.Generator | None = None,
) -> OfficialEnsemble:
    """Load ``xgb_v{version}`` and ``lgb_runtime_v{version}`` from ``nb_models`` with nasbench301.

    Global RNG states are restored after loading. ``noise=True`` requires ``rng`` (a Generator).
    """
    if noise and not isinstance(rng, np.random.Generator):
        raise HarnessError("noise=True draws the NB301 ensemble noise from a Generator: pass rng=np.random.default_rng(seed)")
    if not noise and rng is not None:
        raise HarnessError("rng= is only used with noise=True; the noise-free ensemble mean is deterministic")
    try:
        import nasbench301
        import nasbench301.api as nb_api
    except ImportError as exc:
        raise HarnessError(
            f"backend B needs the official nasbench301 package ({exc}); see the README section "
            "'NAS-Bench-301 (DARTS space, surrogate)', paragraph 'Official ensemble (optional)', or drop nb_models= to use the embedded surrogate"
        ) from None
    nb_models = Path(nb_models)
    dirs = {kind: nb_models / f"{kind}_v{version}" for kind in ("xgb", "lgb_runtime")}
    missing = [str(p) for p in dirs.values() if not p.is_dir()]
    if missing:
        raise HarnessError(
            f"{nb_models} is not a nasbench301 models folder for version {version}: missing {missing}; "
            "it should hold xgb_v{version}/ and lgb_runtime_v{version}/ as written by nasbench301.download_models"
        )
    with preserved_global_rng():
        performance = nasbench301.load_ensemble(str(dirs["xgb"]))
        runtime = nasbench301.load_ensemble(str(dirs["lgb_runtime"]))
    return OfficialEnsemble(
        performance, runtime, dict(nb_api.fixed_hyperparameters), noise, rng, f"nasbench301 v{version} at {nb_models}"
    )


def open_benchmark(
    root: str | Path | None,
    nb_models: str | Path | None = None,
    version: str = "1.0",
    noise: bool = False,
    rng: np.random.Generator | None = None,
    threads: int | None = None,
) -> NB301Benchmark:
    """Open NB301: ``root`` = a folder with YAHPO's ``model_v2.onnx`` + ``encoding_v2.json`` (None: embedded).

    ``nb_models`` adds backend B (official ensemble; needs the ``nasbench301`` package). ``threads``
    sets onnxruntime's intra-op threads (default: all cores).
    """
    surrogate = OnnxSurrogate(root, threads)
    ensemble = None
    if nb_models is not None:
        ensemble = load_official_ensemble(Path(nb_models), version, noise, rng)
    elif noise or rng is not None:
        raise HarnessError("noise=/rng= apply to the official ensemble only: pass nb_models= too (backend A is deterministic)")
    return NB301Benchmark(surrogate, ensemble)
