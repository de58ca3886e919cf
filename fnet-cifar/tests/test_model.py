"""The Spectracles model against the seed repository's definition, the patch baselines and the anchors."""

import math

import pytest
import torch


@pytest.fixture
def m():
    import model  # the experiment folder is on sys.path while its tests run (root conftest.py)

    return model


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("c,h,w", [(1, 28, 28), (3, 32, 32), (2, 6, 10)])
def test_realify_and_real_only_shapes(m, c, h, w):
    x = rand(4, c, h, w)
    assert m.fourier_channels(x, "realify").shape == (4, 2 * c, h, w)
    assert m.fourier_channels(x, "legacy").shape == (4, 2 * c, h, w)
    assert m.fourier_channels(x, "real").shape == (4, c, h, w)


@pytest.mark.parametrize("norm", ["backward", "ortho"])
def test_realify_loses_nothing(m, norm):
    x = rand(3, 3, 8, 12)
    y = m.fourier_channels(x, "realify", norm)
    z = torch.complex(y[:, 0::2], y[:, 1::2])  # interleaved [Re c0, Im c0, Re c1, ...]
    torch.testing.assert_close(z, torch.fft.fft2(x, norm=norm))
    torch.testing.assert_close(torch.fft.ifft2(z, norm=norm).real, x, atol=1e-5, rtol=1e-5)


def test_real_only_keeps_only_the_even_part(m):
    x = rand(2, 1, 8, 8)
    y = m.fourier_channels(x, "real")
    torch.testing.assert_close(y, torch.fft.fft2(x).real)
    # Re FFT(x) = FFT of the even part (x(n) + x(-n)) / 2: an odd image is invisible to it.
    flipped = torch.roll(torch.flip(x, dims=(-2, -1)), shifts=(1, 1), dims=(-2, -1))  # x(-n mod N)
    odd = (x - flipped) / 2
    assert m.fourier_channels(odd, "real").abs().max() < 1e-4
    assert m.fourier_channels(odd, "realify").abs().max() > 1.0


def test_legacy_layout_is_the_described_scramble(m):
    b, c, h, w = 2, 3, 6, 8
    x = rand(b, c, h, w)
    z = torch.fft.fft2(x)
    y = m.fourier_channels(x, "legacy")
    # New channel 2c+s, row r, column k: z[c, s*H/2 + r//2, ((r%2)*W + k)//2], Re if k even, Im if odd.
    expect = torch.empty_like(y)
    for ch in range(c):
        for s in range(2):
            for r in range(h):
                for k in range(w):
                    v = z[:, ch, s * h // 2 + r // 2, ((r % 2) * w + k) // 2]
                    expect[:, 2 * ch + s, r, k] = v.real if k % 2 == 0 else v.imag
    torch.testing.assert_close(y, expect)
    fixed = m.fourier_channels(x, "realify")
    assert not torch.allclose(y, fixed)
    # Same numbers, other places: each sample's values are a permutation of the fixed layout's.
    torch.testing.assert_close(y.flatten(1).sort(dim=1).values, fixed.flatten(1).sort(dim=1).values)


def test_positional_channels(m):
    assert m.positional_channels("none", 5, 7).shape == (0, 5, 7)
    simple = m.positional_channels("simple", 5, 7)
    assert simple.shape == (2, 5, 7)
    torch.testing.assert_close(simple[0, :, 3], torch.arange(5) / 4.0)  # row index / (H - 1)
    torch.testing.assert_close(simple[1, 2, :], torch.arange(7) / 6.0)  # column index / (W - 1)
    sin = m.positional_channels("sinusoidal", 5, 7, num_freqs=3)
    assert sin.shape == (12, 5, 7)
    row, col = simple[0], simple[1]
    order = [(f, fn, p) for f in (1, 2, 3) for fn in (torch.sin, torch.cos) for p in (row, col)]
    for i, (f, fn, p) in enumerate(order):
        torch.testing.assert_close(sin[i], fn(2 * math.pi * f * p), atol=1e-6, rtol=0)
    torch.testing.assert_close(sin[:, 0], sin[:, -1], atol=1e-5, rtol=0)  # pos 0 and 1 coincide


def test_positional_channels_are_concatenated_before_every_conv(m):
    for pe, p in [("none", 0), ("simple", 2), ("sinusoidal", 32)]:
        net = m.Spectracles(3, 100, (32, 32), pe=pe)
        for c_in, block in zip([3, 32, 32, 32, 32], net.blocks):
            hidden = 2 * c_in
            assert block.convs[0].in_channels == 2 * c_in + p  # realified FFT + PE
            assert all(conv.in_channels == hidden + p for conv in block.convs[1:])


def test_parameter_counts_match_the_spec(m):
    assert m.count_parameters(m.Spectracles()) == 92_162  # HEAD: 3 -> 32, 4 blocks, 2 inner, sinusoidal F=8
    assert m.count_parameters(m.Spectracles(pe="simple")) == 63_782
    # Real-only changes only the first conv of each block (C instead of 2C inputs).
    diff = m.count_parameters(m.Spectracles()) - m.count_parameters(m.Spectracles(mix="real"))
    assert diff == 3 * 6 + 4 * 32 * 64


@pytest.mark.parametrize("mix", ["realify", "real", "legacy"])
@pytest.mark.parametrize("pe", ["none", "simple", "sinusoidal"])
def test_forward_every_switch(m, mix, pe):
    net = m.Spectracles(1, 10, (12, 12), width=8, depth=1, n_linear=1, mix=mix, pe=pe, pe_freqs=2)
    out = net(rand(3, 1, 12, 12))
    assert out.shape == (3, 10) and torch.isfinite(out).all()
    out.sum().backward()


@pytest.mark.parametrize("kw", [dict(fft_norm="ortho"), dict(norm_dims="hw"), dict(norm_dims="c"),
                                dict(norm_dims="none"), dict(residual=False), dict(n_linear=0), dict(depth=0)])
def test_other_switches(m, kw):
    net = m.Spectracles(3, 5, (8, 8), width=4, **kw)
    assert net(rand(2, 3, 8, 8)).shape == (2, 5)


def test_residual_switch_changes_the_function(m):
    torch.manual_seed(0)
    a = m.Spectracles(1, 4, (8, 8), width=4, depth=1)
    b = m.Spectracles(1, 4, (8, 8), width=4, depth=1, residual=False)
    b.load_state_dict(a.state_dict())
    x = rand(2, 1, 8, 8)
    assert not torch.allclose(a(x), b(x))


def test_standardize_matches_the_seed_definition(m):
    x = rand(2, 3, 4, 5) * 3 + 1
    s = m.standardize(x, (1, 2, 3))
    ref = (x - x.mean((1, 2, 3), keepdim=True)) / (x.std((1, 2, 3), keepdim=True) + 1e-6)
    torch.testing.assert_close(s, ref)


def test_other_resolution_recomputes_positional_channels(m):
    net = m.Spectracles(1, 3, (8, 8), width=4, depth=1)
    assert net(rand(2, 1, 12, 12)).shape == (2, 3)


def test_fnet_mixing_is_real_part_of_2d_dft(m):
    x = rand(2, 5, 6).double()
    t, d = x.shape[1:]
    ft = torch.exp(-2j * math.pi * torch.outer(torch.arange(t), torch.arange(t)).double() / t)
    fd = torch.exp(-2j * math.pi * torch.outer(torch.arange(d), torch.arange(d)).double() / d)
    ref = (ft @ x.to(torch.complex128) @ fd.T).real
    torch.testing.assert_close(m.fnet_mixing(x).double(), ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("mixing", ["fnet", "attention"])
def test_patch_classifiers(m, mixing):
    net = m.PatchClassifier(1, 10, (28, 28), mixing)
    assert net(rand(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ValueError):
        m.PatchClassifier(1, 10, (30, 30), mixing)


def test_baselines_are_of_similar_size(m):
    spec = m.count_parameters(m.Spectracles(1, 10, (28, 28)))
    fnet = m.count_parameters(m.PatchClassifier(1, 10, (28, 28), "fnet", dim=64, ffn=160))
    attn = m.count_parameters(m.PatchClassifier(1, 10, (28, 28), "attention", dim=48, ffn=128))
    assert all(0.8 < n / spec < 1.2 for n in (fnet, attn))


def test_seed_run3_configuration_has_the_logged_parameter_count(m):
    """The seed's first design (one conv per block, simple PE, no standardization, scrambled layout): its log
    gives 12,164 parameters at width 32 and 40,612 at width 64 (run 3), on CIFAR-100."""
    kw = dict(single_conv=True, pe="simple", norm_dims="none", mix="legacy", depth=4)
    assert m.count_parameters(m.Spectracles(3, 100, (32, 32), width=32, **kw)) == 12_164
    assert m.count_parameters(m.Spectracles(3, 100, (32, 32), width=64, **kw)) == 40_612


def test_anchors(m):
    x = rand(2, 1, 28, 28)
    sizes = {"lr": m.LogisticRegression(1, 10, (28, 28)), "mlp": m.MLP(1, 10, (28, 28)),
             "cnn": m.SmallCNN(1, 10, (28, 28))}
    for net in sizes.values():
        assert net(x).shape == (2, 10)
    assert m.count_parameters(sizes["lr"]) == 28 * 28 * 10 + 10
    spec = m.count_parameters(m.Spectracles(1, 10, (28, 28)))
    assert all(0.9 < m.count_parameters(sizes[k]) / spec < 1.1 for k in ("mlp", "cnn"))
    assert m.SmallCNN(3, 100, (32, 32))(rand(2, 3, 32, 32)).shape == (2, 100)


def test_head_starts_with_one_logit_vector_for_every_image(m):
    """Why a short run can score exactly chance: at initialisation the pooled features of `head` barely
    depend on the image (the README's 'A score of exactly chance'); without positional channels they do."""
    x = rand(16, 1, 28, 28).clamp(0, 1)

    def spread(**kw):
        torch.manual_seed(0)
        net = m.Spectracles(1, 10, (28, 28), **kw)
        with torch.no_grad():
            f = net.blocks(x).mean(dim=(2, 3))
        return (f.std(0).mean() / f.abs().mean()).item()

    assert spread() < 0.01 < spread(pe="none")
