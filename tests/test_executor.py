"""Executors: a study's arms sent to an existing engine (a process pool, submitit's SLURM or local
executor) give the table of a run in this process, survive preemption, and train nothing twice.
Smoke-size arms as in tests/test_studies.py (a 2-layer CNN with 8 features, 16 px patches)."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import psutil
import pytest
import torch

from srlib.cli import main
from srlib.studies import Arm, Study, register_study
from srlib.studies.core import ArmJob
from srlib.studies.executors import (FuturesExecutor, ProcessExecutor, SubmititExecutor, make_executor,
                                     parse_option)

submitit = pytest.importorskip("submitit")

TINY = dict(n_feats=8, n_mapping=1)
VOLATILE = ["train_seconds", "run_dir"]


def arm(name="a", **train) -> Arm:
    return Arm(name, "cnn", 2, model_kwargs=TINY, train={"precision": "fp32", **train})


def study(*arms) -> Study:
    return Study("tiny", "smoke", list(arms) or [arm()], max_images=1)


def weights(run_dir) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)["model"]


@pytest.mark.slow
def test_a_preempted_submitit_job_is_requeued_and_resumes_to_the_in_process_result(project, fits, tmp_path):
    """submitit's local executor: the arm trains in another process; the job is signalled
    (USR2, as SLURM signals a preemption) after its first last.pt, requeued through
    ArmJob.checkpoint, and resumes to the weights and table of an uninterrupted run here."""
    s = study(arm(steps=300, checkpoint_every=5, validate_every=100))
    project("inline")
    ref_table = s.run(threads=1, progress=False)
    ref = weights(s.run_dir(s.arms[0]))

    project("cluster")
    fits.clear()
    ex = SubmititExecutor("local", folder=tmp_path / "jobs" / "%j", timeout_min=10)
    out: dict = {}
    worker = threading.Thread(target=lambda: out.update(table=s.run(threads=1, executor=ex)))
    worker.start()
    last = s.run_dir(s.arms[0]) / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while not (ex.submitted and last.is_file()) and time.time() < deadline:
        time.sleep(0.02)
    assert last.is_file(), "the job never wrote its first last.pt"
    # SIGUSR2 to the job's task process, as SLURM signals a preemption (LocalJob._interrupt signals
    # the controller, which does not forward it): submitit calls ArmJob.checkpoint and requeues
    task = psutil.Process(ex.submitted[0]._process.pid).children()[0]
    task.send_signal(signal.SIGUSR2)
    worker.join(timeout=300)
    assert not worker.is_alive() and "table" in out
    assert fits == []  # trained in the job's process, not here
    run = json.loads((s.run_dir(s.arms[0]) / "run.json").read_text())
    assert run["status"] == "finished" and len(run["sessions"]) == 2  # resumed, not restarted
    got = weights(s.run_dir(s.arms[0]))
    assert all(torch.equal(got[k], ref[k]) for k in ref)  # bit for bit
    pd.testing.assert_frame_equal(out["table"].drop(columns=VOLATILE), ref_table.drop(columns=VOLATILE),
                                  check_exact=True)
    log = ex.submitted[0].paths.stdout.read_text()
    assert "Calling checkpoint method" in log and "Requeued job" in log
    # a second run submits nothing
    before = len(ex.submitted)
    s.run(threads=1, executor=ex)
    assert len(ex.submitted) == before and fits == []


def test_executor_names_give_the_engines(project):
    from srlib.studies.core import _executor

    local = _executor("local", 1)
    assert isinstance(local, SubmititExecutor) and local.parameters["gpus_per_node"] == 0
    assert local.folder.parent == study().study_dir.parents[2] / "submitit" and local.folder.name == "%j"
    assert _executor(None, 1) is None and isinstance(_executor(None, 2), ProcessExecutor)
    assert _executor("local", 3).parameters["slurm_array_parallelism"] == 3


def test_any_concurrent_futures_executor_runs_the_arms(project, fits):
    s = study(arm("a"), arm("b", lr=3e-3))
    project("inline")
    one = s.run(threads=1, progress=False)
    project("pool")
    fits.clear()
    with ThreadPoolExecutor(max_workers=1) as pool:
        two = s.run(threads=1, executor=pool)
    assert sorted(fits) == sorted(s.run_dir(a).name for a in s.arms)
    pd.testing.assert_frame_equal(two.drop(columns=VOLATILE), one.drop(columns=VOLATILE), check_exact=True)
    with pytest.raises(TypeError, match="concurrent.futures-style"):
        s.run(executor=object())


def test_arm_job_is_requeued_as_itself():
    job = ArmJob(study(), study().arms[0], {"threads": 1})
    delayed = job.checkpoint()
    assert isinstance(delayed, submitit.helpers.DelayedSubmission) and delayed.function is job
    assert job.label == "a (seed 0)" and "tiny" in repr(job)


def test_slurm_options_reach_the_sbatch_script(tmp_path, monkeypatch):
    """Without a cluster: a stand-in ``srun`` on PATH lets submitit build its SLURM executor, whose
    batch script must carry the GPUs per arm, the partition, the time, the memory, extra options
    and the preemption signal that makes submitit requeue."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    ex = make_executor("slurm", jobs=3, folder=tmp_path / "jobs" / "%j", gpus_per_job=2, partition="gpu",
                       timeout_min=90, mem_gb=32, cpus_per_task=8, options=dict([parse_option("slurm_account=lab")]))
    script = ex.executor._executor._make_submission_file_text("python -m x", "uid")
    for line in ("--gpus-per-node=2", "--partition=gpu", "--time=90", "--mem=32GB", "--cpus-per-task=8",
                 "--account=lab", "--signal=USR2@"):
        assert f"#SBATCH {line}" in script
    assert ex.parameters["slurm_array_parallelism"] == 3
    assert ex.executor._executor.max_num_timeout == 20  # a long arm may hit its time limit many times
    default = make_executor("slurm", folder=tmp_path / "jobs" / "%j")
    assert default.executor._executor.parameters["gpus_per_node"] == 1  # one GPU per arm by default
    with pytest.raises(ValueError, match="slurm_bogus"):
        make_executor("slurm", folder=tmp_path / "j" / "%j", options={"slurm_bogus": 1})
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(RuntimeError, match="--executor local"):
        make_executor("slurm", folder=tmp_path / "j" / "%j")


def test_executor_names_and_options():
    assert parse_option("slurm_qos=high") == ("slurm_qos", "high")
    assert parse_option("mem_gb=7.5") == ("mem_gb", 7.5) and parse_option("nodes=1") == ("nodes", 1)
    assert parse_option("slurm_exclusive=true") == ("slurm_exclusive", True)
    with pytest.raises(ValueError, match="key=value"):
        parse_option("slurm_qos")
    assert isinstance(make_executor("process", jobs=2), ProcessExecutor)
    assert make_executor("process", jobs=2).jobs == 2
    with pytest.raises(ValueError, match="--executor slurm"):
        make_executor("process", partition="gpu")
    with pytest.raises(ValueError, match="unknown executor 'ray'"):
        make_executor("ray")
    assert isinstance(FuturesExecutor(ThreadPoolExecutor(1)), FuturesExecutor)


def test_cli_cluster_options_need_a_cluster_executor(project, capsys):
    @register_study("test-exec")
    def _tiny(profile):
        return Study("test-exec", profile, [arm()], max_images=1)

    assert main(["study", "run", "test-exec", "--profile", "smoke", "--slurm-partition", "gpu"]) == 2
    assert "need --executor slurm" in capsys.readouterr().err
    assert main(["study", "run", "test-exec", "--profile", "smoke", "--executor", "local",
                 "--executor-option", "nonsense"]) == 2
    assert "key=value" in capsys.readouterr().err
