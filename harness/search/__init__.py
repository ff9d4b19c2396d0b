"""Differentiable architecture search on NAS-Bench-201 (thesis Sec. 4.3): DARTS first and second
order, SoTL-DARTS (thesis Alg. 3) and SoVL-DARTS in one search loop (needs torch, except the config
and the derived-arch modules).

Modules: :mod:`harness.search.config` (the run's settings, torch-free), :mod:`harness.search.derive`
(the derived arch and its NB201 truth, torch-free), :mod:`harness.search.algorithms` (each
algorithm's architecture gradient and the block they share), :mod:`harness.search.loop` (epochs,
checkpoints, resume, the per-epoch log), :mod:`harness.search.run` (a run folder of seeds, the CLI's).
"""
