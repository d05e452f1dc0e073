"""Where a study's arms train: a local process pool, or a cluster through submitit.

:meth:`srlib.studies.Study.run` hands each arm that needs training to an *executor* as one
picklable job (:class:`srlib.studies.core.ArmJob`: train or resume the arm, then evaluate it, so
the caller reads the evaluation from the cache). An executor here is anything with
``run(jobs) -> {arm label: error}``:

- :class:`ProcessExecutor` (``--jobs N``): a :class:`concurrent.futures.ProcessPoolExecutor`
  with the ``spawn`` start method and a fresh process per arm, at most ``N`` at once, each with
  one GPU (``CUDA_VISIBLE_DEVICES``) where there are several, else one torch thread;
- :class:`FuturesExecutor`: any object with a ``concurrent.futures``-style
  ``submit(fn, *args)`` whose results have ``.result()`` (an ``mpi4py.futures`` or dask
  executor, a loky pool, a ``submitit`` executor you configured yourself);
- :class:`SubmititExecutor` (``--executor slurm``): one SLURM job per arm through
  `submitit <https://github.com/facebookincubator/submitit>`_, the tool research labs use to
  send PyTorch jobs to a cluster; ``cluster='local'`` runs the same jobs as local processes
  (how the tests exercise it). A preempted or timed-out job is requeued by submitit
  (``ArmJob.checkpoint``) and the arm resumes from its ``last.pt``.

One arm on several GPUs stays ``torchrun``'s business (:mod:`srlib.train.ddp`); an executor
puts whole arms on machines.

Readings chosen: the cluster's jobs are submitted at once as one job array (the scheduler
queues them; ``max_running`` caps how many run together), and the caller waits for all of them,
so ``srlib study run --executor slurm`` belongs in a shell that stays open (``tmux``) on the
login node. Killing the caller leaves the jobs running; running the study again while they
train fails those arms with "being trained by another process" (each run holds a file lock)
and keeps the others.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import torch

#: ``--executor`` names :func:`make_executor` knows
EXECUTORS = ("process", "slurm", "local")


def visible_gpus() -> list[str]:
    """The GPUs this process sees, as ``CUDA_VISIBLE_DEVICES`` entries (empty on a CPU box)."""
    if not torch.cuda.is_available():
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [v.strip() for v in visible.split(",") if v.strip()] if visible else []
    return ids or [str(i) for i in range(torch.cuda.device_count())]


def _outcome(job, handle) -> dict:
    """A finished job's failures: its result, or the job as failed where its process died (killed,
    out of memory) or its cluster job failed."""
    try:
        return handle.result()
    except Exception as exc:
        return {job.label: f"worker process failed: {type(exc).__name__}: {exc}"}


class ProcessExecutor:
    """Arms in fresh spawned processes on this machine, at most ``jobs`` at once.

    Args:
        jobs: processes at once.
        gpus: ``CUDA_VISIBLE_DEVICES`` entries handed out one per running job, round robin
            (default: every GPU this process sees; none on a CPU box).
    """

    def __init__(self, jobs: int, gpus: list[str] | None = None):
        self.jobs = max(1, int(jobs))
        self.gpus = visible_gpus() if gpus is None else list(gpus)

    def run(self, jobs: list) -> dict:
        ctx = multiprocessing.get_context("spawn")
        queue, free, pending, failures = list(jobs), list(range(self.jobs)), {}, {}
        fresh = {"max_tasks_per_child": 1} if sys.version_info >= (3, 11) else {}  # 3.10: reused workers
        with ProcessPoolExecutor(max_workers=self.jobs, mp_context=ctx, **fresh) as pool:
            while queue or pending:
                while queue and free:
                    slot, job = free.pop(0), queue.pop(0)
                    gpu = self.gpus[slot % len(self.gpus)] if self.gpus else None
                    pending[pool.submit(job, gpu)] = (job, slot)
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    job, slot = pending.pop(fut)
                    free.append(slot)
                    failures.update(_outcome(job, fut))
        return failures

    def __repr__(self) -> str:
        return f"ProcessExecutor(jobs={self.jobs}, gpus={self.gpus})"


class FuturesExecutor:
    """Any ``concurrent.futures``-style executor: every job is submitted, then each result awaited.

    ``executor.submit(job)`` must return an object with ``.result()`` (a
    :class:`concurrent.futures.Future`, a ``submitit.Job``); the job gets no GPU argument, so
    the engine places it (a cluster sets ``CUDA_VISIBLE_DEVICES`` itself).
    """

    def __init__(self, executor):
        if not callable(getattr(executor, "submit", None)):
            raise TypeError(f"executor={executor!r}: expected a concurrent.futures-style object with "
                            "submit(fn, *args), or one of " + ", ".join(EXECUTORS))
        self.executor = executor

    def _submit_all(self, jobs: list) -> list:
        return [self.executor.submit(job) for job in jobs]

    def run(self, jobs: list) -> dict:
        failures = {}
        for job, handle in zip(jobs, self._submit_all(jobs)):
            failures.update(_outcome(job, handle))
        return failures

    def __repr__(self) -> str:
        return f"FuturesExecutor({self.executor!r})"


def _default_folder() -> Path:
    from ..paths import project_root

    return project_root() / "results" / "submitit"


class SubmititExecutor(FuturesExecutor):
    """One cluster job per arm through ``submitit.AutoExecutor``.

    Args:
        cluster: ``'slurm'``, or ``'local'`` (the same jobs as local processes, for testing).
        folder: submitit's job files and logs, ``%j`` the job id (default:
            ``results/submitit/%j``; it is not part of any run and never exported).
        gpus_per_job: GPUs per arm (``gpus_per_node``); 1 by default on SLURM, 0 locally. An arm
            trains on one GPU; use ``torchrun`` to put one model on several.
        timeout_min: the job's time limit in minutes (SLURM ``--time``); a job that reaches it
            is requeued and resumes (default: 24 h on SLURM, 1 h locally).
        partition: the SLURM partition.
        mem_gb: memory per job in GB.
        cpus_per_task: CPU cores per job (also the job's torch threads unless ``threads`` is
            given to :meth:`Study.run`).
        max_running: most arms running at once (``slurm_array_parallelism``); None: no cap.
        max_timeouts: how often a job that reaches ``timeout_min`` is requeued (a preemption
            does not count); a long ``full`` arm under a 24 h limit needs several.
        options: further ``AutoExecutor.update_parameters`` keywords, e.g.
            ``{"slurm_account": "lab", "slurm_qos": "high", "slurm_constraint": "a100"}``.
    """

    def __init__(self, cluster: str = "slurm", folder=None, gpus_per_job: int | None = None,
                 timeout_min: int | None = None, partition: str | None = None, mem_gb: float | None = None,
                 cpus_per_task: int | None = None, max_running: int | None = None, max_timeouts: int = 20,
                 options: dict | None = None):
        try:
            import submitit
        except ImportError:
            raise ImportError("the slurm and local executors need submitit: pip install submitit") from None
        if cluster not in ("slurm", "local", "debug"):
            raise ValueError(f"SubmititExecutor(cluster={cluster!r}): use 'slurm', or 'local' to run the "
                             "same jobs as local processes")
        local = cluster != "slurm"
        self.cluster = cluster
        self.folder = Path(folder) if folder is not None else _default_folder() / "%j"
        params = {"gpus_per_node": (0 if local else 1) if gpus_per_job is None else int(gpus_per_job),
                  "timeout_min": timeout_min or (60 if local else 24 * 60), "name": "srlib-arm",
                  "mem_gb": mem_gb, "cpus_per_task": cpus_per_task, "slurm_partition": partition,
                  "slurm_array_parallelism": max_running, **(options or {})}
        if params["gpus_per_node"] < 0:
            raise ValueError(f"gpus_per_job must be 0 or more, got {gpus_per_job}")
        try:
            extra = {} if cluster == "debug" else {f"{cluster}_max_num_timeout": int(max_timeouts)}
            ex = submitit.AutoExecutor(folder=self.folder, cluster=cluster, **extra)
        except RuntimeError as err:  # no srun: not on a SLURM cluster
            raise RuntimeError(f"--executor {cluster}: {err} Run it on the cluster's login node, or use "
                               "--executor local to run the same jobs on this machine") from None
        try:
            ex.update_parameters(**{k: v for k, v in params.items() if v is not None})
        except (NameError, AssertionError) as err:  # submitit's messages for unknown / mistyped keys
            raise ValueError(f"executor options {sorted(options or {})}: {err}") from None
        self.parameters = params
        self.submitted: list = []  # the submitit.Job of every arm sent (job_id, paths.stdout, ...)
        super().__init__(ex)

    def _submit_all(self, jobs: list) -> list:
        with self.executor.batch():  # one job array
            handles = [self.executor.submit(job) for job in jobs]
        self.submitted.extend(handles)
        return handles

    def __repr__(self) -> str:
        return f"SubmititExecutor(cluster={self.cluster!r}, folder={str(self.folder)!r})"


def parse_option(text: str) -> tuple[str, object]:
    """``'key=value'`` (``--executor-option``) as ``(key, value)``; the value as an int, a float,
    ``true``/``false`` or else the string."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"executor option {text!r}: expected key=value, e.g. slurm_account=lab")
    value = value.strip()
    for cast in (int, float):
        try:
            return key.strip(), cast(value)
        except ValueError:
            pass
    low = value.lower()
    return key.strip(), (low == "true") if low in ("true", "false") else value


def make_executor(name: str = "process", jobs: int | None = None, **options):
    """An executor by ``--executor`` name.

    ``'process'``: :class:`ProcessExecutor` with ``jobs`` processes (``options`` must be empty);
    ``'slurm'`` / ``'local'``: :class:`SubmititExecutor` with ``options`` as its keywords and
    ``jobs`` as ``max_running``.
    """
    if name == "process":
        if options:
            raise ValueError(f"--executor process takes no cluster options (got {sorted(options)}); "
                             "use --executor slurm")
        return ProcessExecutor(jobs or 1)
    if name in ("slurm", "local"):
        return SubmititExecutor(name, max_running=jobs, **options)
    raise ValueError(f"unknown executor {name!r}; use one of {', '.join(EXECUTORS)}")
