"""The model, the heads and the training loss (CPU, tiny shapes)."""

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


def test_patches_must_tile(audio):
    cfg = tiny_config(audio, argv=["--patch-mels", "5"])
    with pytest.raises(ValueError, match="tile"):
        audio.train.TempoClassifier(32, 128, 33, cfg)


@pytest.mark.parametrize("argv,message", [(["--head", "gmm"], "--head"), (["--split", "random"], "--split"),
                                          (["--head", "fourier", "--num-frequencies", "0"], "--num-frequencies"),
                                          (["--bin-size", "0"], "--bin-size")])
def test_bad_config(audio, argv, message, capsys):
    with pytest.raises(SystemExit, match=message):
        audio.train.parse_config(argv)


def test_quick_preset_and_cli_precedence(audio):
    cfg = audio.train.parse_config(["--quick", "--epochs", "7"])
    assert cfg.epochs == 7 and cfg.d_model == audio.train.QUICK["d_model"]
    full = audio.train.parse_config([])
    assert (full.bin_size, full.split, full.split_seed, full.regularization_gamma) == (5, "standard", 42, 1e-6)
    assert full.run_dir.parts[-3:] == ("standard-bin5", "fourier-f2-g1e-06", "seed0")
