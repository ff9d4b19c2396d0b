"""Differentiable architecture search (thesis Sec. 4.3): DARTS first and second order, SoTL-DARTS
(thesis Alg. 3), SoVL-DARTS, DrNAS, SoTL-DrNAS and GAEA DARTS in one search loop, on NAS-Bench-201,
NAS-Bench-1Shot1 spaces 1-3 and the DARTS space (and its S2 subspace). Needs torch, except the config, the spaces' interface,
the derived-arch, diagnostics (depths) and report modules.

Modules: :mod:`harness.search.config` (the run's settings, torch-free), :mod:`harness.search.spaces`
(one class per search space: network, alpha's shape, mixed forward, derivation and truth),
:mod:`harness.search.derive` (the derived arch and its truth, torch-free),
:mod:`harness.search.diagnostics` (cell depth, dominant Hessian eigenvalue),
:mod:`harness.search.algorithms` (each algorithm's mixing, architecture gradient and optimizer, and the
block they share), :mod:`harness.search.loop` (epochs, checkpoints, resume, the per-epoch log),
:mod:`harness.search.run` (a run folder of seeds, the CLI's), :mod:`harness.search.report` (tables
beside the thesis's and the trajectory figure, torch-free).
"""
