"""The profile recipe behind `srlib train`: data, validation by the protocol, provenance."""
import json

import torch

from srlib.cli import main
from srlib.models import build_model, load_weights
from srlib.train import make_validator, profile_config


def test_profile_config_follows_the_profile():
    c = profile_config("full")
    assert (c.steps, c.batch_size, c.lr, c.step_size, c.loss) == (1_000_000, 16, 1e-3, 200_000, "l1")
    assert profile_config("smoke", steps=3).steps == 3


def test_validator_scores_bicubic_like_the_protocol(data_dir):
    from srlib.classical import Bicubic

    class Wrapped(torch.nn.Module):  # a module with a parameter, as the validator expects
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(()))
            self.up = Bicubic(4)

        def forward(self, x):
            return self.up(x)

    scores = make_validator("Set5", 4)(Wrapped())
    assert abs(scores["psnr"] - 28.42) < 0.02 and abs(scores["ssim"] - 0.8104) < 0.002


def test_srlib_train_smoke_writes_checkpoints_log_and_provenance(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--model", "awsrn-s", "--scale", "2", "--profile", "smoke", "--out", str(out),
                 "--steps", "2"]) == 0
    assert "trained awsrn-s x2 to step 2" in capsys.readouterr().out
    run = json.loads((out / "run.json").read_text())
    assert run["provenance"]["profile"] == "smoke" and "T91" in run["provenance"]["data_source"]
    header = (out / "log.csv").read_text().splitlines()[0].split(",")
    assert header[0] == "step" and {"loss", "lr", "psnr", "ssim"} <= set(header)
    assert run["validation"]["dataset"] == "T91" and run["validation"]["held_out_of_training"]
    load_weights(build_model("awsrn-s", 2), out / "checkpoints" / "last.pt")
    # resume to more steps continues from step 2
    assert main(["train", "--model", "awsrn-s", "--scale", "2", "--profile", "smoke", "--out", str(out),
                 "--steps", "3", "--resume"]) == 0
    assert "to step 3" in capsys.readouterr().out
