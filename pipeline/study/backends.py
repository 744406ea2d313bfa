"""Where train@<dataset>'s cells (one variant's replicas on the dataset) are trained: in the
stage's own process, one after another (`backend: local`), or as Ray tasks on a cluster
(`backend: ray`, or Ray's own RAY_ADDRESS set), one task per cell.

Either way the stage's process writes every output (train.write_cell): a task gets its
arguments (the params, the prepared arrays through Ray's object store) and returns the cell's
outputs as bytes, so a worker writes nothing and needs no copy of the repository, and the bytes
are those train_cell computes in this process (docs/pipeline.md has the design, docs/team.md
the cluster). Ray is imported only here and only for `ray`: the default install has none.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from ..core import config, numerics
from ..core.errors import PipelineError
from ..core.vocabulary import USER_LOSSES

PACKAGE = Path(__file__).resolve().parents[1]     # what each Ray worker imports the cell from
INSTALL = "make install-cluster"                  # what adds Ray (requirements-cluster.lock)
CONNECT_TIMEOUT_S = 5.0                           # to open the head's port before ray.init, which
                                                  # would otherwise wait minutes on a dead address
RETRIES = 3                                       # a task's tries after its worker dies
POLL_S = 2.0                                      # how often a wait checks that the head still answers


def _own_losses() -> list[str]:
    """The project's losses folder (vocabulary.USER_LOSSES, at the root the stage runs in), which a
    worker imports a loss of your own from, where there is one."""
    found = Path(USER_LOSSES).resolve()
    return [str(found)] if (found / "__init__.py").exists() else []


Cell = tuple[str, str]  # (dataset, variant)
# What trains one cell: train.train_cell, handed in (it imports this module, never the reverse).
CellTrainer = Callable[[config.Params, str, str, dict, dict], object]


@dataclass
class Local:
    """Every cell on this machine: in this process, one after another, or (workers > 1) spread over
    that many processes of one thread each, one cell to a process at a time. A cell's bytes are the
    same wherever it trains; they are written in the cells' order either way."""
    workers: int = 1
    where: str = ""

    def run(self, train_cell: CellTrainer, params: config.Params, cells: list[Cell],
            data: dict[str, tuple[dict, dict]]) -> Iterator[tuple[Cell, object]]:
        if self.workers <= 1 or len(cells) <= 1:
            for dataset, name in cells:
                yield (dataset, name), train_cell(params, dataset, name, *data[dataset])
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.where = f"in {min(self.workers, len(cells))} processes"
        # spawn: a fresh interpreter imports the package, pinned first (core/__init__.py), and
        # inherits no torch state of this one.
        pool = ProcessPoolExecutor(min(self.workers, len(cells)), mp_context=multiprocessing.get_context("spawn"))
        try:
            futures = [pool.submit(train_cell, params, dataset, name, *data[dataset]) for dataset, name in cells]
            for cell, future in zip(cells, futures):
                yield cell, future.result()
        finally:  # a failed cell or a failed write: the others are not waited for
            pool.shutdown(wait=True, cancel_futures=True)


# A worker process costs about a second to start (torch's import): below this many replicas a
# cell, one process trains the cells sooner.
POOLED_REPLICAS = 20


def local(params: config.Params) -> Local:
    """The local backend with params' `workers` (0: one per core, when the cells are worth it)."""
    workers = params.workers or ((os.cpu_count() or 1) if params.study.replicas >= POOLED_REPLICAS else 1)
    return Local(workers)


def _cell_task(train_cell: CellTrainer, params: config.Params, dataset: str, name: str, prepared: dict,
               meta: dict):
    """On a worker, from the package Ray shipped to it (Ray pickles train_cell by its module and
    name): the node it ran on, and the cell's outputs."""
    import ray

    return ray.get_runtime_context().get_node_id(), train_cell(params, dataset, name, prepared, meta)


def reachable(address: str) -> str | None:
    """None when the head's port at host:port accepts a connection, else why not."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            return None
    except ValueError:
        return "not host:port"
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__


@dataclass
class Ray:
    """Every cell of the stage at once, each a Ray task on the cluster at `address` (None: a Ray
    of this machine alone, started for the stage and stopped with it)."""
    address: str | None
    nodes: set = field(default_factory=set)  # the nodes the cells ran on

    @property
    def where(self) -> str:
        at = f"the Ray cluster at {self.address}" if self.address else "a Ray of this machine"
        return f"on {at}, {len(self.nodes)} node(s)"

    @property
    def _host_port(self) -> bool:
        """Whether the address is a head's host:port, which a plain TCP connection can check
        (not "auto", nor a ray:// client address)."""
        return bool(self.address) and "://" not in self.address and self.address != "auto"

    def _connect(self):
        try:
            import ray
        except ImportError:
            raise PipelineError(f"backend ray: Ray is not installed; run `{INSTALL}` "
                                f"(or pip install -r requirements-cluster.lock)") from None
        if self._host_port:
            why = reachable(self.address)
            if why:
                raise PipelineError(f"the Ray cluster at {self.address} is unreachable ({why}); start its head "
                                    f"with `ray start --head` (docs/team.md), or fix RAY_ADDRESS")
        from ray import exceptions

        try:
            # "local": a Ray of this machine alone, even where a `ray start` cluster runs here.
            ray.init(address=self.address or "local", log_to_driver=False, configure_logging=False,
                     include_dashboard=False if self.address is None else None,
                     runtime_env={"py_modules": [str(PACKAGE), *_own_losses()], "excludes": ["__pycache__"],
                                  "env_vars": numerics.PINNED})
        except (ConnectionError, RuntimeError, ValueError, exceptions.RayError) as exc:
            # Its port answers yet Ray cannot join it: most often Ray's token authentication, on
            # by default for a cluster started where ~/.ray/auth_token exists.
            _shutdown(ray)
            raise PipelineError(f"the Ray cluster at {self.address or 'this machine'}: {exc} (with token "
                                f"authentication on, set RAY_AUTH_MODE=token and the cluster's token: docs/team.md)"
                                ) from None
        return ray

    def _lost(self, done: int, total: int, why: str) -> PipelineError:
        return PipelineError(f"the Ray cluster at {self.address or 'this machine'} stopped mid-study ({why}): "
                             f"{done} of {total} cell(s) trained and written, none half-written; "
                             f"re-run to train the rest")

    def _check(self, done: int, total: int) -> None:
        """Raise the study's stop where the head no longer answers (only a host:port can be asked)."""
        why = self._host_port and reachable(self.address)
        if why:
            raise self._lost(done, total, why)

    def _get(self, ray, ref, done: int, total: int):
        """A finished cell's outputs. Where its node died after ray.wait saw them, Ray tries to
        rebuild them and ray.get would wait until the driver's core worker gives up on the head
        (a minute) and ends the process with no word: so ask again and again, checking the head
        between tries."""
        from ray import exceptions

        while True:
            try:
                return ray.get(ref, timeout=POLL_S)
            except exceptions.GetTimeoutError:
                self._check(done, total)

    def run(self, train_cell: CellTrainer, params: config.Params, cells: list[Cell],
            data: dict[str, tuple[dict, dict]]) -> Iterator[tuple[Cell, object]]:
        if not cells:
            return
        ray = self._connect()
        from ray import exceptions

        done = 0
        try:
            task = ray.remote(num_cpus=1, max_retries=RETRIES)(_cell_task)  # a worker's death: tried again
            # Each dataset's arrays once, not once per cell.
            arrays = {dataset: ray.put(data[dataset][0]) for dataset in dict.fromkeys(d for d, _ in cells)}
            pending = {task.options(name=f"train {dataset} {name}").remote(
                train_cell, params, dataset, name, arrays[dataset], data[dataset][1]): (dataset, name) for dataset, name in cells}
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
                if not ready:
                    self._check(done, len(cells))
                    continue
                ref = ready[0]
                dataset, name = pending.pop(ref)
                try:
                    node, outputs = self._get(ray, ref, done, len(cells))
                except exceptions.RayTaskError as exc:
                    if isinstance(exc.cause, PipelineError):  # the cell's own one-line error
                        raise exc.cause from None
                    raise PipelineError(f"train {dataset} {name} on the Ray cluster: {exc.cause!r}") from None
                except exceptions.RayError as exc:  # its node gone, or its retries spent on a live cluster
                    self._check(done, len(cells))
                    raise PipelineError(f"train {dataset} {name} on the Ray cluster at {self.address or 'this machine'}: "
                                        f"{type(exc).__name__} after {RETRIES} retries ({str(exc).splitlines()[0]}); "
                                        f"{done} of {len(cells)} cell(s) trained and written") from None
                done += 1
                self.nodes.add(node)
                yield (dataset, name), outputs
        except exceptions.RayError as exc:  # the cluster failing under ray.put, .remote or ray.wait
            raise self._lost(done, len(cells), type(exc).__name__) from None
        except OSError:  # a driver that finds its node's raylet gone: a broken pipe under ray.wait
            self._check(done, len(cells))
            raise
        finally:
            _shutdown(ray)


def _shutdown(ray) -> None:
    """Disconnect; with the head gone, Ray's own shutdown can wait for it a long while."""
    try:
        ray.shutdown()
    except Exception:  # noqa: BLE001 - the study's outcome is already decided
        pass


def chosen(params: config.Params):
    """The params' backend; Ray's own RAY_ADDRESS, set, asks for Ray too (at that address)."""
    address = os.environ.get("RAY_ADDRESS") or None
    if params.backend == "ray" or address:
        return Ray(address)
    return local(params)
