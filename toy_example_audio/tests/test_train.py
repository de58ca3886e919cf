"""The model, the heads and the training loss (CPU, tiny shapes); the config and the run identity."""

import importlib.util
import json

import pytest
import torch


def tiny_config(audio, **kw):
    return audio.train.parse_config(["--quick", "--d-model", "16", "--n-heads", "2", *kw.pop("argv", [])])


@pytest.mark.parametrize("head", ["linear", "fourier"])
def test_classifier_shapes(audio, head):
    cfg = tiny_config(audio, argv=["--head", head, "--num-frequencies", "3"])
    model = audio.train.TempoClassifier(32, 128, 33, cfg)
    out, reg = model(torch.randn(5, 32, 128))
    assert out.shape == (5, 33) and reg.dim() == 0
    probs = out.softmax(-1)
    assert torch.allclose(probs.sum(-1), torch.ones(5), atol=1e-5)
    if head == "fourier":
        assert reg.item() > 0 and model.head.num_frequencies == 3


def test_regulariser_reaches_the_loss(audio):
    """The reference's Trainer dropped the Fourier regulariser; here it must change the gradients."""
    cfg = tiny_config(audio, argv=["--head", "fourier", "--num-frequencies", "4"])
    torch.manual_seed(0)
    model = audio.train.TempoClassifier(32, 128, 33, cfg)
    with torch.no_grad():  # make the coefficients large enough for the penalty to matter
        model.head.fc_extract_autocorrelation_params.weight.mul_(100)
    x, y = torch.randn(4, 32, 128), torch.tensor([0, 5, 10, 20])
    grads = []
    for gamma in (0.0, 1.0):
        model.head.regularizion_gamma = gamma
        model.zero_grad()
        out, reg = model(x)
        (torch.nn.functional.cross_entropy(out, y) + reg).backward()
        grads.append(model.head.fc_extract_autocorrelation_params.weight.grad.clone())
    assert not torch.allclose(grads[0], grads[1])


def test_patches_must_tile(audio, refusal):
    assert "--patch-mels" in refusal(audio.train.parse_config, ["--quick", "--patch-mels", "5"])  # before any work
    cfg = tiny_config(audio)
    with pytest.raises(ValueError, match="tile"):
        audio.train.TempoClassifier(32, 126, 33, cfg)  # 126 frames, patches 4 frames wide


@pytest.mark.parametrize("argv,message", [
    (["--head", "gmm"], "--head"), (["--split", "random"], "--split"), (["--renderer", "fluidsynth"], "--renderer"),
    (["--num-frequencies", "0"], "--num-frequencies"), (["--bin-size", "0"], "--bin-size"),
    (["--epochs", "0"], "--epochs"), (["--batch-size", "0"], "--batch-size"), (["--lr", "0"], "--lr"),
    (["--regularization-gamma", "-0.1"], "--regularization-gamma"), (["--weight-decay", "-0.1"], "--weight-decay"),
    (["--head-weight-decay", "-0.5"], "--head-weight-decay"), (["--head-weight-decay", "-2"], "--head-weight-decay"),
    (["--warmup-fraction", "1.5"], "--warmup-fraction"), (["--val-fraction", "1"], "--val-fraction"),
    (["--clip-seconds", "0"], "--clip-seconds"), (["--n-heads", "3"], "--n-heads"),
    (["--num-frames", "300"], "--num-frames"), (["--device", "tpu"], "tpu"),
    (["--quick", "--out-dir", "{runs}"], "runs/quick"), (["--quick", "--out-dir", "{runs}/short-15ep"], "runs/quick")])
def test_bad_config(audio, argv, message, refusal):
    argv = [a.format(runs=audio.train.RUNS) for a in argv]
    assert message in refusal(audio.train.parse_config, argv)


def test_quick_preset_and_cli_precedence(audio):
    cfg = audio.train.parse_config(["--quick", "--epochs", "7"])
    assert cfg.epochs == 7 and cfg.d_model == audio.train.QUICK["d_model"]
    assert cfg.run_dir.is_relative_to(audio.train.RUNS / "quick")                    # quick runs and their data
    assert audio.train.Path(cfg.data_dir).is_relative_to(audio.train.RUNS / "quick")  # stay under runs/quick/
    full = audio.train.parse_config([])
    assert (full.bin_size, full.split, full.split_seed, full.regularization_gamma) == (5, "standard", 42, 1e-6)
    assert full.run_dir.parts[-3:] == ("standard-bin5", "fourier-f2-g1e-06", "seed0")
    assert audio.train.run_config(full)["quick"] is False  # the key committed config.json files carry


def test_rerun_identity(audio, tmp_path):
    """A folder holding other settings stops the run naming the field (sweep.py's plan too); --force overwrites."""
    t = audio.train
    cfg = t.parse_config(["--quick", "--out-dir", str(tmp_path)])
    assert t.begin(cfg) is not None and not t.is_finished(cfg)             # claims the folder: config.json
    (cfg.run_dir / "metrics.json").write_text("{}")
    assert t.is_finished(cfg) and t.begin(cfg) is None                     # same settings, finished: skipped
    other = t.parse_config(["--quick", "--out-dir", str(tmp_path), "--lr", "0.002", "--device", "cpu"])
    for check in (t.begin, t.is_finished):
        with pytest.raises(SystemExit, match=r"other settings \(lr: 0\.0005 -> 0\.002\)"):  # device is ignored
            check(other)
    forced = t.parse_config(["--quick", "--out-dir", str(tmp_path), "--lr", "0.002", "--force"])
    assert not t.is_finished(forced) and t.begin(forced) is not None
    assert not (cfg.run_dir / "metrics.json").exists()                     # the old run is gone
    assert json.loads((cfg.run_dir / "config.json").read_text())["lr"] == 0.002


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed")
def test_wandb_without_the_package(audio, tmp_path):
    cfg = audio.train.parse_config(["--quick", "--wandb", "--out-dir", str(tmp_path)])
    with pytest.raises(SystemExit, match="^error: --wandb needs the wandb package"):
        audio.train.begin(cfg)  # before the data is read
