"""Weight-sharing on NAS-Bench-201 (needs torch): supernet model, SPOS / FairNAS training, finetuning.

Modules: :mod:`harness.supernet.model` (network), :mod:`harness.supernet.config` (one config for a run,
torch-free), :mod:`harness.supernet.sampling` (the paths each training minibatch trains, torch-free),
:mod:`harness.supernet.train` (supernet training with checkpoint/resume), :mod:`harness.supernet.finetune`
(inherit-and-finetune protocol with per-step logs).
"""
