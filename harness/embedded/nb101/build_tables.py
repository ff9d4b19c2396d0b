"""Rebuild the embedded NB101 tables from the real source files (run once by a maintainer).

    python harness/embedded/nb101/build_tables.py /path/to/shared/data/nb101

``nb101-1k.csv``: the 1,000 cells of ``nasbench-vis-data-1k.json``; ``hash`` is the file's own
``key`` (copied, not recomputed, so the tests can check our hash against it); ``adjacency`` and
``operations`` are the cell with padding vertices dropped, in the official record format (digits of
the row-major matrix; comma-joined op names); accuracies are fractions as in the source.
``naslib-zc-nb101.csv``: the 500 cells of ``naslib-zc-nasbench101.json`` with NASLib's 56-int
encoding, the module hash computed by ``harness.spaces.nb101`` and every value of the source.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pandas as pd

from harness.spaces.nb101 import spec_from_naslib, spec_from_vis

HERE = Path(__file__).resolve().parent


def main(source: Path) -> None:
    vis = json.loads((source / "nasbench-vis-data-1k.json").read_text())
    rows = []
    for i, key in enumerate(vis["key"]):
        spec = spec_from_vis(vis["adjacency"][i], vis["operations"][i])
        rows.append(
            {
                "hash": key,
                "adjacency": "".join(str(int(v)) for v in spec.matrix.ravel()),
                "operations": ",".join(spec.ops),
                **{f"valid_{b}": vis[f"{b}_final_validation_accuracy"][i] for b in (4, 12, 36, 108)},
                "time_108": vis["final_training_time"][i],
                "params": vis["trainable_parameters"][i],
            }
        )
    pd.DataFrame(rows).to_csv(HERE / "nb101-1k.csv", index=False, float_format="%.17g")
    naslib = json.loads((source / "naslib-zc-nasbench101.json").read_text())["nasbench101"]["cifar10"]
    zc_rows = []
    for encoding, values in naslib.items():
        ints = ast.literal_eval(encoding)
        zc_rows.append({"hash": spec_from_naslib(ints).hash(), "encoding": " ".join(map(str, ints)), **values})
    pd.DataFrame(zc_rows).to_csv(HERE / "naslib-zc-nb101.csv", index=False, float_format="%.17g")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
