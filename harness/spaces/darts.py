"""The DARTS search space as used by NAS-Bench-301, and its four representations.

A DARTS architecture (Liu et al., "DARTS", ICLR 2019) is a *normal* cell and a *reduction* cell.
Each cell has two input nodes (0 = output of the cell before the previous one, 1 = output of the
previous cell) and four intermediate nodes 2..5. Intermediate node ``k`` sums two operations applied
to two **distinct** earlier nodes ``i, j < k``; the cell output concatenates nodes 2..5. NAS-Bench-301
(Siems et al., 2020) uses the seven non-zero DARTS operations :data:`OPS`.

Representations handled here (every conversion is exact; tests check each round trip):

* **genotype** (DARTS style): :class:`Genotype` with ``normal`` and ``reduce`` lists of 8
  ``(op, input)`` pairs, entries ``2m`` and ``2m + 1`` feeding intermediate node ``m + 2``. Any object
  with ``.normal`` and ``.reduce`` (the DARTS namedtuple) and the printed string
  ``"Genotype(normal=[...], normal_concat=..., reduce=[...], reduce_concat=...)"`` are accepted. NB301
  cells always concatenate nodes 2..5: a ``*_concat`` other than ``range(2, 6)`` is refused (a
  missing one means ``range(2, 6)``).
* **encoding** (this package's row key): ``int8[32]``. For cell ``c`` (0 normal, 1 reduce), node
  ``m`` (0..3) and edge ``e`` (0, 1): position ``16c + 4m + 2e`` holds the input node and
  ``16c + 4m + 2e + 1`` the op index into :data:`OPS`. It is *canonical*: the two edges of a node
  are sorted by input, because the order of the two summands does not change the network.
* **config**: the NB301 ConfigSpace dict, e.g. ``"NetworkSelectorDatasetInfo:darts:edge_normal_5":
  "sep_conv_3x3"`` and ``"NetworkSelectorDatasetInfo:darts:inputs_node_normal_4": "0_2"``. The 14
  edges of a cell are numbered node by node: node ``m + 2`` owns edges ``start(m) + i`` for inputs
  ``i = 0..m+1``, with ``start = 0, 2, 5, 9``. Node 2 always reads ``0_1`` and has no
  ``inputs_node`` key. YAHPO's spelling with ``_COLON_`` for ``:`` is accepted too.
* **onnx** (YAHPO Gym's NB301 surrogate): ``int32[34]`` = ``edge_normal_0..13``,
  ``edge_reduce_0..13``, ``inputs_node_normal_3..5``, ``inputs_node_reduce_3..5``. Edge codes are
  ``0`` for an inactive edge and ``1..7`` for the ops in alphabetical order; an inputs code is
  ``1 +`` the index of the pair in ``itertools.combinations(range(k), 2)`` order (``0_1, 0_2, 1_2``
  for node 3), as in ``encoding_v2.json``.
* **compact** (NASLib / BANANAS, as in NASLib's ``naslib-zc-nasbench301.json``): ``((input, op) x 8,
  (input, op) x 8)`` with op indices into :data:`OPS`, pair order kept as given.

Search-space size: node ``m + 2`` picks an unordered pair of distinct inputs out of ``m + 2`` nodes
and an op for each of its two edges, so one cell has ``prod_{k=2..5} C(k, 2) * 7**2 = 180 * 7**8 =
1,037,664,180`` choices and an architecture ``1,037,664,180**2 ~= 1.08e18`` (the "10^18" of the
NB301 paper). Graph isomorphisms beyond summand order (e.g. swapping two identical nodes) are not
factored out, as in NB301 itself.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any, NamedTuple

import numpy as np

from harness.rng import is_int, make_rng
from harness.errors import HarnessError

OPS: tuple[str, ...] = (
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
# DARTS's search candidates (quark0/darts cnn/genotypes.py PRIMITIVES): the zero op ``none`` first, then
# OPS in the same order. A search's mixed edges weigh them; no genotype ever holds ``none``.
PRIMITIVES: tuple[str, ...] = ("none", *OPS)
CELLS: tuple[str, str] = ("normal", "reduce")
N_NODES = 4  # intermediate nodes per cell
ENCODING_LENGTH = 2 * N_NODES * 2 * 2  # cells x nodes x edges x (input, op) = 32
EDGES_PER_CELL = 14
ONNX_LENGTH = 2 * EDGES_PER_CELL + 2 * (N_NODES - 1)  # 34
EDGE_START: tuple[int, ...] = (0, 2, 5, 9)  # first config edge of each intermediate node

CONFIG_PREFIX = "NetworkSelectorDatasetInfo:darts:"
YAHPO_PREFIX = "NetworkSelectorDatasetInfo_COLON_darts_COLON_"

# YAHPO's integer codes (encoding_v2.json): 0 = inactive, then the ops in alphabetical order.
ONNX_OP_NAMES: tuple[str, ...] = tuple(sorted(OPS))
_OP_TO_ONNX = np.array([1 + ONNX_OP_NAMES.index(op) for op in OPS], dtype=np.int32)
_ONNX_TO_OP = np.array([-1] + [OPS.index(op) for op in ONNX_OP_NAMES], dtype=np.int64)
# Input pairs of node m + 2, in the order of the ConfigSpace choices and the ONNX codes.
INPUT_PAIRS: tuple[tuple[tuple[int, int], ...], ...] = tuple(
    tuple(combinations(range(m + 2), 2)) for m in range(N_NODES)
)


class Genotype(NamedTuple):
    """A DARTS genotype; ``normal``/``reduce`` hold 8 ``(op, input)`` pairs, two per node."""

    normal: tuple[tuple[str, int], ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[tuple[str, int], ...]
    reduce_concat: tuple[int, ...]


_CONCAT = (2, 3, 4, 5)


def check_candidates(candidates: Sequence[str]) -> tuple[str, ...]:
    """``candidates`` as a tuple if it can be a DARTS search's candidate ops: distinct ops of
    :data:`PRIMITIVES` in that order, at least one of them not ``none``; raises HarnessError otherwise."""
    ops = tuple(candidates)
    if tuple(op for op in PRIMITIVES if op in ops) != ops or not set(ops) - {"none"}:
        raise HarnessError(f"DARTS candidate ops are distinct ops of {PRIMITIVES} in that order, at least one not "
                           f"'none'; got {ops}")
    return ops


def search_space_size() -> int:
    """Number of distinct NB301 architectures: ``(prod_{k=2..5} C(k,2) * |OPS|**2) ** 2``."""
    per_cell = math.prod(math.comb(m + 2, 2) * len(OPS) ** 2 for m in range(N_NODES))
    return per_cell**2


# ----------------------------------------------------------------------------------------------
# Validation and canonical form of encodings
# ----------------------------------------------------------------------------------------------


def _describe(arch: int | None, cell: int, node: int) -> str:
    prefix = "" if arch is None else f"arch {arch}: "
    return f"{prefix}{CELLS[cell]} cell node {node + 2}"


def check_encodings(enc: Any) -> np.ndarray:
    """Validate encodings ``[n, 32]`` (or one ``[32]``) and return them canonical, as ``int8``.

    Raises HarnessError naming the first fault: a wrong length, an op index outside 0..6, an input
    from the node itself or a later node, or a node whose two inputs are the same node.
    """
    arr = np.asarray(enc)
    single = arr.ndim == 1
    arr = np.atleast_2d(arr)
    if arr.ndim != 2 or arr.shape[1] != ENCODING_LENGTH:
        raise HarnessError(
            f"a DARTS encoding has {ENCODING_LENGTH} integers (cells x nodes x edges x (input, op)); "
            f"got an array of shape {np.shape(enc)}"
        )
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise HarnessError(f"a DARTS encoding holds integers, got dtype {arr.dtype}")
    view = arr.reshape(len(arr), 2, N_NODES, 2, 2).astype(np.int64)
    inputs, ops = view[..., 0], view[..., 1]
    bad_op = (ops < 0) | (ops >= len(OPS))
    if bad_op.any():
        a, c, m, e = np.argwhere(bad_op)[0]
        raise HarnessError(
            f"{_describe(a if not single else None, c, m)}: unknown op index {ops[a, c, m, e]}; "
            f"valid 0..{len(OPS) - 1} = {OPS}"
        )
    limit = (np.arange(N_NODES) + 2)[None, None, :, None]
    bad_in = (inputs < 0) | (inputs >= limit)
    if bad_in.any():
        a, c, m, e = np.argwhere(bad_in)[0]
        raise HarnessError(
            f"{_describe(a if not single else None, c, m)}: input {inputs[a, c, m, e]} is not an earlier node; "
            f"valid inputs 0..{m + 1}"
        )
    same = inputs[..., 0] == inputs[..., 1]
    if same.any():
        a, c, m = np.argwhere(same)[0]
        raise HarnessError(
            f"{_describe(a if not single else None, c, m)}: both edges read node {inputs[a, c, m, 0]}; "
            "a node needs 2 distinct inputs"
        )
    swap = inputs[..., 0] > inputs[..., 1]
    view = np.where(swap[..., None, None], view[..., ::-1, :], view)
    out = view.reshape(len(arr), ENCODING_LENGTH).astype(np.int8)
    return out[0] if single else out


# ----------------------------------------------------------------------------------------------
# genotype <-> encoding
# ----------------------------------------------------------------------------------------------


def _op_index(op: Any, where: str) -> int:
    if op not in OPS:
        raise HarnessError(f"{where}: unknown op {op!r}; valid ops: {OPS}")
    return OPS.index(op)


def _check_concat(concat: Any, name: str) -> tuple[int, ...]:
    """``concat`` if it is NB301's ``range(2, 6)`` (as a range, list or tuple); raises otherwise."""
    if not isinstance(concat, (range, list, tuple)) or tuple(concat) != _CONCAT:
        raise HarnessError(
            f"a DARTS genotype's {name} is {concat!r}; NB301 cells concatenate nodes 2..5: range(2, 6) = {list(_CONCAT)}"
        )
    return _CONCAT


def _genotype_pairs(genotype: Any) -> np.ndarray:
    """``(input, op index)`` pairs ``[2, 8, 2]`` of a genotype (or its string), in the genotype's order.

    Checks the form (8 pairs per cell, known ops, integer inputs, concat ``range(2, 6)``), not the graph:
    :func:`check_encodings` does that.
    """
    if isinstance(genotype, str):
        genotype = parse_genotype(genotype)
    out = np.zeros((2, 2 * N_NODES, 2), dtype=np.int64)
    for c, cell_name in enumerate(CELLS):
        cell = getattr(genotype, cell_name, None)
        if cell is None or isinstance(cell, str) or len(cell) != 2 * N_NODES:
            n = "missing" if cell is None else (len(cell) if not isinstance(cell, str) else "a string")
            raise HarnessError(f"a DARTS genotype's {cell_name} cell lists 8 (op, input) pairs; got {n}")
        _check_concat(getattr(genotype, f"{cell_name}_concat", _CONCAT), f"{cell_name}_concat")
        for k, pair in enumerate(cell):
            where = f"{cell_name} cell node {k // 2 + 2}"
            if not isinstance(pair, Sequence) or isinstance(pair, str) or len(pair) != 2:
                raise HarnessError(f"{where}: expected an (op, input) pair, got {pair!r}")
            op, source = pair
            if not is_int(source):
                raise HarnessError(f"{where}: input must be an integer node id, got {source!r}")
            out[c, k] = (int(source), _op_index(op, where))
    return out


def _pairs_to_genotype(pairs: np.ndarray) -> Genotype:
    cells = [tuple((OPS[int(op)], int(src)) for src, op in pairs[c]) for c in range(2)]
    return Genotype(normal=cells[0], normal_concat=_CONCAT, reduce=cells[1], reduce_concat=_CONCAT)


def genotype_to_encoding(genotype: Any) -> np.ndarray:
    """Canonical ``int8[32]`` encoding of a genotype (object with ``.normal``/``.reduce``, or its string)."""
    return check_encodings(_genotype_pairs(genotype).reshape(ENCODING_LENGTH))


def encoding_to_genotype(enc: Any) -> Genotype:
    """The DARTS genotype of one encoding (edges of a node ordered by input)."""
    return _pairs_to_genotype(check_encodings(enc).reshape(2, 2 * N_NODES, 2))


def _literal(node: ast.expr) -> Any:
    """``ast.literal_eval`` that also reads ``range(a, b)``, as DARTS prints the concat fields."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range" and not node.keywords:
        return range(*(ast.literal_eval(arg) for arg in node.args))
    return ast.literal_eval(node)


def parse_genotype(text: str) -> Genotype:
    """Parse a printed DARTS genotype ``Genotype(normal=[('op', i), ...], ..., reduce=[...], ...)``.

    The string is parsed, not run: the ``normal`` and ``reduce`` literals are read with
    ``ast.literal_eval``; ``normal_concat``/``reduce_concat``, when given, must be ``range(2, 6)`` (or
    the list or tuple 2..5).
    """
    expected = (
        "\"Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=range(2, 6), reduce=[...], reduce_concat=range(2, 6))\""
    )
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        tree = None
    fields = {kw.arg: kw.value for kw in getattr(tree, "keywords", [])} if isinstance(tree, ast.Call) else {}
    if not {"normal", "reduce"} <= set(fields):
        raise HarnessError(f"not a DARTS genotype string: {text[:80]!r}; expected {expected}")
    values: dict[str, Any] = {}
    for name in ("normal", "normal_concat", "reduce", "reduce_concat"):
        try:
            values[name] = _literal(fields[name]) if name in fields else _CONCAT
            if name in CELLS:
                values[name] = tuple(tuple(p) if isinstance(p, (list, tuple)) else p for p in values[name])
        except (ValueError, SyntaxError, TypeError) as exc:
            raise HarnessError(f"cannot read the {name} of DARTS genotype string {text[:80]!r}: {exc}") from None
    return Genotype(
        values["normal"], _check_concat(values["normal_concat"], "normal_concat"),
        values["reduce"], _check_concat(values["reduce_concat"], "reduce_concat"),
    )


# ----------------------------------------------------------------------------------------------
# NB301 ConfigSpace dict <-> encoding
# ----------------------------------------------------------------------------------------------


def encoding_to_config(enc: Any, prefix: str = CONFIG_PREFIX) -> dict[str, str]:
    """The NB301 ConfigSpace dict of one encoding (active edges and ``inputs_node_*`` only)."""
    view = check_encodings(enc).reshape(2, N_NODES, 2, 2)
    config: dict[str, str] = {}
    for c, cell in enumerate(CELLS):
        for m in range(N_NODES):
            for src, op in view[c, m]:
                config[f"{prefix}edge_{cell}_{EDGE_START[m] + int(src)}"] = OPS[int(op)]
            if m > 0:
                a, b = sorted(int(s) for s in view[c, m, :, 0])
                config[f"{prefix}inputs_node_{cell}_{m + 2}"] = f"{a}_{b}"
    return config


_CONFIG_KEY = re.compile(r"^(edge|inputs_node)_(normal|reduce)_(\d+)$")


def config_to_encoding(config: Mapping[str, Any]) -> np.ndarray:
    """Canonical encoding of an NB301 config dict.

    Keys outside the cell topology (``init_channels``, optimizer settings, ...) are ignored. Raises
    if an ``inputs_node`` value is not a valid pair, if a chosen edge has no op, or if an edge is set
    that the node's inputs do not select (the official ConfigSpace forbids it).
    """
    edges: dict[tuple[int, int], Any] = {}
    inputs: dict[tuple[int, int], Any] = {}
    for key, value in config.items():
        if not isinstance(key, str):
            continue
        name = key.replace("_COLON_", ":")
        if not name.startswith(CONFIG_PREFIX):
            continue
        match = _CONFIG_KEY.match(name[len(CONFIG_PREFIX) :])
        if match is None:
            continue
        kind, cell, number = match.group(1), CELLS.index(match.group(2)), int(match.group(3))
        if kind == "edge":
            if number >= EDGES_PER_CELL:
                raise HarnessError(f"NB301 config key {key!r}: edges are numbered 0..{EDGES_PER_CELL - 1}")
            edges[(cell, number)] = value
        else:
            if not 3 <= number <= N_NODES + 1:
                raise HarnessError(f"NB301 config key {key!r}: inputs_node is set for nodes 3..{N_NODES + 1}")
            inputs[(cell, number)] = value
    out = np.zeros((2, N_NODES, 2, 2), dtype=np.int64)
    used: set[tuple[int, int]] = set()
    for c, cell in enumerate(CELLS):
        for m in range(N_NODES):
            if m == 0:
                pair = (0, 1)
            else:
                key = f"{CONFIG_PREFIX}inputs_node_{cell}_{m + 2}"
                value = inputs.get((c, m + 2))
                valid = [f"{a}_{b}" for a, b in INPUT_PAIRS[m]]
                if value is None:
                    raise HarnessError(f"NB301 config lacks {key!r}; valid values: {valid}")
                if value not in valid:
                    raise HarnessError(f"NB301 config {key!r} = {value!r}: not a pair of distinct earlier nodes; valid: {valid}")
                a, b = value.split("_")
                pair = (int(a), int(b))
            for e, src in enumerate(pair):
                number = EDGE_START[m] + src
                op = edges.get((c, number))
                where = f"NB301 config edge_{cell}_{number} (node {m + 2}, input {src})"
                if op is None:
                    raise HarnessError(f"{where} is selected by the node's inputs but has no op; valid ops: {OPS}")
                out[c, m, e] = (src, _op_index(op, where))
                used.add((c, number))
    extra = sorted(set(edges) - used)
    if extra:
        c, number = extra[0]
        raise HarnessError(
            f"NB301 config sets edge_{CELLS[c]}_{number}, but the inputs_node values do not select that edge"
        )
    return check_encodings(out.reshape(ENCODING_LENGTH))


def genotype_to_config(genotype: Any) -> dict[str, str]:
    return encoding_to_config(genotype_to_encoding(genotype))


def config_to_genotype(config: Mapping[str, Any]) -> Genotype:
    return encoding_to_genotype(config_to_encoding(config))


# ----------------------------------------------------------------------------------------------
# YAHPO ONNX integer codes <-> encoding (vectorised)
# ----------------------------------------------------------------------------------------------

# _PAIR_CODE[m][a, b] = ONNX code of inputs (a, b) of node m + 2 (0 where undefined)
_PAIR_CODE = np.zeros((N_NODES, N_NODES + 1, N_NODES + 1), dtype=np.int32)
for _m, _pairs in enumerate(INPUT_PAIRS):
    for _code, (_a, _b) in enumerate(_pairs, start=1):
        _PAIR_CODE[_m, _a, _b] = _code


def encodings_to_onnx(enc: Any) -> np.ndarray:
    """YAHPO ONNX ``x_cat`` rows ``int32 [n, 34]`` for encodings ``[n, 32]`` (one call, no Python loop per arch)."""
    arr = check_encodings(np.atleast_2d(enc)).astype(np.int64)
    n = len(arr)
    view = arr.reshape(n, 2, N_NODES, 2, 2)
    out = np.zeros((n, ONNX_LENGTH), dtype=np.int32)
    rows = np.arange(n)[:, None]
    for c in range(2):
        for m in range(N_NODES):
            src, op = view[:, c, m, :, 0], view[:, c, m, :, 1]
            out[rows, c * EDGES_PER_CELL + EDGE_START[m] + src] = _OP_TO_ONNX[op]
            if m > 0:
                out[:, 2 * EDGES_PER_CELL + c * (N_NODES - 1) + m - 1] = _PAIR_CODE[m, src[:, 0], src[:, 1]]
    return out


def onnx_to_encodings(x_cat: Any) -> np.ndarray:
    """Canonical encodings ``[n, 32]`` of YAHPO ``x_cat`` rows; raises on codes that are not a valid arch."""
    arr = np.atleast_2d(np.asarray(x_cat))
    if arr.ndim != 2 or arr.shape[1] != ONNX_LENGTH:
        raise HarnessError(f"YAHPO NB301 x_cat rows have {ONNX_LENGTH} integers; got shape {arr.shape}")
    arr = arr.astype(np.int64)
    n = len(arr)
    out = np.zeros((n, 2, N_NODES, 2, 2), dtype=np.int64)
    for c in range(2):
        edges = arr[:, c * EDGES_PER_CELL : (c + 1) * EDGES_PER_CELL]
        if ((edges < 0) | (edges > len(OPS))).any():
            raise HarnessError(f"YAHPO NB301 {CELLS[c]} edge code out of range; valid 0 (inactive) .. {len(OPS)}")
        for m in range(N_NODES):
            if m == 0:
                pairs = np.zeros((n, 2), dtype=np.int64)
                pairs[:, 1] = 1
            else:
                code = arr[:, 2 * EDGES_PER_CELL + c * (N_NODES - 1) + m - 1]
                if ((code < 1) | (code > len(INPUT_PAIRS[m]))).any():
                    raise HarnessError(
                        f"YAHPO NB301 inputs_node_{CELLS[c]}_{m + 2} code out of range; valid 1..{len(INPUT_PAIRS[m])}"
                    )
                pairs = np.asarray(INPUT_PAIRS[m], dtype=np.int64)[code - 1]
            node_edges = edges[:, EDGE_START[m] : EDGE_START[m] + m + 2]
            chosen = np.take_along_axis(node_edges, pairs, axis=1)
            active = (node_edges > 0).sum(axis=1)
            if (chosen == 0).any() or (active != 2).any():
                raise HarnessError(
                    f"YAHPO NB301 x_cat: {CELLS[c]} cell node {m + 2} must have exactly its 2 selected edges active"
                )
            out[:, c, m, :, 0] = pairs
            out[:, c, m, :, 1] = _ONNX_TO_OP[chosen]
    return check_encodings(out.reshape(n, ENCODING_LENGTH))


def check_onnx_codes(encoding_json: Mapping[str, Mapping[str, int]]) -> None:
    """Raise unless YAHPO's ``encoding_v2.json`` uses the codes this module hard-codes."""
    for c, cell in enumerate(CELLS):
        for number in range(EDGES_PER_CELL):
            want = {"#na#": 0, **{op: i for i, op in enumerate(ONNX_OP_NAMES, start=1)}}
            got = encoding_json.get(f"{YAHPO_PREFIX}edge_{cell}_{number}")
            if got != want:
                raise HarnessError(f"YAHPO encoding for edge_{cell}_{number} is {got!r}; this harness expects {want}")
        for m in range(1, N_NODES):
            want = {"#na#": 0, **{f"{a}_{b}": i for i, (a, b) in enumerate(INPUT_PAIRS[m], start=1)}}
            got = encoding_json.get(f"{YAHPO_PREFIX}inputs_node_{cell}_{m + 2}")
            if got != want:
                raise HarnessError(f"YAHPO encoding for inputs_node_{cell}_{m + 2} is {got!r}; this harness expects {want}")


# ----------------------------------------------------------------------------------------------
# NASLib compact <-> encoding
# ----------------------------------------------------------------------------------------------

Compact = tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]


def is_compact(obj: Any) -> bool:
    """True for a NASLib compact arch: 2 cells of 8 ``(input, op)`` integer pairs (lists or tuples)."""
    try:
        return (
            len(obj) == 2
            and all(len(cell) == 2 * N_NODES for cell in obj)
            and all(len(p) == 2 and all(is_int(v) for v in p) for cell in obj for p in cell)
        )
    except TypeError:
        return False


def _compact_pairs(compact: Any) -> np.ndarray:
    """``(input, op index)`` pairs ``[2, 8, 2]`` of a NASLib compact arch (or its string), in its order.

    Checks the form, not the graph: :func:`check_encodings` does that.
    """
    if isinstance(compact, str):
        try:
            compact = ast.literal_eval(compact)
        except (ValueError, SyntaxError) as exc:
            raise HarnessError(f"cannot parse NASLib compact arch {compact[:80]!r}: {exc}") from None
    if not is_compact(compact):
        raise HarnessError(
            f"a NASLib compact DARTS arch is 2 cells of 8 (input, op) integer pairs; got {str(compact)[:80]!r}"
        )
    return np.asarray(compact, dtype=np.int64)


def compact_to_encoding(compact: Any) -> np.ndarray:
    """Canonical encoding of a NASLib compact arch (or its string, as keys of NASLib's JSON files)."""
    return check_encodings(_compact_pairs(compact).reshape(ENCODING_LENGTH))


def genotype_to_compact(genotype: Any) -> Compact:
    """NASLib compact of a genotype, keeping the genotype's pair order."""
    pairs = _genotype_pairs(genotype)
    check_encodings(pairs.reshape(ENCODING_LENGTH))
    normal, reduce = (tuple((int(src), int(op)) for src, op in cell) for cell in pairs)
    return (normal, reduce)


def compact_to_genotype(compact: Any) -> Genotype:
    """DARTS genotype of a NASLib compact arch, keeping its pair order."""
    pairs = _compact_pairs(compact)
    check_encodings(pairs.reshape(ENCODING_LENGTH))
    return _pairs_to_genotype(pairs)


# ----------------------------------------------------------------------------------------------
# Resolving user input, sampling
# ----------------------------------------------------------------------------------------------


def _one_to_encoding(arch: Any) -> np.ndarray:
    if hasattr(arch, "normal") and hasattr(arch, "reduce"):
        return genotype_to_encoding(arch)
    if isinstance(arch, Mapping):
        return config_to_encoding(arch)
    if isinstance(arch, str):
        text = arch.strip()
        if text.startswith("Genotype") or "normal=" in text:
            return genotype_to_encoding(parse_genotype(text))
        if text.startswith(("[", "(")):
            return compact_to_encoding(text)
        raise HarnessError(
            f"cannot read DARTS arch {arch[:80]!r}: expected a genotype string \"Genotype(normal=[...], ...)\" "
            "or a NASLib compact string \"[[(0, 4), (1, 3), ...], [...]]\""
        )
    if is_compact(arch):
        return compact_to_encoding(arch)
    arr = np.asarray(arch)
    if arr.ndim == 1 and arr.shape[0] == ENCODING_LENGTH:
        return check_encodings(arr)
    raise HarnessError(
        f"cannot read DARTS arch {str(arch)[:80]!r}: expected a Genotype, a genotype string, an NB301 config dict, "
        f"a NASLib compact arch or a {ENCODING_LENGTH}-integer encoding"
    )


def to_encodings(archs: Any) -> np.ndarray:
    """Canonical encodings ``int8 [n, 32]`` for one arch or many, in any representation.

    One arch: a Genotype (or any object with ``.normal``/``.reduce``), a genotype string, an NB301
    config dict, a NASLib compact arch (or its string), or a 32-integer encoding. Many archs: a 2-D
    array of encodings (validated in one vectorised pass), or a list of single archs.
    """
    if isinstance(archs, np.ndarray) and archs.ndim == 2:
        return check_encodings(archs)
    if isinstance(archs, (str, Mapping)) or hasattr(archs, "normal") or is_compact(archs):
        return _one_to_encoding(archs)[None, :]
    arr = np.asarray(archs) if isinstance(archs, (list, tuple, np.ndarray)) and _all_ints(archs) else None
    if arr is not None and arr.ndim == 1:
        return _one_to_encoding(arr)[None, :]
    if arr is not None and arr.ndim == 2:
        return check_encodings(arr)
    if isinstance(archs, (list, tuple)):
        if not archs:
            raise HarnessError("empty list of DARTS archs")
        out = np.empty((len(archs), ENCODING_LENGTH), dtype=np.int8)
        for i, arch in enumerate(archs):
            try:
                out[i] = _one_to_encoding(arch)
            except HarnessError as exc:
                raise HarnessError(f"arch {i}: {exc}") from None
        return out
    return _one_to_encoding(archs)[None, :]


def _all_ints(obj: Any) -> bool:
    try:
        arr = np.asarray(obj)
    except (ValueError, TypeError):
        return False
    return arr.dtype.kind in "iu" and arr.ndim in (1, 2)


def sample_encodings(n: int, seed: int | np.random.Generator) -> np.ndarray:
    """``n`` distinct architectures drawn uniformly from the NB301 space, as encodings ``[n, 32]``.

    Uniform over the :func:`search_space_size` architectures: each node's input pair is uniform over
    its ``C(m + 2, 2)`` pairs and each edge's op uniform over the 7 ops, independently (the same law
    as sampling NB301's ConfigSpace). Duplicates (probability ~ n**2 / 2e18) are redrawn.
    """
    if not is_int(n) or n < 1:
        raise HarnessError(f"cannot sample {n!r} NB301 archs: n must be a positive integer")
    rng = make_rng(seed)
    out = np.zeros((0, ENCODING_LENGTH), dtype=np.int8)
    while len(out) < n:
        need = n - len(out)
        draw = np.zeros((need, 2, N_NODES, 2, 2), dtype=np.int8)
        for c in range(2):
            for m in range(N_NODES):
                pairs = np.asarray(INPUT_PAIRS[m], dtype=np.int8)
                draw[:, c, m, :, 0] = pairs[rng.integers(len(pairs), size=need)]
                draw[:, c, m, :, 1] = rng.integers(len(OPS), size=(need, 2))
        merged = np.concatenate([out, draw.reshape(need, ENCODING_LENGTH)])
        _, first = np.unique(merged, axis=0, return_index=True)
        out = merged[np.sort(first)]
    return out

