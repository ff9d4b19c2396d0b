"""NAS-Bench-1Shot1 search spaces 1, 2 and 3 (Zela, Siems & Hutter, ICLR 2020): sub-spaces of NB101.

A cell has ``k`` *choice blocks* (intermediate nodes 1..k) between the input (node 0) and the output
(node ``k+1``). Each choice block picks one op from :data:`OPS` and a fixed number of parents among
the earlier nodes; the output picks its parents too. The thesis calls the spaces NB101-1/2/3.

=====  =======================  ====  ============  ===========================
space  parents of 1..k, output  k     configs       padded to 7 NB101 vertices
=====  =======================  ====  ============  ===========================
1      1, 2, 2, 2 | 2           4     14,580        yes (unused vertex 5)
2      1, 1, 2, 2 | 3           4     29,160        yes (unused vertex 5)
3      1, 1, 1, 2, 2 | 2        5     1,312,200     no
=====  =======================  ====  ============  ===========================

A *configuration* (one value per hyperparameter of the official ConfigSpace:
``choice_block_{i}_parents`` and ``choice_block_{i}_op``) maps to an NB101 spec. Spaces 1 and 2 have
only 6 nodes, so, as the official ``upscale_to_nasbench_format``, a vertex with no edges is inserted
at position 5 (before the output) with op ``conv1x1-bn-relu``; NB101 pruning removes it.

Counts, as the official generators define them (``search_space.py``):

* *with loose ends*: parent choices of every node times one op per choice block that has an
  outgoing edge (the op of a block whose output nobody reads is irrelevant):
  ``sum over parent choices of 3 ** (#blocks with an outgoing edge)`` = 6,240 / 16,632 / 363,648.
* *without loose ends*: graphs built backwards from the output, so that every present block feeds
  the output (``generate_adjacency_matrix_without_loose_ends``), times one op per present block:
  2,487 / 3,609 / 24,066.

Configurations are enumerated in a fixed order: parent choices of nodes 1..k+1 in
``itertools.product`` order of ``itertools.combinations(range(node), n_parents)``, then ops of blocks
1..k in ``itertools.product(OPS)`` order. A configuration's index is its position in that order.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from tqdm import tqdm

from harness.rng import is_int, make_rng
from harness.errors import HarnessError, choices
from harness.spaces.nb101 import CONV1X1, INPUT, OPS, OUTPUT, ModelSpec, vertices_on_paths

#: Op placed on the padding vertex of spaces 1 and 2, and on blocks whose op does not matter.
PLACEHOLDER_OP = CONV1X1


@dataclass(frozen=True)
class Config:
    """One NAS-Bench-1Shot1 configuration: parents of nodes 1..k+1 and ops of blocks 1..k."""

    space: int
    parents: tuple[tuple[int, ...], ...]
    ops: tuple[str, ...]

    def __str__(self) -> str:
        parts = [f"{i}:{self.ops[i - 1] if i <= len(self.ops) else 'output'}<-{list(p)}" for i, p in enumerate(self.parents, 1)]
        return f"nb1shot1-{self.space}[{' '.join(parts)}]"


@dataclass(frozen=True)
class SearchSpace:
    """One of the three spaces; ``in_degrees`` lists the number of parents of nodes 1..k and the output."""

    number: int
    in_degrees: tuple[int, ...]

    @property
    def n_blocks(self) -> int:
        return len(self.in_degrees) - 1

    @property
    def padded(self) -> bool:
        """Spaces with fewer than 5 blocks get an unused vertex so the spec has 7 vertices."""
        return self.n_blocks < 5

    @cached_property
    def parent_choices(self) -> tuple[tuple[tuple[int, ...], ...], ...]:
        """For node ``i`` (1-based), ``parent_choices[i-1]`` lists its allowed parent tuples."""
        return tuple(tuple(itertools.combinations(range(node), k)) for node, k in enumerate(self.in_degrees, start=1))

    @cached_property
    def graphs(self) -> tuple[tuple[tuple[int, ...], ...], ...]:
        """Every choice of parents, in enumeration order."""
        return tuple(itertools.product(*self.parent_choices))

    @property
    def n_configs(self) -> int:
        return len(self.graphs) * len(OPS) ** self.n_blocks

    # -- configurations and indices ---------------------------------------------------------

    def config(self, index: int) -> Config:
        """The configuration at ``index`` of the enumeration order."""
        if not is_int(index) or not 0 <= index < self.n_configs:
            raise HarnessError(f"nb1shot1-{self.number} config index must be an integer 0..{self.n_configs - 1}, got {index!r}")
        graph_index, op_index = divmod(int(index), len(OPS) ** self.n_blocks)
        digits = np.base_repr(op_index, base=len(OPS)).zfill(self.n_blocks)
        return Config(self.number, self.graphs[graph_index], tuple(OPS[int(d)] for d in digits))

    def index(self, config: Config) -> int:
        """Position of ``config`` in the enumeration order (validates it)."""
        config = self.validate(config)
        graph_index = self._graph_index[config.parents]
        op_index = 0
        for op in config.ops:
            op_index = op_index * len(OPS) + OPS.index(op)
        return graph_index * len(OPS) ** self.n_blocks + op_index

    @cached_property
    def _graph_index(self) -> dict[tuple[tuple[int, ...], ...], int]:
        return {graph: i for i, graph in enumerate(self.graphs)}

    def validate(self, config: Config) -> Config:
        """``config`` checked against this space, with parents as tuples of ints and ops as a tuple.

        Parents may be given as lists or in the string form ConfigSpace values take in JSON, ``"(0, 1)"``.
        """
        if config.space != self.number:
            raise HarnessError(f"config belongs to nb1shot1-{config.space}, not nb1shot1-{self.number}")
        return self._checked(config.parents, config.ops)

    def _checked(self, parents: object, ops: object) -> Config:
        if not isinstance(parents, (list, tuple)) or len(parents) != len(self.in_degrees):
            raise HarnessError(
                f"nb1shot1-{self.number} configs give parents for {len(self.in_degrees)} nodes (a tuple), got {parents!r}"
            )
        if not isinstance(ops, (list, tuple)) or len(ops) != self.n_blocks:
            raise HarnessError(f"nb1shot1-{self.number} configs have {self.n_blocks} ops (a tuple), got {ops!r}")
        for op in ops:
            if op not in OPS:
                raise choices("op", op, OPS)
        checked = tuple(
            _parents(value, node, allowed, self.number)
            for node, (value, allowed) in enumerate(zip(parents, self.parent_choices), start=1)
        )
        return Config(self.number, checked, tuple(ops))

    def from_configspace(self, values: Mapping[str, object]) -> Config:
        """A configuration from the official ConfigSpace dict (``choice_block_{i}_parents``/``_op``)."""
        if not isinstance(values, Mapping):
            raise HarnessError(
                f"nb1shot1-{self.number} ConfigSpace values are a dict such as "
                f"{{'choice_block_1_parents': (0,), 'choice_block_1_op': {OPS[0]!r}, ...}}; got {values!r}"
            )
        try:
            parents = [values[f"choice_block_{i}_parents"] for i in range(1, self.n_blocks + 2)]
            ops = [values[f"choice_block_{i}_op"] for i in range(1, self.n_blocks + 1)]
        except KeyError as err:
            raise HarnessError(f"nb1shot1-{self.number} config lacks {err.args[0]!r}") from None
        return self._checked(parents, ops)

    # -- mapping to NB101 ----------------------------------------------------------------------

    def adjacency(self, parents: tuple[tuple[int, ...], ...]) -> np.ndarray:
        """The (k+2)x(k+2) adjacency matrix of a parent choice (before padding)."""
        size = len(parents) + 1
        matrix = np.zeros((size, size), dtype=np.int8)
        for node, node_parents in enumerate(parents, start=1):
            matrix[list(node_parents), node] = 1
        return matrix

    def to_spec(self, config: Config) -> ModelSpec:
        """The NB101 spec of ``config``: 7 vertices, padded with an unused vertex in spaces 1 and 2."""
        config = self.validate(config)
        matrix = self.adjacency(config.parents)
        ops = [INPUT, *config.ops, OUTPUT]
        if self.padded:
            matrix = np.insert(np.insert(matrix, self.n_blocks + 1, 0, axis=1), self.n_blocks + 1, 0, axis=0)
            ops.insert(self.n_blocks + 1, PLACEHOLDER_OP)
        return ModelSpec(matrix, ops)

    def nb101_hashes(self, configs: Sequence[Config]) -> list[str]:
        """``[self.to_spec(c).hash() for c in configs]`` for *validated* configs, hashing each
        distinct NB101 cell once.

        The pruned cell, and with it the hash, is a function of the graph's pruned matrix and the ops
        of the blocks pruning keeps (:meth:`pruned_graph`). Configurations that agree on both share
        one hash computation (space 1's 14,580 configurations are 2,685 cells).
        """
        memo: dict[tuple[bytes, tuple[str, ...]], str] = {}
        out = []
        for config in configs:
            graph, blocks = self.pruned_graph(config.parents)
            key = (graph, tuple(config.ops[b - 1] for b in blocks))
            if key not in memo:
                memo[key] = self.to_spec(config).hash()
            out.append(memo[key])
        return out

    def pruned_graph(self, parents: tuple[tuple[int, ...], ...]) -> tuple[bytes, tuple[int, ...]]:
        """The pruned matrix of a parent choice (vertex count + matrix bytes) and the blocks it keeps.

        Pruning keeps the same vertices for every configuration of one graph (ops never decide
        reachability; the padding vertex of spaces 1 and 2 has no edges and is never kept), so these
        two, plus the ops of the kept blocks, determine the pruned cell. Cached per graph.
        """
        found = self._pruned_graphs.get(parents)
        if found is None:
            matrix = self.adjacency(parents)
            vertices = vertices_on_paths(matrix)
            if vertices is None:  # not in these spaces (every node has a parent); to_spec says why
                vertices = np.arange(0)
            blocks = tuple(int(v) for v in vertices if 1 <= v <= self.n_blocks)
            kept = matrix[np.ix_(vertices, vertices)]
            found = self._pruned_graphs[parents] = (bytes([len(vertices)]) + kept.tobytes(), blocks)
        return found

    @cached_property
    def _pruned_graphs(self) -> dict[tuple[tuple[int, ...], ...], tuple[bytes, tuple[int, ...]]]:
        return {}

    def cells(self, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The NB101 cell of every configuration: ``(hashes, cell)``, where ``hashes`` holds the
        distinct module hashes of the space (sorted, ``S32``) and ``hashes[cell[i]]`` is
        ``to_spec(config(i)).hash()`` (``cell``: int32, one entry per configuration index).

        Per graph, the hash depends only on the ops of the kept blocks (:meth:`pruned_graph`): each
        graph hashes one configuration per combination of its kept ops (3^kept, once per distinct
        pruned matrix), and configuration ``graph * 3^k + op_index`` (op digits of blocks 1..k, most
        significant first, as :meth:`config`) takes the hash of its kept-op combination. No
        configuration object is built for the other ops. ``progress`` shows a bar (per graph) when
        hashing takes more than a second (space 3: its 1,312,200 configurations are 55,854 cells).
        """
        n_ops = len(OPS)
        per_graph = n_ops**self.n_blocks
        digits = np.asarray(list(itertools.product(range(n_ops), repeat=self.n_blocks)), dtype=np.int64)
        memo: dict[tuple[bytes, tuple[int, ...]], int] = {}
        found: list[str] = []
        cell = np.empty(self.n_configs, dtype=np.int64)
        graphs = tqdm(self.graphs, desc=f"hashing nb1shot1-{self.number}", unit="graph", disable=not progress, delay=1.0)
        for g, parents in enumerate(graphs):
            graph, blocks = self.pruned_graph(parents)
            combos = list(itertools.product(range(n_ops), repeat=len(blocks)))
            ids = np.empty(len(combos), dtype=np.int64)
            for c, combo in enumerate(combos):
                if (graph, combo) not in memo:
                    ops = [PLACEHOLDER_OP] * self.n_blocks
                    for block, op in zip(blocks, combo):
                        ops[block - 1] = OPS[op]
                    memo[graph, combo] = len(found)
                    found.append(self.to_spec(Config(self.number, parents, tuple(ops))).hash())
                ids[c] = memo[graph, combo]
            combo_of_op_index = digits[:, [b - 1 for b in blocks]] @ n_ops ** np.arange(len(blocks))[::-1]
            cell[g * per_graph : (g + 1) * per_graph] = ids[combo_of_op_index]
        hashes, position = np.unique(np.asarray(found, dtype="S32"), return_inverse=True)
        return hashes, position[cell].astype(np.int32)

    # -- loose ends and counts ------------------------------------------------------------------

    def blocks_with_outputs(self, parents: tuple[tuple[int, ...], ...]) -> list[int]:
        """Choice blocks (1..k) that feed some later node; the others are loose ends."""
        used = {p for node_parents in parents for p in node_parents}
        return [b for b in range(1, self.n_blocks + 1) if b in used]

    def has_loose_ends(self, config: Config) -> bool:
        return len(self.blocks_with_outputs(config.parents)) < self.n_blocks

    def count(self, loose_ends: bool) -> int:
        """Number of architectures with / without loose ends (module docstring)."""
        if loose_ends:
            return sum(len(OPS) ** len(self.blocks_with_outputs(g)) for g in self.graphs)
        return sum(len(OPS) ** len(blocks) for blocks in self._backward_graphs().values())

    def _backward_graphs(self) -> dict[tuple[tuple[int, ...], ...], list[int]]:
        """The official no-loose-ends graphs (``SearchSpace._generate_adjacency_matrix``), keyed by the
        parents of every node (empty for absent blocks), with their present blocks.

        The official generator starts at the output with an empty graph. At a node it stops (and
        keeps the graph) as soon as the graph passes :meth:`_complete`; otherwise it tries every
        combination of the node's missing parents among the earlier nodes not yet linked to it, and
        after adding *each* parent edge recurses into that parent. A node reached a second time
        with all its parents already set offers no combination, so that branch ends; the
        enumeration therefore keeps exactly the graphs this walk reaches, which are the ones the
        paper counts.
        """
        size = self.n_blocks + 2
        found: dict[tuple[tuple[int, ...], ...], list[int]] = {}

        def grow(matrix: np.ndarray, node: int) -> None:
            if self._complete(matrix):
                key = tuple(tuple(np.flatnonzero(matrix[:, v]).tolist()) for v in range(1, size))
                present = [b for b in range(1, self.n_blocks + 1) if matrix[b].any()]
                found.setdefault(key, present)
                return
            missing = self.in_degrees[node - 1] - int(matrix[:, node].sum()) if node else 0
            if node == 1:
                options: list[tuple[int, ...]] = [(0,)]
            else:
                free = [p for p in range(node) if not matrix[p, node]]
                options = list(itertools.combinations(free, missing))
            for parents in options:
                branch = matrix.copy()
                for parent in parents:
                    branch[parent, node] = 1
                    grow(branch, parent)

        grow(np.zeros((size, size), dtype=np.int8), size - 1)
        return found

    def _complete(self, matrix: np.ndarray) -> bool:
        """The official ``_check_validity_of_adjacency_matrix``: some block is used, every node with
        inputs has exactly its number of parents, as many nodes have inputs as have outputs, the
        input is used, and there are at most 9 edges."""
        has_out = matrix.any(axis=1)
        has_in = matrix.any(axis=0)
        if not has_out[1:-1].any():
            return False
        in_degree = matrix.sum(axis=0)
        for node in np.flatnonzero(has_in):
            if in_degree[node] != self.in_degrees[node - 1]:
                return False
        return bool(has_in.sum() == has_out.sum() and has_out[0] and matrix.sum() <= 9)

    def enumerate(self, loose_ends: bool = True) -> Iterator[Config]:
        """One configuration per architecture counted by :meth:`count` (irrelevant ops set to the
        placeholder op, parents of absent blocks set to their first choice)."""
        if loose_ends:
            for graph in self.graphs:
                active = self.blocks_with_outputs(graph)
                for combo in itertools.product(OPS, repeat=len(active)):
                    ops = [PLACEHOLDER_OP] * self.n_blocks
                    for block, op in zip(active, combo):
                        ops[block - 1] = op
                    yield Config(self.number, graph, tuple(ops))
            return
        for key, present in self._backward_graphs().items():
            graph = tuple(key[i] if key[i] else self.parent_choices[i][0] for i in range(len(key)))
            for combo in itertools.product(OPS, repeat=len(present)):
                ops = [PLACEHOLDER_OP] * self.n_blocks
                for block, op in zip(present, combo):
                    ops[block - 1] = op
                yield Config(self.number, graph, tuple(ops))

    def sample(self, n: int, seed: int | np.random.Generator) -> list[Config]:
        """``n`` distinct configurations drawn uniformly (without replacement) from the config space.

        Distinct configurations are not distinct NB101 cells: ops of blocks without outputs, and
        isomorphic graphs, give the same cell. Space 1's 14,580 configurations are 2,685 cells, and
        ``sample(500, seed=0)`` holds 234 distinct cells; compare ``to_spec(c).hash()`` to count them.
        """
        if not is_int(n) or not 0 < n <= self.n_configs:
            raise HarnessError(f"cannot sample {n!r} configs from nb1shot1-{self.number}: n must be an integer 1..{self.n_configs}")
        return [self.config(int(i)) for i in np.sort(make_rng(seed).choice(self.n_configs, size=n, replace=False))]


def _parents(value: object, node: int, allowed: tuple[tuple[int, ...], ...], number: int) -> tuple[int, ...]:
    """Parents of ``node`` as a tuple of ints: a tuple or list of ints, or its string ``"(0, 1)"``."""
    try:
        parsed = ast.literal_eval(value) if isinstance(value, str) else value
    except (ValueError, SyntaxError, TypeError):
        parsed = None
    if isinstance(parsed, (list, tuple)) and all(is_int(p) for p in parsed) and tuple(parsed) in allowed:
        return tuple(int(p) for p in parsed)
    raise choices(f"parents of node {node} in nb1shot1-{number} (a tuple of ints, or its string)", value, allowed)


SPACES: dict[int, SearchSpace] = {
    1: SearchSpace(1, (1, 2, 2, 2, 2)),
    2: SearchSpace(2, (1, 1, 2, 2, 3)),
    3: SearchSpace(3, (1, 1, 1, 2, 2, 2)),
}


def search_space(number: int) -> SearchSpace:
    if not is_int(number) or number not in SPACES:
        raise choices("NAS-Bench-1Shot1 search space", number, list(SPACES))
    return SPACES[number]
