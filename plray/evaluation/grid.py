"""Ground truth on regular grids for continuous-state goal-conditioned tasks.

The paper's Q_NMSE reference values (docs/method.md#q-accuracy) and its unseen-goal planner
(docs/method.md#unseen-goal-planning) both run Bellman iterations on a regular grid of states,
reading values at off-grid successors by N-linear interpolation:

    V(x) ← max_a [ r(x'_a) + γ (1 − done(x'_a)) · Interp(V, x'_a) ],     x'_a = f(x, a),

for every node x (Reacher: 50⁴ nodes over [−π, π]² × [−2, 2]²; MountainCar: 200² nodes; γ = 0.99; up
to 10 000 iterations or a sup-norm change below 1e-10). The successor function f is passed in, so
the same code runs on a task's true dynamics (R*, Q^π) and on an extracted world model (R_WM).

Design:

* :class:`RegularGrid` lays ``n_j`` nodes on dim j. A non-periodic dim holds both endpoints
  (``linspace(low, high, n)``, spacing (high − low)/(n − 1)) and queries outside [low, high] are
  clamped to the box (constant extrapolation). A periodic dim (angles over [−π, π)) holds
  ``low + i·h`` for i < n with h = (high − low)/n: the node at ``high`` would duplicate the one at
  ``low``, so it is left out and the cell between the last node and the seam interpolates between
  the last node and node 0. Queries are wrapped, so any real angle is accepted.
* Interpolation touches the 2^d corners of the cell around each query; corner c takes, on dim j,
  the upper node when bit (d − 1 − j) of c is set. Weights are non-negative and sum to 1.
* :func:`grid_mdp` evaluates the successors, rewards and terminations of every (node, action)
  once, and folds γ(1 − done) into a sparse CSR matrix T of shape (A·N, N), rows action-major
  (row a·N + i). A backup is then ``Q = r + T @ V``: one sparse mat-vec per iteration. Rewards
  and terminations are evaluated at the *unclamped* successor; only the interpolation clamps.
  Forbidden successors (``forbidden_fn``) terminate with reward 0, whatever the goal says.
* Everything is float64. Work is chunked so that each chunk holds ``CHUNK_ENTRIES = 2**22``
  query-corner entries (about 0.1–0.2 GB of temporaries at peak). The CSR matrix holds at most
  A·N·2^d entries of 12 bytes (8-byte weight, 4-byte column; zero weights are dropped), filled
  into preallocated buffers (no concatenation copy): ≈ 0.27 GB for a 20⁴ grid with 9 actions
  (0.46 GB peak RSS in all), 5.4 MB for MountainCar's 200² with 3 actions, but ≈ 11 GB for the
  paper's 50⁴ Reacher grid.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Literal

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from plray.core.types import (
    BoolArray,
    FloatArray,
    ForbiddenFn,
    IntArray,
    NextStateFn,
    PolicyFn,
    RewardFn,
    SuccessorFn,
    TerminalFn,
)
from plray.evaluation.goals import Goal, check_output, task_goal
from plray.evaluation.rollout import task_returns
from plray.utils.validation import PlrayInputError, as_float_array, check_gamma, check_shape

if TYPE_CHECKING:
    from plray.envs.base import GoalTask

DEFAULT_TOL = 1e-10
DEFAULT_MAX_ITERS = 10_000
CHUNK_ENTRIES = 2**22
"""Query-corner entries (B · 2^d) per chunk of interpolation work."""

_INT32_MAX = np.iinfo(np.int32).max


def _check_positive_int(value: object, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise PlrayInputError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    if int(value) < minimum:
        raise PlrayInputError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


class RegularGrid:
    """A regular grid over the box [low, high] with N-linear interpolation.

    Args:
        low: lower corner of the box, shape (d,).
        high: upper corner, shape (d,), strictly above ``low``.
        resolution: nodes per dim, an int (every dim) or a sequence of d ints, each >= 2.
        periodic_dims: dims that wrap with period (high − low), e.g. angles over [−π, π). Their
            nodes are ``low + i (high − low) / n`` for i < n: ``high`` itself is the same point as
            ``low`` and is not a node. Non-periodic dims hold both endpoints.

    Attributes:
        ndim: d.
        shape: nodes per dim, (n_0, …, n_{d−1}); nodes are flattened in C order.
        num_points: N = ∏ n_j.
        spacing: node spacing per dim, shape (d,).
        periodic: whether each dim wraps, shape (d,) bool.
        axes: node coordinates per dim, a list of d arrays of shapes (n_j,).
    """

    def __init__(
        self,
        low: FloatArray | Sequence[float],
        high: FloatArray | Sequence[float],
        resolution: int | Sequence[int],
        periodic_dims: Sequence[int] = (),
    ) -> None:
        low_arr = as_float_array(low, "low", ndim=1)
        high_arr = as_float_array(high, "high", ndim=1)
        d = low_arr.size
        if d == 0:
            raise PlrayInputError("low: the box needs at least one dimension")
        check_shape(high_arr, "high", (d,), ("d",))
        if not (high_arr > low_arr).all():
            raise PlrayInputError(f"high: must exceed low on every dim, got low={low_arr}, high={high_arr}")
        if isinstance(resolution, int | np.integer) and not isinstance(resolution, bool):
            res = [int(resolution)] * d
        else:
            res_arr = np.asarray(resolution)
            if res_arr.shape != (d,) or not np.issubdtype(res_arr.dtype, np.integer):
                raise PlrayInputError(f"resolution: expected an int or {d} ints (one per dim), got {resolution!r}")
            res = [int(n) for n in res_arr]
        if min(res) < 2:
            raise PlrayInputError(f"resolution: every dim needs at least 2 nodes, got {tuple(res)}")
        periodic = np.zeros(d, dtype=bool)
        for j in periodic_dims:
            if isinstance(j, bool) or not isinstance(j, int | np.integer) or not 0 <= int(j) < d:
                raise PlrayInputError(f"periodic_dims: expected dims in [0, {d}), got {tuple(periodic_dims)}")
            if periodic[int(j)]:
                raise PlrayInputError(f"periodic_dims: dim {j} listed twice in {tuple(periodic_dims)}")
            periodic[int(j)] = True

        self.low = low_arr
        self.high = high_arr
        self.ndim = d
        self.shape = tuple(res)
        self.num_points = int(np.prod(res, dtype=np.int64))
        self.periodic = periodic
        n = np.asarray(res, dtype=np.float64)
        self.spacing = (high_arr - low_arr) / np.where(periodic, n, n - 1)
        self.axes = [
            low_arr[j] + np.arange(res[j]) * self.spacing[j]
            if periodic[j]
            else np.linspace(low_arr[j], high_arr[j], res[j])
            for j in range(d)
        ]
        self.strides = np.array([int(np.prod(res[j + 1 :], dtype=np.int64)) for j in range(d)], dtype=np.int64)

    def __repr__(self) -> str:
        periodic = tuple(int(j) for j in np.flatnonzero(self.periodic))
        return (
            f"RegularGrid(low={self.low.tolist()}, high={self.high.tolist()}, "
            f"resolution={self.shape}, periodic_dims={periodic})"
        )

    @property
    def corners(self) -> int:
        """2^d, the number of interpolation corners per query."""
        return 1 << self.ndim

    @cached_property
    def points(self) -> FloatArray:
        """Coordinates of every node in C order, shape (N, d)."""
        return self.node_points(np.arange(self.num_points))

    def node_points(self, indices: IntArray) -> FloatArray:
        """Coordinates of the nodes with flat indices ``indices`` (B,), shape (B, d)."""
        multi = np.unravel_index(np.asarray(indices, dtype=np.int64), self.shape)
        return np.stack([self.axes[j][multi[j]] for j in range(self.ndim)], axis=-1)

    def chunk_size(self, chunk_size: int | None = None) -> int:
        """Queries per chunk: ``chunk_size`` if given, else enough for ``CHUNK_ENTRIES`` corner entries."""
        if chunk_size is not None:
            return _check_positive_int(chunk_size, "chunk_size")
        return max(1, CHUNK_ENTRIES // self.corners)

    def _chunks(self, total: int, chunk_size: int | None) -> Iterator[slice]:
        size = self.chunk_size(chunk_size)
        for start in range(0, total, size):
            yield slice(start, min(start + size, total))

    def _check_queries(self, x: object, name: str) -> FloatArray:
        arr = as_float_array(x, name, ndim=2)
        check_shape(arr, name, (None, self.ndim), ("B", "d"))
        return arr

    def _weights(self, x: FloatArray) -> tuple[IntArray, FloatArray]:
        """Unchecked corner indices and weights of queries (B, d), each (B, 2^d)."""
        B = x.shape[0]
        idx = np.zeros((B, 1), dtype=np.int64)
        w = np.ones((B, 1))
        for j in range(self.ndim):
            n = self.shape[j]
            u = (x[:, j] - self.low[j]) / self.spacing[j]
            if self.periodic[j]:
                u = np.mod(u, n)  # in [0, n]; n only through rounding, handled by the minimum below
                i0 = np.minimum(np.floor(u), n - 1)
                t = u - i0
                i1 = np.where(i0 == n - 1, 0.0, i0 + 1)
            else:
                u = np.clip(u, 0.0, n - 1)
                i0 = np.minimum(np.floor(u), n - 2)
                t = u - i0
                i1 = i0 + 1
            lo = i0.astype(np.int64) * self.strides[j]
            hi = i1.astype(np.int64) * self.strides[j]
            idx = np.stack([idx + lo[:, None], idx + hi[:, None]], axis=-1).reshape(B, -1)
            w = np.stack([w * (1.0 - t)[:, None], w * t[:, None]], axis=-1).reshape(B, -1)
        return idx, w

    def interpolation_weights(self, x: FloatArray) -> tuple[IntArray, FloatArray]:
        """Corner node indices and N-linear weights of arbitrary query points.

        Non-periodic dims are clamped to [low, high]; periodic dims are wrapped.

        Args:
            x: query points, shape (B, d).

        Returns:
            ``(indices, weights)``, each of shape (B, 2^d): flat node indices (int64) and
            non-negative weights summing to 1 per row, so that
            ``Interp(values, x)[b] = Σ_c weights[b, c] · values[indices[b, c]]``.
        """
        return self._weights(self._check_queries(x, "x"))

    def interpolate(self, values: FloatArray, x: FloatArray, *, chunk_size: int | None = None) -> FloatArray:
        """N-linear interpolation of node values at arbitrary points.

        Args:
            values: values at the nodes, shape (N,) or (N, m).
            x: query points, shape (B, d).
            chunk_size: queries per chunk (default: ``CHUNK_ENTRIES`` / 2^d).

        Returns:
            Interpolated values, shape (B,) or (B, m).
        """
        vals = as_float_array(values, "values")
        if vals.ndim not in (1, 2) or vals.shape[0] != self.num_points:
            raise PlrayInputError(
                f"values: expected shape (N,) or (N, m) with N = {self.num_points} nodes, got {vals.shape}"
            )
        x = self._check_queries(x, "x")
        out = np.empty((x.shape[0], *vals.shape[1:]))
        for sl in self._chunks(x.shape[0], chunk_size):
            idx, w = self._weights(x[sl])
            if vals.ndim == 1:
                out[sl] = np.einsum("bc,bc->b", vals[idx], w)
            else:
                out[sl] = np.einsum("bcm,bc->bm", vals[idx], w)
        return out

    def interpolation_matrix(self, x: FloatArray, *, chunk_size: int | None = None) -> sp.csr_array:
        """The sparse matrix W with ``W @ values = interpolate(values, x)``.

        Args:
            x: query points, shape (B, d).
            chunk_size: queries per chunk (default: ``CHUNK_ENTRIES`` / 2^d).

        Returns:
            W, a CSR array of shape (B, N) with at most 2^d non-zeros per row (zero weights, e.g.
            for queries on nodes or clamped faces, are dropped), rows summing to 1.
        """
        x = self._check_queries(x, "x")
        builder = _CSRBuilder(x.shape[0], self.num_points, self.corners)
        for sl in self._chunks(x.shape[0], chunk_size):
            builder.add(*self._weights(x[sl]))
        return builder.build()


class _CSRBuilder:
    """Fills a CSR array row-chunk by row-chunk into preallocated buffers, dropping zero entries.

    Buffers are sized for the worst case (rows · 2^d), so the peak memory is that bound plus one
    chunk, never a concatenation's double copy; they are compacted only if mostly empty.
    """

    def __init__(self, rows: int, cols: int, corners: int) -> None:
        bound = rows * corners
        self.index_dtype = np.int32 if max(bound, cols) <= _INT32_MAX else np.int64
        self.shape = (rows, cols)
        self.data = np.empty(bound)
        self.indices = np.empty(bound, dtype=self.index_dtype)
        self.indptr = np.zeros(rows + 1, dtype=self.index_dtype)
        self.row = 0
        self.nnz = 0

    def add(self, idx: IntArray, w: FloatArray) -> None:
        keep = w != 0.0
        k = int(keep.sum())
        self.data[self.nnz : self.nnz + k] = w[keep]
        self.indices[self.nnz : self.nnz + k] = idx[keep]
        b = idx.shape[0]
        self.indptr[self.row + 1 : self.row + b + 1] = self.nnz + np.cumsum(keep.sum(axis=1))
        self.row += b
        self.nnz += k

    def build(self) -> sp.csr_array:
        assert self.row == self.shape[0]
        data, indices = self.data[: self.nnz], self.indices[: self.nnz]
        if self.nnz < 0.75 * self.data.size:
            data, indices = data.copy(), indices.copy()
        return sp.csr_array((data, indices, self.indptr), shape=self.shape)


# --------------------------------------------------------------------------- Bellman machinery


@dataclass(frozen=True)
class GridSolution:
    """Values on a grid found by value iteration or policy evaluation.

    Attributes:
        grid: the grid.
        V: state values at the nodes, shape (N,).
        Q: action values at the nodes, shape (N, A): Q(x, a) = r(x'_a) + γ (1 − done) Interp(V, x'_a).
        iterations: Bellman sweeps run (0 for a direct linear solve).
        converged: whether the sup-norm change fell below the tolerance (always True for a solve).
        delta: the last sweep's sup-norm change ‖V_new − V‖_∞ (the solve's residual for a solve).
    """

    grid: RegularGrid
    V: FloatArray
    Q: FloatArray
    iterations: int
    converged: bool
    delta: float

    def q_values(self, states: FloatArray) -> FloatArray:
        """Interpolated Q at arbitrary states (B, d), shape (B, A)."""
        return self.grid.interpolate(self.Q, states)

    def values(self, states: FloatArray) -> FloatArray:
        """Interpolated V at arbitrary states (B, d), shape (B,)."""
        return self.grid.interpolate(self.V, states)

    def act(self, states: FloatArray) -> IntArray:
        """Greedy actions argmax_a Interp(Q[:, a], s) at arbitrary states (B, d), shape (B,) int64.

        Ties go to the lowest action. This is the policy the paper rolls out (docs/method.md#unseen-goal-planning).
        """
        return np.argmax(self.q_values(states), axis=1).astype(np.int64)


@dataclass(frozen=True)
class GridMDP:
    """Successors of every (node, action) for one goal, precomputed once for repeated backups.

    Build with :func:`grid_mdp` or :func:`task_grid_mdp`.

    Attributes:
        grid: the grid, N nodes.
        num_actions: A.
        gamma: discount γ.
        rewards: r(x'_a) per action and node, shape (A, N) (0 where the successor is forbidden).
        dones: whether x'_a ends the episode (terminal or forbidden), shape (A, N) bool; with
            stochastic successors, whether it does with probability > 1/2.
        transitions: T, CSR of shape (A·N, N): row a·N + i is γ (1 − done) times the interpolation
            row of x'_a from node i (empty for terminal successors); with stochastic successors the
            quadrature-weighted sum of its nodes' rows (rewards likewise expectations).
    """

    grid: RegularGrid
    num_actions: int
    gamma: float
    rewards: FloatArray
    dones: BoolArray
    transitions: sp.csr_array = field(repr=False)

    def backup(self, V: FloatArray) -> FloatArray:
        """Q(x, a) = r(x'_a) + γ (1 − done(x'_a)) Interp(V, x'_a) at every node.

        Args:
            V: values at the nodes, shape (N,).

        Returns:
            Q, shape (N, A).
        """
        V = as_float_array(V, "V", ndim=1)
        check_shape(V, "V", (self.grid.num_points,), ("N",))
        return np.ascontiguousarray(self._backup_flat(V).reshape(self.num_actions, -1).T)

    def _backup_flat(self, V: FloatArray) -> FloatArray:
        return self.rewards.reshape(-1) + self.transitions @ V

    def value_iteration(self, *, tol: float = DEFAULT_TOL, max_iters: int = DEFAULT_MAX_ITERS) -> GridSolution:
        """Bellman optimality iteration from V = 0 until ‖V_new − V‖_∞ < tol or ``max_iters`` sweeps.

        Returns:
            The solution with V (N,), Q = backup(V) (N, A), the sweep count and convergence flag.
        """
        tol = _check_tol(tol)
        max_iters = _check_positive_int(max_iters, "max_iters")
        A, N = self.num_actions, self.grid.num_points
        V = np.zeros(N)
        delta, it, converged = np.inf, 0, False
        for it in range(1, max_iters + 1):  # noqa: B007
            V_new = self._backup_flat(V).reshape(A, N).max(axis=0)
            delta = float(np.max(np.abs(V_new - V)))
            V = V_new
            if delta < tol:
                converged = True
                break
        return GridSolution(self.grid, V, self.backup(V), it, converged, delta)

    def policy_actions(self, policy: IntArray | PolicyFn, *, chunk_size: int | None = None) -> IntArray:
        """A policy's actions at every node, shape (N,) int64.

        Args:
            policy: actions per node (N,) ints, or a callable policy(states (B, d)) -> (B,) ints,
                evaluated at the nodes in chunks.
        """
        N, A = self.grid.num_points, self.num_actions
        if callable(policy):
            actions = np.empty(N, dtype=np.int64)
            for sl in self.grid._chunks(N, chunk_size):
                got = np.asarray(policy(self.grid.node_points(np.arange(sl.start, sl.stop))))
                n = sl.stop - sl.start
                if got.shape != (n,) or not np.issubdtype(got.dtype, np.integer):
                    raise PlrayInputError(
                        f"policy: expected {n} integer actions for {n} states, got {got.dtype} array {got.shape}"
                    )
                actions[sl] = got
        else:
            actions = np.asarray(policy)
            if actions.shape != (N,) or not np.issubdtype(actions.dtype, np.integer):
                raise PlrayInputError(
                    f"policy: expected integer actions per node, shape ({N},), "
                    f"got {actions.dtype} array {actions.shape}"
                )
            actions = actions.astype(np.int64)
        if (actions < 0).any() or (actions >= A).any():
            raise PlrayInputError(f"policy: actions must lie in [0, {A}), got range [{actions.min()}, {actions.max()}]")
        return actions

    def policy_evaluation(
        self,
        policy: IntArray | PolicyFn,
        *,
        tol: float = DEFAULT_TOL,
        max_iters: int = DEFAULT_MAX_ITERS,
        method: Literal["iterate", "solve"] = "iterate",
        chunk_size: int | None = None,
    ) -> GridSolution:
        """V^π and Q^π at the nodes for a deterministic policy.

        V^π(x) = r(x'_π) + γ (1 − done(x'_π)) Interp(V^π, x'_π), with x'_π = f(x, π(x)).

        Args:
            policy: actions per node (N,) ints, or a callable policy(states (B, d)) -> (B,) ints.
            tol, max_iters: stopping rule of ``method="iterate"`` (the paper's: sweeps from V = 0
                until ‖V_new − V‖_∞ < tol).
            method: ``"iterate"``, or ``"solve"`` for a direct sparse LU solve of
                (I − T_π) V = r_π, exact to rounding but only practical for small grids (fill-in).
            chunk_size: nodes per chunk when calling a callable policy.

        Returns:
            The solution with V^π (N,) and Q^π (N, A) = backup(V^π).
        """
        tol = _check_tol(tol)
        max_iters = _check_positive_int(max_iters, "max_iters")
        if method not in ("iterate", "solve"):
            raise PlrayInputError(f"method: unknown value {method!r}; choose one of iterate, solve")
        N = self.grid.num_points
        rows = self.policy_actions(policy, chunk_size=chunk_size) * N + np.arange(N)
        T_pi = self.transitions[rows]
        r_pi = self.rewards.reshape(-1)[rows]
        if method == "solve":
            lhs = (sp.eye_array(N, format="csr") - T_pi).tocsc()
            V = np.asarray(spla.spsolve(lhs, r_pi), dtype=np.float64)
            delta = float(np.max(np.abs(r_pi + T_pi @ V - V)))
            return GridSolution(self.grid, V, self.backup(V), 0, True, delta)
        V = np.zeros(N)
        delta, it, converged = np.inf, 0, False
        for it in range(1, max_iters + 1):  # noqa: B007
            V_new = r_pi + T_pi @ V
            delta = float(np.max(np.abs(V_new - V)))
            V = V_new
            if delta < tol:
                converged = True
                break
        return GridSolution(self.grid, V, self.backup(V), it, converged, delta)


def _check_tol(tol: float) -> float:
    try:
        t = float(tol)
    except (TypeError, ValueError) as exc:
        raise PlrayInputError(f"tol: expected a positive number, got {tol!r}") from exc
    if not (t > 0.0 and np.isfinite(t)):
        raise PlrayInputError(f"tol: expected a positive number, got {tol!r}")
    return t


def grid_mdp(
    next_state_fn: NextStateFn,
    reward_fn: RewardFn,
    terminal_fn: TerminalFn,
    goal: FloatArray,
    grid: RegularGrid,
    num_actions: int,
    gamma: float,
    *,
    forbidden_fn: ForbiddenFn | None = None,
    chunk_size: int | None = None,
    successor_fn: SuccessorFn | None = None,
) -> GridMDP:
    """Precompute every node's successors, rewards, terminations and interpolation rows for one goal.

    Args:
        next_state_fn: f(states (B, d), actions (B,) int64) -> next states (B, d): the true
            dynamics or a learned world model. Called once per action and chunk of nodes.
        reward_fn: r(next_states (B, d), goals (B, k)) -> (B,), paid on arrival.
        terminal_fn: done(next_states (B, d), goals (B, k)) -> (B,) bool.
        goal: the goal g, shape (k,), repeated to (B, k) for the calls above.
        grid: the grid (N nodes, d dims).
        num_actions: A, the number of discrete actions.
        gamma: discount in (0, 1).
        forbidden_fn: optional forbidden(next_states (B, d)) -> (B,) bool; a forbidden successor
            terminates with reward 0 (e.g. the gentle-car goal's |v| > 0.05, docs/method.md#unseen-goals).
        chunk_size: nodes per call (default: ``CHUNK_ENTRIES`` / 2^d, divided by K with
            ``successor_fn``).
        successor_fn: stochastic dynamics: nodes (B, K, d) and weights (K,) of a quadrature of the
            kernel at each (node, action), used instead of ``next_state_fn``; rewards, terminations
            and interpolation rows are averaged over the K nodes with the weights.

    Returns:
        The :class:`GridMDP`, ready for :meth:`~GridMDP.value_iteration` and
        :meth:`~GridMDP.policy_evaluation`.
    """
    if not isinstance(grid, RegularGrid):
        raise PlrayInputError(f"grid: expected a RegularGrid, got {type(grid).__name__}")
    A = _check_positive_int(num_actions, "num_actions")
    gamma = check_gamma(gamma)
    goal_arr = as_float_array(goal, "goal", ndim=1)
    N, d = grid.num_points, grid.ndim
    K = 1
    if successor_fn is not None:
        K = _quadrature(successor_fn, grid.node_points(np.zeros(1, dtype=np.int64)), np.zeros(1, np.int64), d)[1].size
        chunk_size = max(1, grid.chunk_size(chunk_size) // K)
    scored = Goal.conditioned(reward_fn, terminal_fn, goal_arr, forbidden_fn=forbidden_fn)
    rewards = np.empty((A, N))
    dones = np.empty((A, N), dtype=bool)
    builder = _CSRBuilder(A * N, N, grid.corners * K)
    for a in range(A):
        for sl in grid._chunks(N, chunk_size):
            b = sl.stop - sl.start
            states = grid.node_points(np.arange(sl.start, sl.stop))
            acts = np.full(b, a, dtype=np.int64)
            if successor_fn is None:
                nxt, qw = check_output(next_state_fn(states, acts), "next_state_fn", (b, d)), np.ones(1)
            else:
                nodes, qw = _quadrature(successor_fn, states, acts, d, K)
                nxt = nodes.reshape(b * K, d)
            r, done = scored.score(nxt, validate=True)
            rewards[a, sl] = r.reshape(b, K) @ qw
            dones[a, sl] = done.reshape(b, K).astype(np.float64) @ qw > 0.5
            idx, w = grid._weights(nxt)
            w *= (np.where(done, 0.0, gamma).reshape(b, K) * qw[None])[..., None].reshape(b * K, 1)
            builder.add(idx.reshape(b, K * grid.corners), w.reshape(b, K * grid.corners))
    return GridMDP(grid, A, gamma, rewards, dones, builder.build())


def _quadrature(
    successor_fn: SuccessorFn, states: FloatArray, actions: IntArray, d: int, K: int | None = None
) -> tuple[FloatArray, FloatArray]:
    """Call ``successor_fn`` and check its nodes (B, K, d) and weights (K,) (non-negative, summing to 1)."""
    out = successor_fn(states, actions)
    if not isinstance(out, tuple) or len(out) != 2:
        raise PlrayInputError("successor_fn: expected a tuple (nodes (B, K, d), weights (K,))")
    weights = check_output(out[1], "successor_fn weights", (K if K is not None else np.size(out[1]),))
    if (weights < 0).any() or abs(float(weights.sum()) - 1.0) > 1e-9:
        raise PlrayInputError(f"successor_fn: weights must be non-negative and sum to 1, got sum {weights.sum()}")
    nodes = check_output(out[0], "successor_fn nodes", (states.shape[0], weights.size, d))
    return nodes, weights


def grid_value_iteration(
    next_state_fn: NextStateFn,
    reward_fn: RewardFn,
    terminal_fn: TerminalFn,
    goal: FloatArray,
    grid: RegularGrid,
    num_actions: int,
    gamma: float,
    *,
    forbidden_fn: ForbiddenFn | None = None,
    tol: float = DEFAULT_TOL,
    max_iters: int = DEFAULT_MAX_ITERS,
    chunk_size: int | None = None,
    successor_fn: SuccessorFn | None = None,
) -> GridSolution:
    """Optimal values on a grid: V(x) = max_a [r(x'_a) + γ (1 − done(x'_a)) Interp(V, x'_a)].

    Iterates from V = 0 until the sup-norm change is below ``tol`` (default 1e-10) or
    ``max_iters`` (default 10 000) sweeps, as the paper's planner does (docs/method.md#unseen-goal-planning).
    Arguments are those of :func:`grid_mdp`.

    Returns:
        V (N,), Q (N, A), the sweep count, ``converged``, and ``act(states)``, the greedy policy
        at arbitrary states for rollouts.
    """
    mdp = grid_mdp(
        next_state_fn,
        reward_fn,
        terminal_fn,
        goal,
        grid,
        num_actions,
        gamma,
        forbidden_fn=forbidden_fn,
        chunk_size=chunk_size,
        successor_fn=successor_fn,
    )
    return mdp.value_iteration(tol=tol, max_iters=max_iters)


def grid_policy_evaluation(
    next_state_fn: NextStateFn,
    reward_fn: RewardFn,
    terminal_fn: TerminalFn,
    goal: FloatArray,
    grid: RegularGrid,
    num_actions: int,
    gamma: float,
    policy: IntArray | PolicyFn,
    *,
    forbidden_fn: ForbiddenFn | None = None,
    tol: float = DEFAULT_TOL,
    max_iters: int = DEFAULT_MAX_ITERS,
    method: Literal["iterate", "solve"] = "iterate",
    chunk_size: int | None = None,
    successor_fn: SuccessorFn | None = None,
) -> GridSolution:
    """V^π and Q^π on a grid for a deterministic policy (the reference of the paper's Q_NMSE).

    Args:
        policy: actions per node (N,) ints, or a callable policy(states (B, d)) -> (B,) ints
            evaluated at the nodes (e.g. an agent's greedy policy).
        Others: as :func:`grid_mdp` and :meth:`GridMDP.policy_evaluation`.

    Returns:
        V^π (N,) and Q^π (N, A), Q^π(x, a) = r(x'_a) + γ (1 − done) Interp(V^π, x'_a).
    """
    mdp = grid_mdp(
        next_state_fn,
        reward_fn,
        terminal_fn,
        goal,
        grid,
        num_actions,
        gamma,
        forbidden_fn=forbidden_fn,
        chunk_size=chunk_size,
        successor_fn=successor_fn,
    )
    return mdp.policy_evaluation(policy, tol=tol, max_iters=max_iters, method=method, chunk_size=chunk_size)


# --------------------------------------------------------------------------- GoalTask wrappers


def task_grid(task: GoalTask, resolution: int | Sequence[int]) -> RegularGrid:
    """The regular grid over a task's state box, its angle dims periodic.

    Args:
        task: the task; the box is [state_low, state_high] (d dims).
        resolution: nodes per dim, an int or d ints.
    """
    return RegularGrid(task.state_low, task.state_high, resolution, periodic_dims=task.angle_dims)


def _task_setup(task: GoalTask, goal: FloatArray, grid: RegularGrid, gamma: float | None) -> tuple[FloatArray, float]:
    if task.num_actions is None:
        raise PlrayInputError(f"task: grid Bellman iteration needs discrete actions; {task.name} has continuous ones")
    if not isinstance(grid, RegularGrid):
        raise PlrayInputError(f"grid: expected a RegularGrid, got {type(grid).__name__}")
    if grid.ndim != task.state_dim:
        raise PlrayInputError(f"grid: has {grid.ndim} dims, task {task.name} has state_dim {task.state_dim}")
    goal_arr = as_float_array(goal, "goal", ndim=1)
    check_shape(goal_arr, "goal", (task.goal_dim,), ("k",))
    return goal_arr, check_gamma(task.gamma if gamma is None else gamma)


def task_grid_mdp(
    task: GoalTask,
    goal: FloatArray,
    grid: RegularGrid,
    *,
    forbidden_fn: ForbiddenFn | None = None,
    gamma: float | None = None,
    chunk_size: int | None = None,
) -> GridMDP:
    """:func:`grid_mdp` on a task's true dynamics, rewards and terminations (γ defaults to task.gamma).

    Stochastic tasks (``task.stochastic``) integrate over their kernel with
    :meth:`~plray.envs.base.GoalTask.successor_quadrature`.
    """
    goal_arr, gamma = _task_setup(task, goal, grid, gamma)
    assert task.num_actions is not None
    return grid_mdp(
        task.next_state,
        task.reward_at,
        task.terminal_at,
        goal_arr,
        grid,
        task.num_actions,
        gamma,
        forbidden_fn=forbidden_fn,
        chunk_size=chunk_size,
        successor_fn=task.successor_quadrature if task.stochastic else None,
    )


def task_value_iteration(
    task: GoalTask,
    goal: FloatArray,
    grid: RegularGrid,
    *,
    forbidden_fn: ForbiddenFn | None = None,
    gamma: float | None = None,
    tol: float = DEFAULT_TOL,
    max_iters: int = DEFAULT_MAX_ITERS,
    chunk_size: int | None = None,
) -> GridSolution:
    """Optimal values of a task for goal (k,) on a grid under its true dynamics (R*'s planner)."""
    mdp = task_grid_mdp(task, goal, grid, forbidden_fn=forbidden_fn, gamma=gamma, chunk_size=chunk_size)
    return mdp.value_iteration(tol=tol, max_iters=max_iters)


def task_policy_evaluation(
    task: GoalTask,
    goal: FloatArray,
    grid: RegularGrid,
    policy: IntArray | PolicyFn,
    *,
    forbidden_fn: ForbiddenFn | None = None,
    gamma: float | None = None,
    tol: float = DEFAULT_TOL,
    max_iters: int = DEFAULT_MAX_ITERS,
    method: Literal["iterate", "solve"] = "iterate",
    chunk_size: int | None = None,
) -> GridSolution:
    """V^π and Q^π of a task for goal (k,) on a grid under its true dynamics (Q_NMSE's reference)."""
    mdp = task_grid_mdp(task, goal, grid, forbidden_fn=forbidden_fn, gamma=gamma, chunk_size=chunk_size)
    return mdp.policy_evaluation(policy, tol=tol, max_iters=max_iters, method=method, chunk_size=chunk_size)


def rollout_returns(
    task: GoalTask,
    policy_fn: PolicyFn,
    goal: FloatArray,
    starts: FloatArray,
    horizon: int,
    gamma: float | None = None,
    forbidden_fn: ForbiddenFn | None = None,
    seed: int = 0,
) -> FloatArray:
    """Discounted returns Σ_t γ^t r_t of a policy on a task's true dynamics, all starts at once.

    Step t pays r(s_{t+1}, g) with weight γ^t; a row stops at termination (goal reached, or a
    forbidden state, which pays 0) or after ``horizon`` steps. The task's goal at g is a
    :class:`~plray.evaluation.goals.Goal` rolled out by :func:`~plray.evaluation.rollout.task_returns`.

    Args:
        task: the task (discrete actions).
        policy_fn: policy(states (B, d)) -> actions (B,) ints, e.g. :meth:`GridSolution.act`.
        goal: the goal, shape (k,).
        starts: start states, shape (n, d).
        horizon: steps per rollout (the paper: 100 Reacher, 200 MountainCar).
        gamma: discount in (0, 1); default ``task.gamma``.
        forbidden_fn: optional forbidden(next_states (B, d)) -> (B,) bool.
        seed: seeds the successor draws of a stochastic task (one trajectory per start); unused
            by deterministic ones.

    Returns:
        Discounted returns, shape (n,).
    """
    goal_arr = as_float_array(goal, "goal", ndim=1)
    check_shape(goal_arr, "goal", (task.goal_dim,), ("k",))
    scored = task_goal(task, goal_arr, forbidden_fn=forbidden_fn)
    return task_returns(task, policy_fn, scored, starts, horizon, gamma=gamma, seed=seed)


# --------------------------------------------------------------------------- Q_NMSE


def _q_nmse_table(q_agent: FloatArray, q_true: FloatArray) -> FloatArray:
    qa = as_float_array(q_agent, "q_agent")
    qt = as_float_array(q_true, "q_true")
    if qt.ndim not in (2, 3):
        raise PlrayInputError(f"q_true: expected shape (N, A, G) or (N, A), got {qt.shape}")
    if qa.shape != qt.shape:
        raise PlrayInputError(f"q_agent: expected the shape of q_true {qt.shape}, got {qa.shape}")
    if qt.ndim == 2:
        qa, qt = qa[..., None], qt[..., None]
    if qt.shape[0] < 2:
        raise PlrayInputError(f"q_true: need at least 2 nodes to compute a variance, got shape {qt.shape}")
    var = qt.var(axis=0)  # (A, G)
    flat = np.argwhere(var <= 0.0)
    if flat.size:
        pairs = [tuple(int(i) for i in p) for p in flat[:5]]
        raise PlrayInputError(
            f"q_true: zero variance over nodes for {len(flat)} (action, goal) pairs, e.g. {pairs}; NMSE is undefined"
        )
    return ((qa - qt) ** 2).mean(axis=0) / var


def q_nmse_per_goal(q_agent: FloatArray, q_true: FloatArray) -> FloatArray:
    """Q_NMSE of each goal: mean over actions of MSE_nodes(q_agent − q_true) / Var_nodes(q_true).

    Args:
        q_agent: the agent's Q-values at the evaluation states, shape (N, A, G) or (N, A).
        q_true: the reference Q^π at the same states (e.g. :func:`task_policy_evaluation` of the
            agent's greedy policy), same shape.

    Returns:
        Per-goal NMSE, shape (G,) ((1,) for 2-D inputs).
    """
    return _q_nmse_table(q_agent, q_true).mean(axis=0)


def q_nmse(q_agent: FloatArray, q_true: FloatArray) -> float:
    """The paper's Q_NMSE (docs/method.md#q-accuracy): per (goal, action) MSE / Var(Q^π), averaged.

    For every action a and goal g, the mean squared error over the N evaluation states (grid
    nodes) between the agent's Q and the reference Q^π is divided by the variance of Q^π over the
    same states; the headline number is the mean over all (a, g) pairs (equally, the mean of
    :func:`q_nmse_per_goal`).

    Args:
        q_agent: the agent's Q-values, shape (N, A, G) or (N, A) for one goal.
        q_true: reference Q^π, same shape; every (a, g) slice must vary over the nodes.

    Returns:
        Q_NMSE, a float.
    """
    return float(_q_nmse_table(q_agent, q_true).mean())
