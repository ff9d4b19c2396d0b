"""Differentiable search speed: the harness's search steps against a plain PyTorch DARTS loop of the same network.

In one run, on one device and thread count, over the same minibatches (random tensors of CIFAR's
shape, ``--image-size`` square, so no data is needed; the cost of a step does not depend on the
pixels), every loop on the search space's own mixed-op network (``build_network``, so the
architecture, its parameters and its forward are the same object type and the same computation; what
differs is the loop around it):

* ``plain darts-1``: first-order DARTS written from scratch in plain PyTorch: a leaf tensor ``alpha``,
  path weights ``softmax(alpha)`` per edge, ``cross_entropy`` of a validation minibatch,
  ``backward(inputs=[alpha])``, a ``torch.optim.Adam`` step of alpha, then ``zero_grad / forward /
  backward / step`` of ``torch.optim.SGD`` on a training minibatch under the new alpha (detached);
* ``plain darts-1, full backward``: the same with the validation loss's plain ``backward()``, which
  also computes the weights' gradients (then zeroed, unused), as quark0/darts ``architect.py`` does:
  the loop most DARTS code runs;
* ``plain sotl-darts``: SoTL-DARTS written the same way: T unrolled SGD steps on training minibatches,
  each ``backward()`` adding its ``d L_train / d alpha`` into ``alpha.grad``, the weights and the SGD
  state restored from ``state_dict`` copies, one Adam step of alpha, then T SGD steps on the same
  minibatches under the new alpha;
* ``harness <algorithm>``: :func:`harness.search.algorithms.search_block` on a state from
  :func:`harness.search.loop.init_state` (what ``harness search run`` calls per block): ``darts-1``
  and ``sotl-darts`` against the plain loops above, and ``darts-2``, ``drnas``, ``gaea-darts`` (or any
  of ``--algorithms``), which have no plain peer here; their ``x plain`` is against plain darts-1 (the
  unrolled ones against plain sotl-darts);
* ``Hessian eigenvalue``: the per-epoch diagnostic, :func:`harness.search.diagnostics.dominant_hessian_eigenvalue`
  of the validation loss in alpha on one minibatch at the harness darts-1 state (``eigenvalue_iterations``
  and ``eigenvalue_tol`` as configured; it stops early when it settles), once per epoch, so its
  per-minibatch figure is one call spread over the epoch's minibatches.

Every figure is per training minibatch (a darts-1 step reads one training and one validation
minibatch; a SoTL-DARTS block of T minibatches is divided by T), the median over ``--repeats`` passes
of ``--steps`` minibatches (whole blocks), the loops interleaved pass by pass so a drift of the
machine's load falls on all of them alike, after ``--warmup`` blocks each. Seconds per epoch are
extrapolated to ``--epoch-minibatches`` (default 390: 25,000 training images in batches of 64; an
unrolled algorithm uses its whole blocks of them, as the search loop does) plus, on the eigenvalue
row, the one call.

Before timing, a sanity line checks that the plain loops are the harness's computation: from the
same state (float64), one plain darts-1 step against the harness's darts-1 block, and one plain
SoTL-DARTS block against the harness's (T = 3), comparing alpha's gradient, alpha after the Adam step
and the weights after the SGD steps.

    python benchmarks/search_speed.py --steps 20                    # NB201 mini network (C=8, N=2, 16x16), 1 thread
    python benchmarks/search_speed.py --space darts-s2 --steps 20   # DARTS S2 network, C=8, 1 cell per stage
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from harness.errors import HarnessError
from harness.search.algorithms import Batch, SearchState, mixed_loss, search_block
from harness.search.config import ALGORITHMS, UNROLLED, SearchConfig, search_config_from_dict
from harness.search.diagnostics import dominant_hessian_eigenvalue
from harness.search.loop import init_state
from harness.search.spaces import SEARCH_SPACES, get_search_space
from harness.supernet.model import NB201Network
from harness.supernet.train import cpu_threads, resolve_device
from supernet_speed import _sync

# the CPU mini protocol's network per space (README, configs/ws-mini-cpu*.toml): (channels, cells per stage)
MINI_NETWORK = {"nb201": (8, 2), "darts": (8, 1), "darts-s2": (8, 1)}
Block = Callable[[int], object]  # runs block b (its minibatches are the loop's own business)


def config(args: argparse.Namespace) -> SearchConfig:
    """The search config of the benchmark: the space's defaults (as a config file gets them), the mini
    network, ``--image-size``, batch, T, threads and device from the command line."""
    channels, cells = MINI_NETWORK[args.space]
    return search_config_from_dict({
        "name": "search-speed",
        "space": args.space,
        "data": {"image_size": args.image_size},
        "network": {"channels": args.channels or channels, "cells_per_stage": args.cells_per_stage or cells},
        "search": {"batch_size": args.batch_size, "unroll_steps": args.unroll_steps, "seeds": [0],
                   **({"eigenvalue_iterations": args.eigenvalue_iterations} if args.eigenvalue_iterations else {})},
        "device": {"device": args.device, "threads": args.threads},
    })


def random_batches(n: int, batch_size: int, side: int, n_classes: int, device: torch.device, dtype: torch.dtype,
                   seed: int) -> list[Batch]:
    """``n`` minibatches of standard-normal images ``[batch, 3, side, side]`` and uniform labels."""
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch_size, 3, side, side, generator=generator).to(device=device, dtype=dtype),
             torch.randint(n_classes, (batch_size,), generator=generator).to(device))
            for _ in range(n)]


class PlainDarts:
    """DARTS and SoTL-DARTS as a PyTorch user writes them around the search space's network: a leaf
    ``alpha``, ``softmax`` mixing, ``torch.optim.Adam`` for alpha and ``torch.optim.SGD`` for the
    weights (the harness's settings, ``cfg.search``). Fresh weights and alpha from ``seed`` in the
    order the harness draws them (network, then ``arch_init_std * randn``)."""

    def __init__(self, cfg: SearchConfig, seed: int, device: torch.device, dtype: torch.dtype):
        s = cfg.search
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = get_search_space(cfg.space).build_network(cfg)
            alpha = s.arch_init_std * torch.randn(*get_search_space(cfg.space).alpha_shape(cfg), dtype=torch.float64)
        self.net = net.to(device=device, dtype=dtype).train()
        self.alpha = alpha.to(device=device, dtype=dtype).requires_grad_()
        self.w_optimizer = torch.optim.SGD(self.net.parameters(), lr=s.lr, momentum=s.momentum, nesterov=s.nesterov,
                                           weight_decay=s.weight_decay)
        self.a_optimizer = torch.optim.Adam([self.alpha], lr=s.arch_lr, betas=(s.arch_beta1, s.arch_beta2), eps=s.arch_eps,
                                            weight_decay=s.arch_weight_decay)

    def logits(self, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(alpha, dim=-1)
        if isinstance(self.net, NB201Network):  # one [6, 5] alpha shared by every cell
            weights = weights.expand(self.net.shape.n_cells, *weights.shape)
        return self.net(x, weights)

    def train_step(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> None:
        for group in self.w_optimizer.param_groups:
            group["lr"] = lr
        self.w_optimizer.zero_grad()
        F.cross_entropy(self.logits(x, self.alpha.detach()), y).backward()
        self.w_optimizer.step()

    def darts_step(self, train: Batch, valid: Batch, lr: float, full_backward: bool = False) -> None:
        """First-order DARTS: alpha's gradient on ``valid``, Adam, then one SGD step on ``train``."""
        self.a_optimizer.zero_grad()
        loss = F.cross_entropy(self.logits(valid[0], self.alpha), valid[1])
        if full_backward:
            loss.backward()  # the weights' gradients too; train_step zeroes them
        else:
            loss.backward(inputs=[self.alpha])
        self.a_optimizer.step()
        self.train_step(*train, lr)

    def sotl_block(self, train: Sequence[Batch], lrs: Sequence[float]) -> None:
        """SoTL-DARTS (first order, sum): T unrolled steps adding ``d L_train / d alpha``, restore, Adam, retrain."""
        saved_net = {name: t.clone() for name, t in self.net.state_dict().items()}
        saved_optimizer = copy.deepcopy(self.w_optimizer.state_dict())
        self.a_optimizer.zero_grad()
        for t, (x, y) in enumerate(train):
            self.w_optimizer.zero_grad()
            F.cross_entropy(self.logits(x, self.alpha), y).backward()  # alpha.grad accumulates over t
            if t + 1 < len(train):
                for group in self.w_optimizer.param_groups:
                    group["lr"] = lrs[t]
                self.w_optimizer.step()
        self.net.load_state_dict(saved_net)
        self.w_optimizer.load_state_dict(saved_optimizer)
        self.a_optimizer.step()
        for (x, y), lr in zip(train, lrs):
            self.train_step(x, y, lr)


def harness_state(cfg: SearchConfig, algorithm: str, device: torch.device, dtype: torch.dtype) -> SearchState:
    state = init_state(cfg.with_overrides(search={"algorithm": algorithm}), 0, device, dtype)
    state.net.train()
    return state


def max_relative(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> float:
    """max over the pairs of floating-point tensors of ``max |a - b| / max |b|``."""
    return max(float((x - y).abs().max() / y.abs().max().clamp(min=1e-300)) for x, y in zip(a, b) if y.is_floating_point())


def equivalence(cfg: SearchConfig, device: torch.device, side: int) -> str:
    """The sanity line: plain darts-1 against harness darts-1 (one step), plain against harness
    SoTL-DARTS (one block, T = 3), in float64 from the same state and minibatches: alpha's gradient
    and the weights after the block relative to their size, alpha after the Adam step absolute beside
    the step's size (Adam's first step is about ``arch_lr`` per entry whatever the gradient's size)."""
    dtype, parts = torch.float64, []
    for algorithm, n in (("darts-1", 1), ("sotl-darts", 3)):
        algo_cfg = cfg.with_overrides(search={"unroll_steps": n})
        state, plain = harness_state(algo_cfg, algorithm, device, dtype), PlainDarts(algo_cfg, 0, device, dtype)
        plain.net.load_state_dict(state.net.state_dict())
        with torch.no_grad():
            plain.alpha.copy_(state.alpha)
        before = state.alpha.detach().clone()
        n_classes = plain.net.shape.n_classes
        train = random_batches(n, cfg.search.batch_size, side, n_classes, device, dtype, 10)
        valid = random_batches(n, cfg.search.batch_size, side, n_classes, device, dtype, 11)
        lrs = [cfg.search.lr] * n
        search_block(state, algorithm, train, valid, lrs)
        if algorithm == "darts-1":
            plain.darts_step(train[0], valid[0], lrs[0])
        else:
            plain.sotl_block(train, lrs)
        grad = max_relative([plain.alpha.grad], [state.alpha.grad])
        alpha = float((plain.alpha - state.alpha).detach().abs().max())
        step = float((state.alpha.detach() - before).abs().max())
        weights = max_relative(list(plain.net.state_dict().values()), list(state.net.state_dict().values()))
        ok = grad < 1e-9 and alpha < 1e-9 * step and weights < 1e-9
        parts.append(f"{algorithm}{f' T={n}' if n > 1 else ''}: alpha grad rel diff {grad:.1e}, alpha abs diff {alpha:.1e} "
                     f"(step {step:.1e}), weights rel diff {weights:.1e}: {'SAME' if ok else 'DIFFERENT'}")
    return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="nb201", choices=sorted(SEARCH_SPACES))
    parser.add_argument("--channels", type=int, help="network channels (default: the mini protocol's, 8)")
    parser.add_argument("--cells-per-stage", type=int, help="cells per stage (default: the mini protocol's, 2 NB201, 1 DARTS)")
    parser.add_argument("--image-size", type=int, default=16, help="side of the random CIFAR-shaped images")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (every loop)")
    parser.add_argument("--steps", type=int, default=20, help="training minibatches per timed pass (whole blocks of T for the unrolled)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per loop (the median is shown)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed blocks per loop first")
    parser.add_argument("--unroll-steps", type=int, default=10, help="T of SoTL-DARTS (the thesis: 100)")
    parser.add_argument("--algorithms", default="darts-1,darts-2,sotl-darts,drnas,gaea-darts",
                        help="the harness's algorithms to time (plain peers: darts-1, sotl-darts)")
    parser.add_argument("--eigenvalue-iterations", type=int, help="power iterations at most (default: the config's, 50)")
    parser.add_argument("--epoch-minibatches", type=int, default=390, help="training minibatches per epoch (25,000 / 64)")
    parser.add_argument("--no-check", action="store_true", help="skip the float64 equivalence check")
    args = parser.parse_args()
    names = args.algorithms.split(",")
    for name in names:
        if name not in ALGORITHMS:
            raise HarnessError(f"unknown algorithm {name!r}; valid: {', '.join(ALGORITHMS)}")
    if min(args.steps, args.repeats, args.unroll_steps, args.epoch_minibatches) < 1 or args.warmup < 0:
        raise HarnessError("--steps, --repeats, --unroll-steps and --epoch-minibatches must be >= 1, --warmup >= 0")
    cfg = config(args)
    s = cfg.search
    device = resolve_device(cfg.ws_config())
    dtype = getattr(torch, args.dtype)
    T = s.unroll_steps
    with cpu_threads(cfg.ws_config()):
        plain_darts = PlainDarts(cfg, 0, device, dtype)
        n_classes = plain_darts.net.shape.n_classes
        blocks_unrolled = -(-args.steps // T)
        n_batches = max(args.steps, blocks_unrolled * T)
        train = random_batches(n_batches, s.batch_size, args.image_size, n_classes, device, dtype, 0)
        valid = random_batches(n_batches, s.batch_size, args.image_size, n_classes, device, dtype, 1)
        lrs = [s.lr] * n_batches
        print(f"space {cfg.space}, C={cfg.network.channels} N={cfg.network.cells_per_stage} {args.image_size}x{args.image_size} "
              f"random images, batch {s.batch_size}, {args.dtype}, {device}"
              f"{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}, torch {torch.__version__}, "
              f"{torch.get_num_threads()} thread(s), T={T}, median of {args.repeats} passes of {args.steps} minibatch(es) "
              f"({blocks_unrolled} block(s) of {T} unrolled), {args.warmup} warm-up block(s) each", flush=True)
        if not args.no_check:
            started = time.perf_counter()
            print(f"check (float64, same state, plain vs harness): {equivalence(cfg, device, args.image_size)} "
                  f"[{time.perf_counter() - started:.1f} s]", flush=True)

        # name -> (minibatches per block, blocks per pass, run block b, peer's name)
        loops: dict[str, tuple[int, int, Block, str | None]] = {}
        plain_full = PlainDarts(cfg, 0, device, dtype)
        plain_sotl = PlainDarts(cfg, 0, device, dtype)
        loops["plain darts-1"] = (1, args.steps, lambda b: plain_darts.darts_step(train[b], valid[b], lrs[b]), None)
        loops["plain darts-1, full backward"] = (
            1, args.steps, lambda b: plain_full.darts_step(train[b], valid[b], lrs[b], full_backward=True), "plain darts-1")
        if "sotl-darts" in names:
            loops["plain sotl-darts"] = (
                T, blocks_unrolled, lambda b: plain_sotl.sotl_block(train[b * T:(b + 1) * T], lrs[b * T:(b + 1) * T]), None)
        states: dict[str, SearchState] = {}
        for name in names:
            n = T if name in UNROLLED else 1
            state = states[name] = harness_state(cfg, name, device, dtype)
            run: Block = lambda b, st=state, a=name, n=n: search_block(  # noqa: E731
                st, a, train[b * n:(b + 1) * n], valid[b * n:(b + 1) * n], lrs[b * n:(b + 1) * n])
            peer = ("plain sotl-darts" if "plain sotl-darts" in loops else None) if n > 1 else "plain darts-1"
            loops[f"harness {name}"] = (n, blocks_unrolled if n > 1 else args.steps, run, peer)

        eigen_state = states.get("darts-1") or harness_state(cfg, "darts-1", device, dtype)
        eigen_iterations: list[int] = []

        def eigenvalue(b: int) -> None:
            generator = torch.Generator().manual_seed(b)
            _, k = dominant_hessian_eigenvalue(
                lambda a: mixed_loss(eigen_state.space, eigen_state.net, torch.softmax(a, dim=-1), valid[0]), eigen_state.alpha,
                iterations=s.eigenvalue_iterations, generator=generator, tol=s.eigenvalue_tol)
            eigen_iterations.append(k)

        for n, blocks, run, _ in loops.values():
            for b in range(args.warmup):
                run(b % blocks)
        times: dict[str, list[float]] = {name: [] for name in [*loops, "eigenvalue"]}
        for _ in range(args.repeats):
            for name, (n, blocks, run, _) in loops.items():
                _sync(device)
                started = time.perf_counter()
                for b in range(blocks):
                    run(b)
                _sync(device)
                times[name].append((time.perf_counter() - started) / (blocks * n))
            _sync(device)
            started = time.perf_counter()
            eigenvalue(len(eigen_iterations))
            _sync(device)
            times["eigenvalue"].append(time.perf_counter() - started)

        median = {name: statistics.median(values) for name, values in times.items()}
        print(f"{'what':34s} {'ms/minibatch':>12s} {'x plain':>8s} {'s/epoch':>8s}  (epoch: {args.epoch_minibatches} minibatches)")
        for name, (n, _, _, peer) in loops.items():
            ratio = f"{median[name] / median[peer]:8.2f}" if peer else f"{'1.00' if name.startswith('plain') else '-':>8s}"
            epoch = median[name] * (args.epoch_minibatches // n) * n
            label = f"{name}{f' (T={n})' if n > 1 else ''}"
            print(f"{label:34s} {1000 * median[name]:12.2f} {ratio} {epoch:8.1f}{f'  vs {peer}' if peer else ''}")
        call = median["eigenvalue"]
        print(f"{'Hessian eigenvalue, once/epoch':34s} {1000 * call / args.epoch_minibatches:12.2f} {'-':>8s} {call:8.1f}"
              f"  one call {1000 * call:.0f} ms, {statistics.median(eigen_iterations):g} power iterations "
              f"(max {s.eigenvalue_iterations}, tol {s.eigenvalue_tol:g})")
        if "darts-1" in names:
            print(f"{'harness darts-1 epoch + eigenvalue':34s} {'':12s} {'':8s} "
                  f"{median['harness darts-1'] * args.epoch_minibatches + call:8.1f}")


if __name__ == "__main__":
    try:
        main()
    except HarnessError as err:
        raise SystemExit(f"error: {err}") from None
