"""The committed differentiable-search results recompute from the per-epoch logs committed beside them.

``results/search-mini-cpu/`` (the CPU mini protocol) and ``results/search-toy-cpu/`` (every algorithm on every kind
of space at toy scale) hold each run folder's ``config.json`` and ``search-seed<s>.json``, no checkpoints, and the
report of each space. Reporting the folders again must give the committed ``table.md`` and ``table.csv``: this pins
the numbers quoted in the READMEs to the logs. Torch-free.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from harness.search.config import ALGORITHMS
from harness.search.report import write_report

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _reports() -> list[tuple[Path, list[Path]]]:
    """(the committed report folder, its run folders): the toy run's per space, the mini protocol's per space."""
    out = [(space / "report", sorted((folder for folder in space.iterdir() if (folder / "config.json").is_file()),
                                     key=lambda folder: list(ALGORITHMS).index(folder.name)))
           for space in sorted((RESULTS / "search-toy-cpu").iterdir()) if (space / "report").is_dir()]
    mini = RESULTS / "search-mini-cpu"
    for report in sorted(mini.glob("report-*")):
        space = report.name.removeprefix("report-")
        out.append((report, sorted(mini.glob(f"{space}-*"))))
    return out


REPORTS = _reports()


def test_the_toy_run_covers_every_algorithm_on_every_kind_of_space() -> None:
    toy = {report.parent.name: [run.name for run in runs] for report, runs in REPORTS if "search-toy-cpu" in str(report)}
    assert set(toy) == {"nb201", "darts", "darts-s2", "nb1shot1-1"}
    assert all(runs == list(ALGORITHMS) for runs in toy.values())


@pytest.mark.parametrize("report, runs", REPORTS, ids=[str(report.relative_to(RESULTS)) for report, _ in REPORTS])
def test_committed_search_reports_recompute_from_their_logs(tmp_path: Path, report: Path, runs: list[Path]) -> None:
    committed = (report / "table.md").read_text()
    label = committed.splitlines()[0].removeprefix("# Differentiable search: ")
    files = write_report(runs, tmp_path, label)
    assert files["table"].read_text() == committed
    pd.testing.assert_frame_equal(pd.read_csv(files["csv"]), pd.read_csv(report / "table.csv"))
    pd.testing.assert_frame_equal(pd.read_csv(files["trajectories"]), pd.read_csv(report / "trajectories.csv"))
