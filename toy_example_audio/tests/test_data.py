"""The generator (determinism, labels, cache), bucketing, the split rules and the features."""

import csv
import hashlib
import importlib.util
import json
import sys

import numpy as np
import pytest

TINY = dict(bpm_min=50, bpm_max=210, bpm_step=40, num_timbres=5, num_offsets=2, clip_seconds=1.0,
            track_seconds=3.0, sample_rate=8000, renderer="numpy")


# ---- bucketing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("bin_size,classes", [(5, 33), (7, 23), (15, 11), (1, 161)])
def test_num_buckets(audio, bin_size, classes):
    assert audio.data.num_buckets(bin_size) == classes
    bpms = np.arange(50, 211)
    labels = audio.data.bucket(bpms, bin_size)
    assert labels.min() == 0 and labels.max() == classes - 1
    assert np.all(np.diff(labels) >= 0) and set(np.unique(labels)) == set(range(classes))


def test_bucket_edges_and_centres(audio):
    d = audio.data
    assert [int(d.bucket(b, 5)) for b in (50, 54, 55, 59, 60, 209, 210)] == [0, 0, 1, 1, 2, 31, 32]
    centres = d.bucket_centers(5)
    assert centres[0] == 52 and centres[1] == 57 and centres[-1] == 210  # last bucket holds 210 alone
    assert d.bucket_centers(15)[-1] == 205  # 200..210


def test_bad_bin_size(audio):
    with pytest.raises(ValueError, match="bin_size"):
        audio.data.num_buckets(0)


# ---- splits ------------------------------------------------------------------------------------

def full_bpms():
    return np.repeat(np.arange(50, 211), 25)  # 161 tempos x 25 clips = 4,025


def test_standard_split(audio):
    bpms = full_bpms()
    train, test = audio.data.split_indices(bpms, "standard", seed=42)
    assert (len(train), len(test)) == (2817, 1208)  # 70/30 as the reference's train_test_split
    assert len(np.intersect1d(train, test)) == 0 and len(np.union1d(train, test)) == len(bpms)
    again = audio.data.split_indices(bpms, "standard", seed=42)
    assert np.array_equal(train, again[0]) and np.array_equal(test, again[1])
    other = audio.data.split_indices(bpms, "standard", seed=43)
    assert not np.array_equal(test, other[1])


def test_odds_evens_split(audio):
    bpms = full_bpms()
    train, test = audio.data.split_indices(bpms, "odds_evens")
    assert np.all(bpms[train] % 2 == 1) and np.all(bpms[test] % 2 == 0)
    assert len(train) == 80 * 25 and len(test) == 81 * 25
    # every 5-BPM class except the last (210 alone) appears on both sides
    assert set(audio.data.bucket(bpms[train], 5)) == set(range(32))


def test_bad_split(audio):
    with pytest.raises(ValueError, match="split"):
        audio.data.split_indices(full_bpms(), "random")


# ---- MIDI events and rendering -----------------------------------------------------------------

def test_click_events(audio):
    d = audio.data
    timbre = d.TIMBRES[1]
    events = d.click_events(120, 4.0, timbre)
    times = np.array([e[0] for e in events])
    assert len(events) == 8 and np.allclose(np.diff(times), 0.5)
    assert [e[1] for e in events[:5]] == [timbre.downbeat_note] + 3 * [timbre.offbeat_note] + [timbre.downbeat_note]
    assert events[0][2] == 100 and events[1][2] == 75


def onsets_match(track, sr, bpm, tolerance_s=0.02):
    """Every beat of the click grid starts a burst of energy within `tolerance_s`."""
    env = np.abs(track)
    beat = 60.0 / bpm
    for k in range(int(len(track) / sr / beat)):
        start = int(k * beat * sr)
        after = env[start:start + int(tolerance_s * sr)].max()
        assert after > 0.05, f"no onset at beat {k}"
        if k > 0:  # louder than the previous beat's tail just before
            assert after > 2 * env[start - int(0.05 * sr):start - int(tolerance_s * sr)].max(), f"beat {k}"


def test_numpy_renderer(audio):
    d = audio.data
    for timbre in d.TIMBRES:
        track = d.render_numpy(100, timbre, 3.0, 8000)
        assert track.shape == (24000,) and track.dtype == np.float32 and np.abs(track).max() < 1
        onsets_match(track, 8000, 100)
        assert np.array_equal(track, d.render_numpy(100, timbre, 3.0, 8000))


@pytest.mark.skipif(importlib.util.find_spec("tinysoundfont") is None or importlib.util.find_spec("pretty_midi") is None,
                    reason="sf2 renderer needs `pip install pretty_midi && pip install --no-deps tinysoundfont`")
def test_soundfont_renderer(audio):
    d = audio.data
    for timbre in d.TIMBRES:
        track = d.render_sf2(90, timbre, 3.0, 16000)
        assert track.shape == (48000,) and np.abs(track).max() > 0.05, timbre.name
        onsets_match(track, 16000, 90)
        assert np.array_equal(track, d.render_sf2(90, timbre, 3.0, 16000))  # deterministic


# ---- the dataset and its cache -----------------------------------------------------------------

def test_generator_deterministic_and_labelled(audio, tmp_path, monkeypatch):
    d = audio.data
    monkeypatch.setitem(sys.modules, "data", d)  # worker processes find the render function by name
    p = d.DatasetParams(**TINY)
    a = d.build_dataset(p, tmp_path / "a", workers=1, progress=False)
    b = d.build_dataset(p, tmp_path / "b", workers=2, progress=False)
    ma, mb = (json.loads((x / "manifest.json").read_text()) for x in (a, b))
    assert ma["sha256"] == mb["sha256"]  # same bytes whatever the worker count
    assert ma["num_clips"] == 5 * 5 * 2 == p.num_clips
    audio_a, meta = d.load_clips(a)
    assert audio_a.shape == (50, 8000) and audio_a.dtype == np.int16
    assert np.all(np.abs(audio_a).max(axis=1) > 100)  # no silent clip
    assert sorted(set(meta["bpm"])) == [50, 90, 130, 170, 210]
    assert np.all(np.bincount(meta["bpm"])[[50, 90, 130, 170, 210]] == 10)
    with open(a / "clips.csv") as f:
        rows = list(csv.DictReader(f))
    offsets = np.array([float(r["offset_seconds"]) for r in rows])
    assert np.all((offsets >= 0) & (offsets <= 2.0)) and len(set(offsets)) == 50
    c = d.build_dataset(d.DatasetParams(**{**TINY, "seed": 1}), tmp_path / "c", workers=1, progress=False)
    assert json.loads((c / "manifest.json").read_text())["sha256"] != ma["sha256"]  # the seed matters


def test_cache_reused_and_corruption_rebuilt(audio, tmp_path, capsys):
    d = audio.data
    p = d.DatasetParams(**TINY)
    folder = d.build_dataset(p, tmp_path, workers=1, progress=False)
    digest = hashlib.sha256((folder / "audio.npy").read_bytes()).hexdigest()
    mtime = (folder / "audio.npy").stat().st_mtime_ns
    capsys.readouterr()
    assert d.build_dataset(p, tmp_path, workers=1, progress=False) == folder
    assert (folder / "audio.npy").stat().st_mtime_ns == mtime and capsys.readouterr().err == ""

    raw = bytearray((folder / "audio.npy").read_bytes())
    raw[-100:] = bytes(100)  # corrupt the last samples
    (folder / "audio.npy").write_bytes(bytes(raw))
    d.build_dataset(p, tmp_path, workers=1, progress=False)
    assert "checksum mismatch" in capsys.readouterr().err
    assert hashlib.sha256((folder / "audio.npy").read_bytes()).hexdigest() == digest


def test_invalid_params(audio):
    with pytest.raises(ValueError, match="renderer"):
        audio.data.DatasetParams(renderer="fluidsynth").validate()
    with pytest.raises(ValueError, match="clip_seconds"):
        audio.data.DatasetParams(clip_seconds=30).validate()


# ---- features ----------------------------------------------------------------------------------

def test_log_mel_onsets(audio):
    d = audio.data
    f = d.FeatureParams(n_fft=256, hop_length=100, n_mels=16, num_frames=64)
    x = np.zeros((2, 8000), dtype=np.float32)
    x[0, 3000:3040] = np.random.default_rng(0).standard_normal(40)  # a click at frame 30
    x[1, 5000:5040] = 1.0
    feats = d.log_mel(x, 8000, f)
    assert feats.shape == (2, 16, 64) and feats.dtype == np.float16
    energy = feats.astype(np.float32).mean(axis=1)
    assert abs(int(energy[0].argmax()) - 30) <= 2
    assert feats.min(axis=(1, 2)).tolist() == pytest.approx((feats.max(axis=(1, 2)) - f.top_db).tolist(), abs=0.1)


@pytest.mark.skipif(importlib.util.find_spec("librosa") is None, reason="librosa not installed")
def test_mel_filterbank_matches_librosa(audio):
    """The hand-written filterbank is librosa's HTK-scale, Slaney-normalised one (to float32 rounding)."""
    import librosa

    ours = audio.data.mel_filterbank(16000, 512, 32, 20.0, 8000.0).numpy()
    ref = librosa.filters.mel(sr=16000, n_fft=512, n_mels=32, fmin=20.0, fmax=8000.0, htk=True, norm="slaney",
                              dtype=np.float64)
    assert ours.shape == ref.shape == (32, 257)
    assert np.allclose(ours, ref, rtol=1e-6, atol=1e-9)


def test_features_cached(audio, tmp_path):
    d = audio.data
    p = d.DatasetParams(**TINY)
    f = d.FeatureParams(n_fft=256, hop_length=125, n_mels=16, num_frames=64)
    path = d.build_features(p, f, tmp_path, workers=1, progress=False)
    feats = d.load_features(path)
    assert feats["logmel"].shape == (50, 16, 64) and len(feats["bpm"]) == 50
    assert feats["info"]["dataset_params"]["renderer"] == "numpy"
    assert d.build_features(p, f, tmp_path, workers=1, progress=False) == path
