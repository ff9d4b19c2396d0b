"""Rebuild the embedded NB101 tables from the real source files (run once by a maintainer).

    python harness/embedded/nb101/build_tables.py /path/to/shared/data/nb101

``nb101-1k.csv``: the 1,000 cells of ``nasbench-vis-data-1k.json``; ``hash`` is the file's own
``key`` (copied, not recomputed, so the tests can check our hash against it); ``adjacency`` and
``operations`` are the cell with padding vertices dropped, in the official record format (digits of
the row-major matrix; comma-joined op names); accuracies are fractions as in the source.
``nb101-20k.parquet``: the 20,001 cells of ``nasbench-vis-data-20k.json`` sorted by ``key``
(``hash``), accuracies and training time as float32 and parameters as int32, after checking that
every value survives that cast exactly (the source's floats are float32 values written as doubles).
``naslib-zc-nb101.csv``: the 500 cells of ``naslib-zc-nasbench101.json`` with NASLib's 56-int
encoding, the module hash computed by ``harness.spaces.nb101`` and every value of the source.
``nb1shot1-coverage.npz``: which NAS-Bench-1Shot1 configurations the 20,001 cells answer
(``harness.adapters.nb1shot1.write_coverage_index``; hashes every configuration, ~25 s).
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from harness.adapters import nb101, nb1shot1
from harness.spaces.nb101 import spec_from_naslib, spec_from_vis

HERE = Path(__file__).resolve().parent
BUDGETS = (4, 12, 36, 108)


def values_table(vis: dict[str, list]) -> pd.DataFrame:
    """``hash``, ``valid_{budget}``, ``time_108`` and ``params`` of a nasbench-vis export, sorted by hash,
    in the narrowest dtypes that hold every value exactly (raises if one would change)."""
    frame = pd.DataFrame({
        "hash": vis["key"],
        **{f"valid_{b}": np.asarray(vis[f"{b}_final_validation_accuracy"], dtype=np.float32) for b in BUDGETS},
        "time_108": np.asarray(vis["final_training_time"], dtype=np.float32),
        "params": np.asarray(vis["trainable_parameters"], dtype=np.int32),
    })
    sources = {**{f"valid_{b}": f"{b}_final_validation_accuracy" for b in BUDGETS},
               "time_108": "final_training_time", "params": "trainable_parameters"}
    for column, source in sources.items():
        if not np.array_equal(frame[column].to_numpy(dtype=np.float64), np.asarray(vis[source], dtype=np.float64)):
            raise ValueError(f"{source} does not survive the cast to {frame[column].dtype}")
    return frame.sort_values("hash", kind="stable").reset_index(drop=True)


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
                **{f"valid_{b}": vis[f"{b}_final_validation_accuracy"][i] for b in BUDGETS},
                "time_108": vis["final_training_time"][i],
                "params": vis["trainable_parameters"][i],
            }
        )
    pd.DataFrame(rows).to_csv(HERE / nb101.EMBEDDED_TABLE, index=False, float_format="%.17g")
    values = values_table(json.loads((source / "nasbench-vis-data-20k.json").read_text()))
    values.to_parquet(HERE / nb101.EMBEDDED_VALUES, index=False, compression="zstd")
    naslib = json.loads((source / "naslib-zc-nasbench101.json").read_text())["nasbench101"]["cifar10"]
    zc_rows = []
    for encoding, entry in naslib.items():
        ints = ast.literal_eval(encoding)
        zc_rows.append({"hash": spec_from_naslib(ints).hash(), "encoding": " ".join(map(str, ints)), **entry})
    pd.DataFrame(zc_rows).to_csv(HERE / nb101.NASLIB_TABLE, index=False, float_format="%.17g")
    nb1shot1.write_coverage_index(nb1shot1.COVERAGE_FILE, nb101.open_embedded(), progress=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
