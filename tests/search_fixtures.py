"""Shared checks of the differentiable-search tests."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from harness.search.loop import load_checkpoint


def assert_same_search_state(a: Path, b: Path) -> None:
    """The two search checkpoints hold the same epoch, alpha, weights, both optimizers' states and log
    (less the wall-clock seconds), bit for bit."""
    one, two = load_checkpoint(a), load_checkpoint(b)
    assert one["epoch"] == two["epoch"]
    assert torch.equal(one["alpha"], two["alpha"])
    for name, tensor in one["model"].items():
        assert torch.equal(tensor, two["model"][name]), name
    for key in ("w_optimizer", "a_optimizer"):
        states = one[key]["state"], two[key]["state"]
        assert states[0].keys() == states[1].keys() and states[0]
        for index, entry in states[0].items():
            for field, value in entry.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(states[1][index][field])), (key, field)
    strip = lambda history: [{k: v for k, v in entry.items() if k != "seconds"} for entry in json.loads(history)]  # noqa: E731
    assert strip(one["history"]) == strip(two["history"])
