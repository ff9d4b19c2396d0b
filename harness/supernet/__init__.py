"""Weight-sharing on NAS-Bench-201 (needs torch): supernet model, SPOS training, finetuning.

Modules: :mod:`harness.supernet.model` (network), :mod:`harness.supernet.config` (one config for a run,
torch-free), :mod:`harness.supernet.train` (SPOS with checkpoint/resume), :mod:`harness.supernet.finetune`
(inherit-and-finetune protocol with per-step logs).
"""
