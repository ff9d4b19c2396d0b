"""The search loop: epochs of blocks (:func:`harness.search.algorithms.search_block`), per-epoch
checkpoints, exact resume, and the per-epoch log of the derived arch.

Epoch e draws its minibatches from ``harness.rng.stream(SEARCH, seed, e, sub_stream)``: the training
split's sample order and augmentation (sub-streams 0, 1) and the validation split's (2, 3); the seeds
of DrNAS's Dirichlet samples come from sub-stream 4 (``state.draws``, one seed per forward pass in the
order the blocks run them; :mod:`harness.search.algorithms`). All are a pure function of (seed,
epoch); nothing else in the loop is random. An epoch has ``steps = len(train) // batch_size``
training minibatches in ``steps // n`` blocks of ``n`` (n = ``search.unroll_steps`` for SoTL-/SoVL-DARTS
and SoTL-DrNAS, else 1); the last ``steps mod n`` minibatches of an epoch are not used. Block b's
algorithm reads validation minibatches ``n b + 1 .. n b + n`` of a sequence of augmented validation
minibatches, one shuffle of the validation split after another (NB201's search data augments both
halves alike). The weights' lr is cosine-annealed per minibatch, ``lr_t = lr_min + (lr - lr_min) (1 +
cos(pi t / S)) / 2`` over all S used minibatches of the search (:func:`harness.supernet.train.cosine_lr`).

After every epoch the state (weights and BN statistics, alpha, both optimizers' states, of GAEA's
exponentiated gradient only its settings, the epochs done, the log) is written atomically to
``search-seed{seed}.pt`` and the log to ``search-seed{seed}.json``: per epoch the derived arch and its
truth, skip and parameter-free op counts and cell depth (the search space's
:meth:`~harness.search.spaces.SearchSpace.describe` of the derivation weights ``op_weights``,
:data:`~harness.search.algorithms.DERIVATION`), the mean architecture-objective and training losses,
every ``eigenvalue_every`` epochs the dominant eigenvalue of the architecture Hessian
(``hessian_eigenvalue``, ``eigenvalue_iterations``: power iteration at the epoch's final weights on the
epoch's first architecture minibatch (validation; GAEA ERM's, training), or its first training minibatch for the
unrolled algorithms that read no validation data, as the thesis tracks SoTL-DARTS's training loss; start vector from
sub-stream 5) and
the seconds taken (the eigenvalue's included). Resuming loads the checkpoint and replays the same streams, so
a killed search ends with the state an uninterrupted one reaches (bit for bit on a deterministic device
with the same thread count). The weights and alpha are drawn from torch seeded by the seed inside
``torch.random.fork_rng`` (the network first, then ``alpha = arch_init_std * N(0, 1)`` on its real entries, in
the order of the space's own code, :meth:`~harness.search.spaces.SearchSpace.draw_alpha`, padding 0; GAEA's alpha is
not drawn but uniform on each edge's simplex, :mod:`harness.search.config`), the caller's RNG
untouched. The architecture optimizer is Adam (weight decay ``drnas_reg_scale`` for DrNAS and
SoTL-DrNAS, else ``arch_weight_decay``), or GAEA's
:class:`~harness.search.algorithms.ExponentiatedGradient` at ``gaea_lr``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness import rng
from harness.atomic import write_atomic
from harness.benchmark import Benchmark
from harness.data.loader import DeviceImages
from harness.errors import HarnessError
from harness.experiments.executors import Report, no_report
from harness.search.algorithms import DERIVATION, MIXINGS, Batch, ExponentiatedGradient, SearchState, mixed_loss, search_block
from harness.search.config import MIXING, SINGLE_LEVEL, TRAINING_ONLY, SearchConfig, SearchSettings, changed_search_settings
from harness.search.diagnostics import dominant_hessian_eigenvalue
from harness.search.layout import checkpoint_path, log_path
from harness.search.spaces import SearchSpace, get_search_space
from harness.supernet.train import cosine_lr

STREAM_TRAIN_ORDER, STREAM_TRAIN_AUGMENT, STREAM_VALID_ORDER, STREAM_VALID_AUGMENT, STREAM_MIXING, STREAM_EIGENVECTOR = range(6)


def init_state(cfg: SearchConfig, seed: int, device: torch.device, dtype: torch.dtype = torch.float32) -> SearchState:
    """Fresh weights and alpha from ``seed`` (module docstring) and both optimizers (config docstring)."""
    s, space = cfg.search, get_search_space(cfg.space)
    mask = space.alpha_mask(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = space.build_network(cfg)
        alpha = _initial_alpha(s, space, cfg, mask)
    net = net.to(device=device, dtype=dtype)
    alpha = alpha.to(device=device, dtype=dtype).requires_grad_()
    w_optimizer = torch.optim.SGD(net.parameters(), lr=s.lr, momentum=s.momentum, nesterov=s.nesterov, weight_decay=s.weight_decay)
    return SearchState(space=space, net=net, alpha=alpha, w_optimizer=w_optimizer, a_optimizer=_arch_optimizer(alpha, s),
                       mixing=MIXINGS[MIXING[s.algorithm]], draws=rng.stream(rng.SEARCH, seed, 0, STREAM_MIXING),
                       hessian_r=s.hessian_r, mask=None if mask is None else torch.as_tensor(mask, device=device))


def _initial_alpha(s: SearchSettings, space: SearchSpace, cfg: SearchConfig, mask: np.ndarray | None) -> torch.Tensor:
    """``arch_init_std * N(0, 1)`` per real entry (:meth:`~harness.search.spaces.SearchSpace.draw_alpha` from
    torch's seeded RNG; for the DARTS space one draw of ``[2, 14, ops]``, DARTS's ``alphas_normal`` then
    ``alphas_reduce``), or for GAEA uniform weights on each row's simplex over its real entries (``mask``) and
    the space's ``ops`` on the last axis (``none`` at 0 when ``gaea_exclude_none``)."""
    if MIXING[s.algorithm] != "simplex":
        return space.draw_alpha(cfg, s.arch_init_std)
    shape = space.alpha_shape(cfg)
    support = torch.ones(shape, dtype=torch.float64) if mask is None else torch.as_tensor(mask, dtype=torch.float64)
    if s.gaea_exclude_none and "none" in space.ops:
        support[..., space.ops.index("none")] = 0
    return support / support.sum(dim=-1, keepdim=True)


def _arch_optimizer(alpha: torch.Tensor, s: SearchSettings) -> torch.optim.Optimizer:
    """GAEA's exponentiated gradient at ``gaea_lr``, else Adam with DrNAS's or DARTS's weight decay
    (module docstring)."""
    mixing = MIXING[s.algorithm]
    if mixing == "simplex":
        return ExponentiatedGradient([alpha], lr=s.gaea_lr)
    weight_decay = s.drnas_reg_scale if mixing == "dirichlet" else s.arch_weight_decay
    return torch.optim.Adam([alpha], lr=s.arch_lr, betas=(s.arch_beta1, s.arch_beta2), eps=s.arch_eps, weight_decay=weight_decay)


def _eigenvalue(state: SearchState, s: SearchSettings, batch: Batch, stream: np.random.Generator) -> dict[str, Any]:
    """The dominant eigenvalue of the Hessian of ``L(w, W(alpha); batch)`` in alpha at the epoch's
    final weights (:func:`~harness.search.diagnostics.dominant_hessian_eigenvalue`; ``W`` the
    derivation weights, :data:`~harness.search.algorithms.DERIVATION`, so DrNAS's is that of its
    softmax rather than of a random sample) and the power iterations it took; the start vector from
    ``stream``."""
    derivation = DERIVATION[MIXING[s.algorithm]]
    generator = torch.Generator().manual_seed(int(stream.integers(2**63)))
    value, iterations = dominant_hessian_eigenvalue(
        lambda alpha: mixed_loss(state.space, state.net, derivation(alpha, state.mask), batch), state.alpha,
        iterations=s.eigenvalue_iterations, generator=generator, tol=s.eigenvalue_tol)
    return {"hessian_eigenvalue": value, "eigenvalue_iterations": iterations}


def _minibatches(images: DeviceImages, order: np.random.Generator, augment: np.random.Generator, n: int, batch_size: int,
                 dtype: torch.dtype) -> list[Batch]:
    """``n`` augmented minibatches: shuffles of ``images`` one after another, each cut into whole batches."""
    index: list[np.ndarray] = []
    while len(index) < n:
        shuffle = images.epoch_batches(order, batch_size)
        if not shuffle:
            raise HarnessError(f"a split of {len(images)} images has no whole batch of {batch_size}")
        index.extend(shuffle)
    out = []
    for rows in index[:n]:
        offsets, flips = images.draw_augmentation(augment, len(rows))
        x, y = images.gather(images.to_device(rows), images.to_device(offsets), images.to_device(flips))
        out.append((x.to(dtype), y))
    return out


def _state_dict(state: SearchState, epoch: int, seed: int, history: list[dict[str, Any]], cfg: SearchConfig) -> dict[str, Any]:
    return {
        "model": {name: t.clone() for name, t in state.net.state_dict().items()},
        "alpha": state.alpha.detach().clone(),
        "w_optimizer": state.w_optimizer.state_dict(),
        "a_optimizer": state.a_optimizer.state_dict(),
        "epoch": epoch,
        "seed": seed,
        "history": json.dumps(history),
        "config": json.dumps(cfg.to_dict()),
        "streams": rng.STREAMS_VERSION,
    }


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # a truncated or foreign file
        raise HarnessError(f"cannot read search checkpoint {path}: {err}") from err


def search(cfg: SearchConfig, seed: int, train: DeviceImages, valid: DeviceImages | None, out_dir: Path,
           stop_after_epoch: int | None = None, dtype: torch.dtype = torch.float32, bench: Benchmark | None = None,
           report: Report = no_report) -> SearchState:
    """Run (or resume) the search of ``seed`` into ``out_dir``; returns its state after the last epoch
    run. ``valid`` may be None for SoTL-DARTS and SoTL-DrNAS, which read no validation data.
    ``stop_after_epoch`` ends early, as a kill would (tests); ``bench``: the search space's truth
    benchmark (:meth:`~harness.search.spaces.SearchSpace.truth_benchmark`, loaded when None);
    ``report("epoch", 1)`` after each epoch written (a progress bar)."""
    s = cfg.search
    if valid is None and s.algorithm not in TRAINING_ONLY:
        raise HarnessError(f"{s.algorithm} needs the validation split")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = init_state(cfg, seed, train.device, dtype)
    bench = state.space.truth_benchmark(s.truth_root) if bench is None else bench
    path, start, history = checkpoint_path(out_dir, seed), 0, []
    if path.is_file():
        saved = load_checkpoint(path, train.device)
        changes = changed_search_settings(json.loads(saved["config"]), cfg)
        if changes:
            raise HarnessError(f"{path} was searched under other settings ({'; '.join(changes)}); resume with its own "
                               "settings or search into a new folder")
        if saved["streams"] != rng.STREAMS_VERSION:
            raise HarnessError(f"{path} used the random streams of another harness version; search anew in a new folder")
        state.net.load_state_dict(saved["model"])
        with torch.no_grad():
            state.alpha.copy_(saved["alpha"])
        state.w_optimizer.load_state_dict(saved["w_optimizer"])
        state.a_optimizer.load_state_dict(saved["a_optimizer"])
        start, history = int(saved["epoch"]), json.loads(saved["history"])
    n = cfg.block_steps
    blocks = len(train) // s.batch_size // n
    if blocks == 0:
        raise HarnessError(f"an architecture step of {s.algorithm} needs {n} minibatches of {s.batch_size}; the training "
                           f"split has {len(train)} images")
    total = s.epochs * blocks * n
    stop = s.epochs if stop_after_epoch is None else min(stop_after_epoch, s.epochs)
    for epoch in range(start, stop):
        started = time.perf_counter()
        state.net.train()
        streams = [rng.stream(rng.SEARCH, seed, epoch, sub) for sub in range(6)]
        state.draws = streams[STREAM_MIXING]
        train_batches = _minibatches(train, streams[STREAM_TRAIN_ORDER], streams[STREAM_TRAIN_AUGMENT], blocks * n, s.batch_size, dtype)
        # the architecture minibatches: validation ones; the training images in the validation streams' order for
        # the single-level algorithms; none for the others that read no validation data
        arch_images = train if s.algorithm in SINGLE_LEVEL else None if s.algorithm in TRAINING_ONLY else valid
        valid_batches = ([] if arch_images is None else _minibatches(
            arch_images, streams[STREAM_VALID_ORDER], streams[STREAM_VALID_AUGMENT], blocks * n, s.batch_size, dtype))
        arch_losses, train_losses = [], []
        for b in range(blocks):
            part = slice(b * n, (b + 1) * n)
            lrs = [cosine_lr(epoch * blocks * n + t, total, s.lr, s.lr_min) for t in range(part.start, part.stop)]
            arch_loss, train_loss = search_block(state, s.algorithm, train_batches[part], valid_batches[part], lrs)
            arch_losses.append(arch_loss)
            train_losses.append(train_loss)
        weights = DERIVATION[MIXING[s.algorithm]](state.alpha.detach(), state.mask).cpu().double().numpy()
        entry = {
            "epoch": epoch + 1,
            **state.space.describe(weights, bench),
            "arch_loss": float(torch.stack(arch_losses).mean()),
            "train_loss": float(torch.stack(train_losses).mean()),
            "op_weights": weights.tolist(),
        }
        if s.eigenvalue_every and (epoch + 1) % s.eigenvalue_every == 0:
            batch = valid_batches[0] if valid_batches else train_batches[0]  # the first architecture minibatch, or training
            entry.update(_eigenvalue(state, s, batch, streams[STREAM_EIGENVECTOR]))
        history.append({**entry, "seconds": time.perf_counter() - started})
        write_atomic(path, lambda tmp: torch.save(_state_dict(state, epoch + 1, seed, history, cfg), tmp))
        write_atomic(log_path(out_dir, seed), lambda tmp: tmp.write_text(json.dumps(history, indent=1)))
        report("epoch", 1)
    return state
