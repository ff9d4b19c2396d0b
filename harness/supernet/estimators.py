"""The estimators a weight-sharing run reports, read off its per-step finetuning logs (torch-free).

A report names estimators by the thesis's names (``report.estimators``); each reads one column of
the finetuning log (:mod:`harness.supernet.finetune`) through one registry estimator
(:mod:`harness.metrics`):

================  =================================================  ============================
estimator         value at step t (from the per-step log)            registry entry used
================  =================================================  ============================
SoTL              sum of the minibatch training losses of steps 1..t  ``SoTL-all`` on ``train_loss``
                  (the thesis's SoTL sums over the last epoch, and
                  finetuning is one epoch: the steps so far)
SoTL-E(E=k)       sum of the last k minibatch training losses         ``SoTL-E`` on ``train_loss``
SoTL-EMA          moving average of the minibatch training losses     ``SoTL-EMA`` on ``train_loss``
TLMini            one training minibatch's loss at the weights of t   ``TLMini`` on ``tl_mini``
ValAccMini        one validation minibatch's accuracy at t            ``ValAccMini``
ValAcc            whole-validation accuracy at t (every 100 steps)    ``ValAcc`` on ``val_acc``
ValLoss           whole-validation loss at t (every 100 steps)        ``ValLoss`` on ``val_loss``
SoG               ||g_1 + ... + g_t||_1                               direction of ``SoG``; value
                                                                      logged during finetuning
SoGN              sum over s <= t of ||g_s||_1 (thesis: L1)           ``SoGN`` on ``grad_l1``
SoGN-L2           sum over s <= t of ||g_s||_2 (the thesis code)      ``SoGN-L2`` on ``grad_l2``
================  =================================================  ============================

SoG's registry function takes whole gradient vectors per step ([steps, params], about 1.5 M x 300
floats per arch); the finetuner accumulates the sum on the device instead and logs its L1 norm,
which is the same quantity. The config checks its estimators here when it loads
(:func:`check_estimators`), so a typo is refused before any training.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from harness.errors import HarnessError
from harness.metrics import Estimator, get_estimator

if TYPE_CHECKING:  # the config imports this module
    from harness.supernet.config import WSConfig

# report name -> (registry estimator, log column); see the table in the module docstring
ESTIMATORS: dict[str, tuple[str, str]] = {
    "SoTL": ("SoTL-all", "train_loss"),
    "SoTL-E": ("SoTL-E", "train_loss"),
    "SoTL-EMA": ("SoTL-EMA", "train_loss"),
    "TLMini": ("TLMini", "tl_mini"),
    "ValAccMini": ("ValAccMini", "val_acc_mini"),
    "ValAcc": ("ValAcc", "val_acc"),
    "ValLoss": ("ValLoss", "val_loss"),
    "SoG": ("SoG", "grad_sum_l1"),
    "SoGN": ("SoGN", "grad_l1"),
    "SoGN-L2": ("SoGN-L2", "grad_l2"),
}
# columns that step t's update writes (its minibatch loss, its gradient): empty at step 0
UPDATE_COLUMNS = ("train_loss", "grad_l1", "grad_l2", "grad_sum_l1")
EVALUATION_COLUMNS = ("val_acc", "val_loss")  # the whole validation split: at step 0 and every eval_every steps


def base_name(spec: str) -> str:
    """``"SoTL-E"`` of ``"SoTL-E(E=50)"``."""
    return str(spec).split("(")[0].strip()


def ws_estimator(spec: str) -> Estimator:
    """The registry estimator of a ``report.estimators`` entry: a name, or a name with options
    (``"SoTL-E(E=50)"``: the sum of the last 50 minibatch losses). Raises naming the valid names."""
    base = base_name(spec)
    if base not in ESTIMATORS:
        raise HarnessError(f"estimator {spec!r} is not computed from finetuning logs; valid: {', '.join(ESTIMATORS)} "
                           "(with options, e.g. SoTL-E(E=50))")
    return get_estimator(ESTIMATORS[base][0] + str(spec).strip()[len(base):])


def log_column(spec: str) -> str:
    """The finetuning-log column ``spec`` reads (validating its name and options)."""
    ws_estimator(spec)
    return ESTIMATORS[base_name(spec)][1]


def over_updates(spec: str) -> bool:
    """Whether the estimator reads what the finetuning updates log (losses and gradients of steps
    1..t): SoTL, SoTL-E, SoTL-EMA, SoG, SoGN, SoGN-L2. Those start at step 1 and Table 4.1 reports them
    after ``report.sum_step`` steps; the others are defined at step 0 (inherited weights)."""
    return log_column(spec) in UPDATE_COLUMNS


def table_step(cfg: WSConfig, name: str) -> int:
    """Table 4.1's step: estimators of the updates (:func:`over_updates`) after ``report.sum_step``
    steps, ValAccMini at ``report.val_mini_step`` (after the first update, where the thesis code
    measures it), the rest at ``report.other_step``."""
    if over_updates(name):
        return cfg.report.sum_step
    return cfg.report.val_mini_step if base_name(name) == "ValAccMini" else cfg.report.other_step


def check_estimators(cfg: WSConfig) -> None:
    """``report.estimators`` are distinct, known (:func:`ws_estimator`), and each is logged at the
    step Table 4.1 reports it at (:func:`table_step`); raises HarnessError naming what is wrong."""
    specs = list(cfg.report.estimators)
    if not specs or len(set(specs)) != len(specs):
        raise HarnessError(f"report.estimators must be distinct and at least one, got {specs}")
    for spec in specs:
        step = table_step(cfg, spec)
        if log_column(spec) in EVALUATION_COLUMNS and step % cfg.finetune.eval_every:
            raise HarnessError(f"{spec} is measured at step 0 and every {cfg.finetune.eval_every} steps "
                               f"(finetune.eval_every), not at step {step}, where the table reports it "
                               "(report.other_step)")


def estimator_scores(logs: pd.DataFrame, indices: Sequence[int], spec: str) -> tuple[np.ndarray, np.ndarray, bool]:
    """``(steps, scores[steps, archs], higher_is_better)`` of estimator ``spec`` from the logs, archs in
    the order of ``indices`` (their ``arch_index``).

    Only steps where the estimator is defined for every arch are returned (ValAcc, ValLoss: the
    evaluation steps; SoTL, SoTL-E, SoTL-EMA, SoG, SoGN: t >= 1).
    """
    estimator, column = ws_estimator(spec), log_column(spec)
    wide = logs.pivot(index="step", columns="arch_index", values=column)[list(indices)]
    steps = wide.index.to_numpy()
    values = wide.to_numpy(dtype=np.float64).T  # [archs, steps]
    first = 1 if column in UPDATE_COLUMNS else 0
    values, steps = values[:, steps >= first], steps[steps >= first]
    if estimator.name != "SoG":  # SoG's value ||g_1 + ... + g_t||_1 is logged directly
        values = estimator(values)
    defined = ~np.isnan(values).any(axis=0)
    return steps[defined], values[:, defined].T, estimator.higher_is_better
