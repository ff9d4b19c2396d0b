"""Where the tasks of an experiment run: in this process (:class:`LocalExecutor`, the default) or
on a Ray cluster (:class:`RayExecutor`, ``pip install -e ".[ray]"``), behind one interface.

An experiment hands :meth:`Executor.run` a list of :class:`Task` objects: a function, its
arguments, and the earlier tasks of the list it needs finished first. The local executor calls
them one after the other in list order. The Ray executor submits every task at once, each after
its dependencies (Ray object references passed as arguments, so the scheduler starts it when they
are done, without polling), with the :class:`TaskResources` of the run; a task whose worker dies is
started again up to ``max_retries`` times, a task that raises is not. Tasks must therefore be
restartable: each writes its results atomically and skips what is already written (the
weight-sharing tasks do: per-epoch checkpoints, one log file per arch).

Every task function takes a :data:`Report` first: it calls ``report(kind, n)`` when it has
finished ``n`` units of ``kind`` (e.g. ``("arch", 4)``), and the run's one progress bar
(:class:`Progress`) counts them, whichever process the task runs in.

Errors read as they do locally: a :class:`~harness.errors.HarnessError` (or ``OSError``) raised in
a task is raised again in the caller as itself, so the CLI prints its one line; the first failing
task cancels the others. Ctrl-C cancels the cluster's tasks too, and raises
``KeyboardInterrupt`` with a line saying that the state left behind is resumable.

This module imports without torch and without ray (ray is imported when a Ray executor starts).
"""

from __future__ import annotations

import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from tqdm import tqdm

from harness.errors import HarnessError

EXECUTORS = ("local", "ray")

Report = Callable[[str, int], None]
"""What a task calls with ``(kind, n)`` when it has finished ``n`` units of ``kind``."""

INTERRUPTED = "the tasks were stopped; what they finished is kept: the same command (with either executor) goes on from there"


@dataclass(frozen=True)
class Task:
    """``fn(report, *args)`` run as one task, after the tasks at positions ``after`` of the same list;
    ``label`` names it on the cluster (a Ray worker shows ``ray::<label>`` as its process name)."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    after: tuple[int, ...] = ()
    label: str = ""


@dataclass(frozen=True)
class TaskResources:
    """What each task of a run reserves on a cluster, and how often a task whose worker died is
    started again. ``num_gpus`` None: one GPU per task when the cluster has GPUs, none otherwise."""

    num_cpus: float = 1.0
    num_gpus: float | None = 0.0
    max_retries: int = 3


class Progress:
    """One tqdm bar for a run, fed by its tasks' reports: it counts the first kind of ``totals``
    (``done`` of it finished before the run) and shows the others after it, e.g. ``supernet 1/2``.
    Call it as a :data:`Report`."""

    def __init__(self, desc: str, totals: dict[str, int], done: dict[str, int] | None = None, enabled: bool = True):
        self.totals = dict(totals)
        self.done = {kind: 0 for kind in totals} | dict(done or {})
        self.unit = next(iter(totals))
        self.bar = tqdm(total=totals[self.unit], initial=self.done[self.unit], desc=desc, unit=self.unit,
                        disable=not enabled)
        self._postfix()

    def __call__(self, kind: str, n: int) -> None:
        if kind not in self.totals:
            raise HarnessError(f"progress of unknown kind {kind!r}; this run counts {sorted(self.totals)}")
        self.done[kind] += n
        if kind == self.unit:
            self.bar.update(n)
        else:
            self._postfix()

    def _postfix(self) -> None:
        others = [f"{kind} {self.done[kind]}/{total}" for kind, total in self.totals.items() if kind != self.unit]
        if others:
            self.bar.set_postfix_str(", ".join(others))

    def close(self) -> None:
        self.bar.close()


def no_report(kind: str, n: int) -> None:
    """A :data:`Report` that drops everything: :meth:`Executor.run` without a progress bar."""


class Executor(ABC):
    """Runs lists of :class:`Task`; use it as a context manager (a Ray executor joins or starts its
    cluster on entry and leaves it on exit)."""

    name: str
    remote: bool  # tasks run in other processes: their own progress bars would print there

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        return None

    @abstractmethod
    def run(self, tasks: Sequence[Task], resources: TaskResources, progress: Report = no_report) -> list[Any]:
        """Run ``tasks`` (each after its ``after``), feeding ``progress``; their results in list order."""


def _check_order(tasks: Sequence[Task]) -> None:
    for position, task in enumerate(tasks):
        if any(not 0 <= j < position for j in task.after):
            raise HarnessError(f"task {position} ({task.label or task.fn.__name__}) must come after the tasks it "
                               f"needs, {list(task.after)}: earlier positions of the list only")


class LocalExecutor(Executor):
    """Every task in this process, in list order (dependencies come first); the default."""

    name = "local"
    remote = False

    def run(self, tasks: Sequence[Task], resources: TaskResources, progress: Report = no_report) -> list[Any]:
        _check_order(tasks)
        try:
            return [task.fn(progress, *task.args) for task in tasks]
        except KeyboardInterrupt:
            raise KeyboardInterrupt(INTERRUPTED) from None


class _Tally:
    """The reports of a run's tasks, held until the driver takes them (made a Ray actor)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []

    def add(self, kind: str, n: int) -> None:
        self.events.append((kind, n))

    def take(self) -> list[tuple[str, int]]:
        events, self.events = self.events, []
        return events


class _ActorReport:
    """A :data:`Report` that a Ray task calls: it hands the report to the run's tally actor and waits
    until the actor has it (a round trip of a few ms), so the bar is exact when the last task ends; a
    tally that is gone (its node died) never fails a task, it only leaves the bar short."""

    def __init__(self, tally: Any):
        self.tally = tally

    def __call__(self, kind: str, n: int) -> None:
        import ray

        try:
            ray.get(self.tally.add.remote(kind, n))
        except ray.exceptions.RayError:
            pass


def _harness_task(cwd: str, fn: Callable[..., Any], report: Report, args: tuple[Any, ...], *after: Any) -> Any:
    """A Ray task's body: ``fn(report, *args)`` in the driver's working directory ``cwd`` (so relative
    paths mean on the worker what they mean to the user), restoring the worker's own afterwards.
    ``after`` are the results of the tasks it waited for, unused."""
    if not os.path.isdir(cwd):
        raise HarnessError(f"the working directory {cwd} of 'harness' is not on node {socket.gethostname()}: every "
                           "node needs the run folder and the data at the same paths (a shared filesystem)")
    before = os.getcwd()
    os.chdir(cwd)
    try:
        return fn(report, *args)
    finally:
        os.chdir(before)


class RayExecutor(Executor):
    """Tasks on a Ray cluster: the one at ``address`` (or ``RAY_ADDRESS``), else a local cluster of
    ``local_cpus`` CPUs (default: every core) started on entry and shut down on exit; a Ray already
    initialised in this process is used as it is and left running."""

    name = "ray"
    remote = True
    POLL_SECONDS = 0.5  # how often the progress bar takes the tasks' reports
    CANCEL_SECONDS = 30.0  # how long cancelled tasks get to stop before the driver gives up waiting

    def __init__(self, address: str | None = None, local_cpus: int | None = None):
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.local_cpus = local_cpus
        self.ray: Any = None  # the ray module, imported on entry
        self._started = False
        self._tally: Any = None  # the progress actor (:class:`_Tally`), made by the first run

    def __enter__(self) -> RayExecutor:
        try:
            import ray
        except ImportError:
            raise HarnessError('the Ray executor needs ray, which is not installed: pip install -e ".[ray]"') from None
        self.ray = ray
        if ray.is_initialized():
            return self
        import logging

        try:
            if self.address:
                _check_reachable(self.address)
                ray.init(address=self.address, logging_level=logging.WARNING)
            else:
                # The workers of a cluster started here run at this process's priority, as the local
                # executor's tasks do: Ray's default (worker_niceness 15) makes them yield to any other
                # load, which made a run 10x slower on a shared machine. RAY_worker_niceness overrides.
                before = os.environ.get("RAY_worker_niceness")
                os.environ.setdefault("RAY_worker_niceness", "0")
                try:
                    ray.init(address="local", num_cpus=self.local_cpus or os.cpu_count(), include_dashboard=False,
                             logging_level=logging.WARNING)  # "local": a new cluster, even beside a 'ray start' one
                finally:
                    _restore_env("RAY_worker_niceness", before)
        except ConnectionError as err:
            raise HarnessError(f"cannot join the Ray cluster at {self.address}: {err}; start one with 'ray start "
                               "--head', or leave --ray-address and RAY_ADDRESS out to start a local one") from None
        self._started = True
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._tally is not None:
            self.ray.kill(self._tally)
            self._tally = None
        if self._started:
            self.ray.shutdown()
            self._started = False

    def run(self, tasks: Sequence[Task], resources: TaskResources, progress: Report = no_report) -> list[Any]:
        if self.ray is None:
            raise HarnessError("a RayExecutor runs tasks inside 'with RayExecutor(...) as executor:'")
        ray = self.ray
        _check_order(tasks)
        if self._tally is None:  # one for the executor's life: an actor costs a worker process
            self._tally = ray.remote(num_cpus=0)(_Tally).remote()
        tally = self._tally
        self._feed(tally, no_report)  # reports left over by tasks of an interrupted run
        report = _ActorReport(tally)
        gpus = resources.num_gpus
        if gpus is None:
            gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
        body = ray.remote(_harness_task)
        options = {"num_cpus": resources.num_cpus, "num_gpus": gpus, "max_retries": resources.max_retries,
                   "retry_exceptions": False}  # a task that raised would raise again
        cwd = os.getcwd()
        refs: list[Any] = []
        for task in tasks:
            after = (refs[j] for j in task.after)
            name = task.label or task.fn.__name__
            refs.append(body.options(**options, name=name).remote(cwd, task.fn, report, task.args, *after))
        pending = list(refs)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=len(pending), timeout=self.POLL_SECONDS)
                self._feed(tally, progress)
                for ref in ready:
                    ray.get(ref)  # raises the task's error, if any
            self._feed(tally, progress)
            return ray.get(refs)
        except KeyboardInterrupt:
            self._cancel(pending)
            raise KeyboardInterrupt(INTERRUPTED) from None
        except ray.exceptions.RayTaskError as err:
            self._cancel(pending)
            if isinstance(err.cause, (HarnessError, OSError)):
                raise err.cause from None  # exactly the line the local executor prints
            raise
        except ray.exceptions.RayError as err:  # a worker or node died more often than max_retries allows, ...
            self._cancel(pending)
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise HarnessError(f"a task was lost on the cluster ({type(err).__name__}: {first}) and retried up to "
                               f"max_retries = {resources.max_retries} times; {INTERRUPTED}") from None
        except BaseException:
            self._cancel(pending)
            raise

    def _feed(self, tally: Any, progress: Report) -> None:
        """Hand the tasks' reports to ``progress``; a tally that is gone only stops the bar."""
        try:
            events = self.ray.get(tally.take.remote())
        except self.ray.exceptions.RayActorError:
            return
        for kind, n in events:
            progress(kind, n)

    def _cancel(self, refs: Sequence[Any]) -> None:
        """Stop ``refs`` (force: their worker processes are killed, so nothing more is written) and
        wait until they have stopped, so that the caller may resume the run at once."""
        for ref in refs:
            self.ray.cancel(ref, force=True)
        if refs:
            self.ray.wait(list(refs), num_returns=len(refs), timeout=self.CANCEL_SECONDS)


def _restore_env(name: str, value: str | None) -> None:
    """Set ``name`` back to ``value`` (absent when None)."""
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _check_reachable(address: str) -> None:
    """Refuse at once a ``host:port`` where nothing listens (Ray itself retries for minutes); other
    forms (``auto``, ``ray://...``) are left to Ray."""
    host, colon, port = address.rpartition(":")
    if "://" in address or not colon or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as err:
        raise HarnessError(f"no Ray cluster at {address} ({err.strerror or err}); start one there with 'ray start --head', "
                           "or leave --ray-address and RAY_ADDRESS out to start a local one") from None


def make_executor(name: str, address: str | None = None) -> Executor:
    """The executor called ``name`` (:data:`EXECUTORS`); ``address`` is the Ray cluster to join."""
    if name == "local":
        if address:
            raise HarnessError("--ray-address needs --executor ray")
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address)
    raise HarnessError(f"unknown executor {name!r}; valid: {', '.join(EXECUTORS)}")
