"""An offline, SynTheory-style "tempos" dataset: generator, cache, labels, splits and log-mel features.

The paper (v1 §2.3, Figure 2) classifies the tempo of clips from SynTheory's "tempos" concept, which
is hosted on a model hub that these machines cannot reach. SynTheory builds that concept by writing a
4/4 click-track MIDI file per (tempo, click timbre), rendering ~20 s of it with a General MIDI
soundfont, and cutting 4 s windows at random start offsets. We do the same here:

    161 integer tempos (50..210 BPM) x 5 percussive timbres x 5 random offsets = 4,025 clips,

rendered from MIDI note events with the GM soundfont that `pretty_midi` ships (TimGM6mb.sf2) through
`tinysoundfont` (no system library needed), mono, 16 kHz, 4 s. The five timbres are SynTheory's
click configurations (GM drum-kit side stick, two woodblocks, taiko, synth drum; accented downbeat).

A second renderer, `numpy`, synthesises a damped-sine-plus-noise hit per MIDI note with numpy alone.
It is not SynTheory's sound; it exists so that tests and the CPU smoke run need nothing exotic.

    python data.py                      # build (or verify) the full dataset and its features
    python data.py --check-tempo 200    # librosa's tempo estimate on 200 random clips

The cache lives in `<data-dir>/<dataset name>/` (audio.npy int16, clips.csv, manifest.json with the
parameters, counts and SHA-256 checksums); a second call reuses it, a corrupted one is rebuilt.
Features go to `<data-dir>/features/<name>.npz` (+ .json manifest): the only file training needs.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import os
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from scaffold import Field, parse_config, write_json

HERE = Path(__file__).resolve().parent
DEFAULT_DATA_DIR = HERE / "data"


# ------------------------------------------------------------------------------------------------
# what to generate
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Timbre:
    """One click sound, as SynTheory's ClickTrackConfig: a GM program (or the drum kit) and the
    MIDI notes/velocities of the accented downbeat and the other beats."""
    name: str
    program: int          # GM program number, 0-based (ignored for the drum kit)
    is_drum_kit: bool     # MIDI channel 10: notes select percussion sounds
    downbeat_note: int
    offbeat_note: int
    downbeat_velocity: int = 100
    offbeat_velocity: int = 75


# SynTheory's five click configurations (dataset/synthetic/metronome_configs.py in its repository).
TIMBRES = (
    Timbre("drum_click", 0, True, 37, 31),        # SheetSage click: side stick / sticks
    Timbre("woodblock_dark", 115, False, 37, 31),
    Timbre("woodblock_light", 115, False, 52, 48),
    Timbre("taiko", 116, False, 52, 48),
    Timbre("synth_drum", 118, False, 52, 48),
)


@dataclass(frozen=True)
class DatasetParams:
    bpm_min: int = 50
    bpm_max: int = 210
    bpm_step: int = 1               # >1 only for tiny smoke sets
    num_timbres: int = 5            # the first k of TIMBRES
    num_offsets: int = 5            # random start offsets per (tempo, timbre)
    clip_seconds: float = 4.0
    track_seconds: float = 20.0     # length of the rendered click track the clips are cut from
    sample_rate: int = 16000
    seed: int = 0                   # draws the start offsets
    renderer: str = "sf2"           # sf2 (GM soundfont via tinysoundfont) | numpy

    def validate(self) -> None:
        if not 1 <= self.bpm_min <= self.bpm_max:
            raise ValueError(f"need 1 <= bpm_min <= bpm_max, got {self.bpm_min}..{self.bpm_max}")
        if not 1 <= self.num_timbres <= len(TIMBRES):
            raise ValueError(f"num_timbres must be in 1..{len(TIMBRES)}, got {self.num_timbres}")
        if self.num_offsets < 1 or self.bpm_step < 1:
            raise ValueError("num_offsets and bpm_step must be >= 1")
        if not 0 < self.clip_seconds < self.track_seconds:
            raise ValueError(f"need 0 < clip_seconds < track_seconds, got {self.clip_seconds}, {self.track_seconds}")
        if self.renderer not in ("sf2", "numpy"):
            raise ValueError(f"renderer must be 'sf2' or 'numpy', got {self.renderer!r}")

    @property
    def bpms(self) -> list[int]:
        return list(range(self.bpm_min, self.bpm_max + 1, self.bpm_step))

    @property
    def num_clips(self) -> int:
        return len(self.bpms) * self.num_timbres * self.num_offsets

    @property
    def name(self) -> str:
        """Folder name: readable for the default set, plus a short hash of all parameters."""
        digest = hashlib.sha256(json.dumps(dataclasses.asdict(self), sort_keys=True).encode()).hexdigest()[:8]
        return f"tempos-{self.renderer}-{self.num_clips}clips-{digest}"


@dataclass(frozen=True)
class FeatureParams:
    n_fft: int = 512
    hop_length: int = 250           # 15.6 ms at 16 kHz
    n_mels: int = 32                # tempo needs time resolution more than frequency detail
    fmin: float = 20.0
    top_db: float = 80.0            # floor each clip at (its max - top_db) dB
    num_frames: int = 256           # crop to a multiple of the patch size


def resolve_renderer(renderer: str) -> str:
    """'auto' -> 'sf2' when tinysoundfont is importable, else 'numpy' (with a warning)."""
    if renderer != "auto":
        return renderer
    try:
        import tinysoundfont  # noqa: F401
        import pretty_midi  # noqa: F401
        return "sf2"
    except ImportError:
        warnings.warn("tinysoundfont/pretty_midi not installed: using the numpy click renderer "
                      "(install with `pip install pretty_midi && pip install --no-deps tinysoundfont`)")
        return "numpy"


# ------------------------------------------------------------------------------------------------
# labels and splits
# ------------------------------------------------------------------------------------------------

def num_buckets(bin_size: int, bpm_min: int = 50, bpm_max: int = 210) -> int:
    """Contiguous BPM buckets [bpm_min, bpm_min+bin_size-1], ...: 5 -> 33, 7 -> 23, 15 -> 11."""
    if bin_size < 1:
        raise ValueError(f"bin_size must be >= 1, got {bin_size}")
    return math.ceil((bpm_max - bpm_min + 1) / bin_size)


def bucket(bpm, bin_size: int, bpm_min: int = 50):
    """Class index of a BPM (the reference's (bpm - min) // bin_size); works on ints and arrays."""
    return (np.asarray(bpm) - bpm_min) // bin_size


def bucket_centers(bin_size: int, bpm_min: int = 50, bpm_max: int = 210) -> np.ndarray:
    """Mean BPM of the integer tempos in each bucket (the last bucket may be partial: 210 alone)."""
    bpms = np.arange(bpm_min, bpm_max + 1)
    labels = bucket(bpms, bin_size, bpm_min)
    return np.array([bpms[labels == k].mean() for k in range(num_buckets(bin_size, bpm_min, bpm_max))])


def split_indices(bpms: np.ndarray, split: str, seed: int = 42, test_fraction: float = 0.3):
    """(train, test) clip indices.

    standard:   shuffle with `seed`, last 30% is test (as the reference's shuffle + 70/30 split;
                the permutation itself differs from the hub library's).
    odds_evens: odd BPMs train, even BPMs test (the reference's alternative split).
    """
    n = len(bpms)
    if split == "standard":
        order = np.random.default_rng(seed).permutation(n)
        n_test = math.ceil(test_fraction * n)
        return np.sort(order[: n - n_test]), np.sort(order[n - n_test:])
    if split == "odds_evens":
        odd = np.asarray(bpms) % 2 == 1
        return np.flatnonzero(odd), np.flatnonzero(~odd)
    raise ValueError(f"split must be 'standard' or 'odds_evens', got {split!r}")


def validation_split(train_idx, fraction: float = 0.15, seed: int = 0):
    """(fit, val): a seeded random `fraction` of the TRAIN indices held out for model selection
    (N, schedule); the test indices are never involved. Both sorted, disjoint, union = train_idx."""
    train_idx = np.asarray(train_idx)
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    order = np.random.default_rng([seed, len(train_idx)]).permutation(len(train_idx))
    n_val = max(1, int(round(fraction * len(train_idx))))
    return np.sort(train_idx[order[n_val:]]), np.sort(train_idx[order[:n_val]])


# ------------------------------------------------------------------------------------------------
# rendering: MIDI click track -> waveform
# ------------------------------------------------------------------------------------------------

def click_events(bpm: int, seconds: float, timbre: Timbre) -> list[tuple[float, int, int]]:
    """(onset seconds, MIDI note, velocity) of every beat in [0, seconds); bar = 4 beats, beat 1 accented.
    Each note is held for one beat, as in SynTheory's click track."""
    beat = 60.0 / bpm
    events = []
    for b in range(math.ceil(seconds / beat)):
        down = b % 4 == 0
        events.append((b * beat,
                       timbre.downbeat_note if down else timbre.offbeat_note,
                       timbre.downbeat_velocity if down else timbre.offbeat_velocity))
    return events


def soundfont_path() -> Path:
    import pretty_midi
    return Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"


_SOUNDFONT_BYTES = None  # per process: read the 6 MB soundfont once


def render_sf2(bpm: int, timbre: Timbre, seconds: float, sr: int) -> np.ndarray:
    """Render the click track with the GM soundfont: float32 mono (seconds*sr,)."""
    global _SOUNDFONT_BYTES
    try:
        import tinysoundfont
    except ImportError:
        raise SystemExit("error: the sf2 renderer needs tinysoundfont and pretty_midi: "
                         "`pip install pretty_midi && pip install --no-deps tinysoundfont` (or use --renderer numpy)")

    if _SOUNDFONT_BYTES is None:
        _SOUNDFONT_BYTES = soundfont_path().read_bytes()
    synth = tinysoundfont.Synth(samplerate=sr)  # fresh synth: no voice rings over from the last track
    sfid = synth.sfload(_SOUNDFONT_BYTES)
    channel = 9 if timbre.is_drum_kit else 2
    if timbre.is_drum_kit:
        synth.program_select(channel, sfid, 128, 0, True)  # bank 128 = the GM drum kits
    else:
        synth.program_select(channel, sfid, 0, timbre.program)

    n = int(round(seconds * sr))
    out = np.zeros((n, 2), dtype=np.float32)
    pos, held = 0, None
    for onset, note, velocity in click_events(bpm, seconds, timbre):
        start = int(round(onset * sr))
        if start > pos:  # render up to the next event, sample-accurately
            out[pos:start] = np.frombuffer(synth.generate(start - pos), dtype=np.float32).reshape(-1, 2)
            pos = start
        if held is not None:
            synth.noteoff(channel, held)
        synth.noteon(channel, note, velocity)
        held = note
    if pos < n:
        out[pos:] = np.frombuffer(synth.generate(n - pos), dtype=np.float32).reshape(-1, 2)
    return out.mean(axis=1)


# numpy stand-in sounds: (frequency multiplier of the MIDI note's pitch, decay seconds, noise share)
_NUMPY_SOUNDS = {"drum_click": (16.0, 0.015, 0.7), "woodblock_dark": (8.0, 0.04, 0.2),
                 "woodblock_light": (8.0, 0.03, 0.2), "taiko": (1.0, 0.25, 0.3),
                 "synth_drum": (2.0, 0.15, 0.1)}


def render_numpy(bpm: int, timbre: Timbre, seconds: float, sr: int) -> np.ndarray:
    """Pure-numpy click track: a damped sine (pitch from the MIDI note) plus a noise burst per beat."""
    mult, decay, noise_share = _NUMPY_SOUNDS[timbre.name]
    n = int(round(seconds * sr))
    out = np.zeros(n, dtype=np.float64)
    t = np.arange(int(6 * decay * sr)) / sr
    noise = np.random.default_rng(timbre.program + 1000 * timbre.downbeat_note).standard_normal(len(t))
    for onset, note, velocity in click_events(bpm, seconds, timbre):
        freq = min(440.0 * 2 ** ((note - 69) / 12) * mult, 0.45 * sr)
        hit = ((1 - noise_share) * np.sin(2 * np.pi * freq * t) + noise_share * noise) * np.exp(-t / decay)
        start = int(round(onset * sr))
        k = min(len(hit), n - start)
        out[start:start + k] += 0.5 * velocity / 127 * hit[:k]
    return out.astype(np.float32)


def _render_track(args) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Worker: one (tempo, timbre) track -> its clips (num_offsets, clip_len) int16 and offsets (s)."""
    p, bpm, t_idx = args
    timbre = TIMBRES[t_idx]
    render = render_sf2 if p.renderer == "sf2" else render_numpy
    track = render(bpm, timbre, p.track_seconds, p.sample_rate)
    # Offsets depend only on (seed, bpm, timbre): any worker order gives the same clips.
    offsets = np.random.default_rng([p.seed, bpm, t_idx]).uniform(
        0.0, p.track_seconds - p.clip_seconds, size=p.num_offsets)
    clip_len = int(round(p.clip_seconds * p.sample_rate))
    starts = np.round(offsets * p.sample_rate).astype(int)
    clips = np.stack([track[s:s + clip_len] for s in starts])
    clips = np.clip(np.round(clips * 32767.0), -32768, 32767).astype(np.int16)
    return bpm, t_idx, clips, offsets


# ------------------------------------------------------------------------------------------------
# the cache
# ------------------------------------------------------------------------------------------------

def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _cache_problem(folder: Path, p: DatasetParams) -> str | None:
    """Why the cached dataset in `folder` cannot be used (None if it can)."""
    manifest_path = folder / "manifest.json"
    if not manifest_path.exists():
        return "no manifest"
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError:
        return "unreadable manifest"
    if manifest.get("params") != dataclasses.asdict(p):
        return "parameters differ"
    for name in ("audio.npy", "clips.csv"):
        if not (folder / name).exists():
            return f"{name} missing"
        if sha256_file(folder / name) != manifest["sha256"].get(name):
            return f"{name} checksum mismatch"
    return None


def build_dataset(p: DatasetParams, data_dir: Path = DEFAULT_DATA_DIR, workers: int | None = None,
                  progress: bool = True) -> Path:
    """Render the dataset into `data_dir/p.name` unless a valid cache is there; return the folder."""
    p.validate()
    folder = Path(data_dir) / p.name
    problem = _cache_problem(folder, p)
    if problem is None:
        return folder
    if problem != "no manifest" or folder.exists():
        print(f"dataset cache {folder}: {problem}; rebuilding", file=sys.stderr)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").unlink(missing_ok=True)  # invalid until the end of this function

    start = time.time()
    clip_len = int(round(p.clip_seconds * p.sample_rate))
    audio = np.lib.format.open_memmap(folder / "audio.npy", mode="w+", dtype=np.int16,
                                      shape=(p.num_clips, clip_len))
    tasks = [(p, bpm, t) for bpm in p.bpms for t in range(p.num_timbres)]
    row_of = {(bpm, t): i * p.num_offsets for i, (_, bpm, t) in enumerate(tasks)}
    rows = [None] * p.num_clips
    workers = min(workers or os.cpu_count() or 1, len(tasks))
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        results = pool.map(_render_track, tasks, chunksize=8) if pool else map(_render_track, tasks)
        for bpm, t_idx, clips, offsets in _progress(results, len(tasks), f"render {p.name}", progress):
            first = row_of[(bpm, t_idx)]
            audio[first:first + p.num_offsets] = clips
            for k in range(p.num_offsets):
                rows[first + k] = (first + k, bpm, TIMBRES[t_idx].name, k, f"{offsets[k]:.6f}")
    finally:
        if pool:
            pool.shutdown()
    audio.flush()
    del audio
    with open(folder / "clips.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["index", "bpm", "timbre", "offset_index", "offset_seconds"])
        writer.writerows(rows)

    bpms = np.array([r[1] for r in rows])
    manifest = {
        "params": dataclasses.asdict(p),
        "num_clips": p.num_clips,
        "counts": {"bpms": len(p.bpms), "timbres": [t.name for t in TIMBRES[: p.num_timbres]],
                   "offsets_per_track": p.num_offsets, "clips_per_bpm": int(np.bincount(bpms).max())},
        "audio": {"dtype": "int16", "shape": [p.num_clips, clip_len], "sample_rate": p.sample_rate,
                  "channels": 1},
        "sha256": {"audio.npy": sha256_file(folder / "audio.npy"),
                   "clips.csv": sha256_file(folder / "clips.csv")},
        "soundfont": "pretty_midi/TimGM6mb.sf2" if p.renderer == "sf2" else None,
        "build_seconds": round(time.time() - start, 2),
        "workers": workers,
        "cpu_count": os.cpu_count(),
        "versions": _versions(),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return folder


def _progress(iterable, total, desc, enabled):
    try:
        from tqdm import tqdm
        return tqdm(iterable, total=total, desc=desc, disable=not enabled)
    except ImportError:
        return iterable


def _versions() -> dict:
    out = {"python": sys.version.split()[0], "numpy": np.__version__, "torch": torch.__version__}
    for name in ("tinysoundfont", "pretty_midi", "librosa"):
        try:
            from importlib.metadata import version
            out[name] = version(name)
        except Exception:
            pass
    return out


def load_clips(folder: Path) -> tuple[np.ndarray, dict]:
    """(audio int16 (N, L) memory-mapped, metadata dict of arrays: bpm, timbre, offset_index)."""
    with open(Path(folder) / "clips.csv") as f:
        rows = list(csv.DictReader(f))
    meta = {"bpm": np.array([int(r["bpm"]) for r in rows]),
            "timbre": np.array([r["timbre"] for r in rows]),
            "offset_index": np.array([int(r["offset_index"]) for r in rows])}
    return np.load(Path(folder) / "audio.npy", mmap_mode="r"), meta


# ------------------------------------------------------------------------------------------------
# features: log-mel spectrograms in torch (no librosa needed)
# ------------------------------------------------------------------------------------------------

def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> torch.Tensor:
    """Triangular filters on the HTK mel scale, area-normalised (Slaney style): (n_mels, n_fft//2+1)."""
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    lower = (freqs[None, :] - edges[:-2, None]) / (edges[1:-1, None] - edges[:-2, None])
    upper = (edges[2:, None] - freqs[None, :]) / (edges[2:, None] - edges[1:-1, None])
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return torch.tensor(weights, dtype=torch.float32)


def log_mel(audio: np.ndarray, sr: int, f: FeatureParams, batch: int = 256) -> np.ndarray:
    """int16 or float audio (N, L) -> log-mel dB (N, n_mels, num_frames) float16."""
    fb = mel_filterbank(sr, f.n_fft, f.n_mels, f.fmin, sr / 2)
    window = torch.hann_window(f.n_fft)
    scale = 1 / 32768.0 if np.asarray(audio[:1]).dtype == np.int16 else 1.0
    out = []
    for i in range(0, len(audio), batch):
        x = torch.tensor(np.asarray(audio[i:i + batch]), dtype=torch.float32) * scale
        spec = torch.stft(x, f.n_fft, f.hop_length, window=window, center=True, return_complex=True)
        mel = fb @ spec.abs().square()                               # (B, n_mels, frames)
        db = 10.0 * torch.log10(mel.clamp_min(1e-10))
        db = torch.maximum(db, db.amax(dim=(1, 2), keepdim=True) - f.top_db)
        out.append(db[..., : f.num_frames].half().numpy())
    feats = np.concatenate(out)
    if feats.shape[-1] < f.num_frames:
        raise ValueError(f"clips give {feats.shape[-1]} frames < num_frames={f.num_frames}: "
                         f"lower num_frames or hop_length")
    return feats


def build_features(p: DatasetParams, f: FeatureParams, data_dir: Path = DEFAULT_DATA_DIR,
                   workers: int | None = None, progress: bool = True) -> Path:
    """Cached features file `<data_dir>/features/<name>.npz` (built, with the dataset, if needed)."""
    digest = hashlib.sha256(json.dumps([dataclasses.asdict(p), dataclasses.asdict(f)],
                                       sort_keys=True).encode()).hexdigest()[:8]
    path = Path(data_dir) / "features" / f"{p.name}-logmel{f.n_mels}x{f.num_frames}-{digest}.npz"
    side = path.with_suffix(".json")
    if path.exists() and side.exists():
        info = json.loads(side.read_text())
        if info.get("sha256") == sha256_file(path):
            return path
        print(f"features cache {path}: checksum mismatch; rebuilding", file=sys.stderr)
    folder = build_dataset(p, data_dir, workers, progress)
    audio, meta = load_clips(folder)
    start = time.time()
    feats = log_mel(audio, p.sample_rate, f)
    path.parent.mkdir(parents=True, exist_ok=True)
    timbre_names = [t.name for t in TIMBRES]
    np.savez_compressed(path, logmel=feats, bpm=meta["bpm"].astype(np.int16),
                        timbre=np.array([timbre_names.index(t) for t in meta["timbre"]], dtype=np.int8),
                        offset_index=meta["offset_index"].astype(np.int8))
    manifest = json.loads((folder / "manifest.json").read_text())
    side.write_text(json.dumps({
        "dataset_params": dataclasses.asdict(p), "feature_params": dataclasses.asdict(f),
        "dataset_sha256": manifest["sha256"], "shape": list(feats.shape), "timbres": timbre_names,
        "seconds": round(time.time() - start, 2), "sha256": sha256_file(path)}, indent=2))
    return path


def load_features(path: Path) -> dict:
    """dict with logmel (N, n_mels, T) float16, bpm, timbre, offset_index, and `info` (the manifest)."""
    path = Path(path)
    with np.load(path) as z:
        out = {k: z[k] for k in z.files}
    out["info"] = json.loads(path.with_suffix(".json").read_text())
    return out


# ------------------------------------------------------------------------------------------------
# librosa's tempo estimate as a sanity check of the rendered tempos
# ------------------------------------------------------------------------------------------------

def check_tempo(folder: Path, num: int, seed: int = 0, tolerance: float = 0.04) -> dict:
    """librosa.feature.tempo on `num` random clips vs the labelled BPM.

    exact: within `tolerance` (relative, MIREX's 4%) of the label; octave: within tolerance of
    label x {1/3, 1/2, 1, 2, 3} (librosa's prior around 120 BPM makes octave errors expected).
    """
    import librosa

    audio, meta = load_clips(folder)
    sr = json.loads((Path(folder) / "manifest.json").read_text())["params"]["sample_rate"]
    idx = np.sort(np.random.default_rng(seed).choice(len(audio), size=min(num, len(audio)), replace=False))
    rows = []
    for i in idx:
        est = float(np.atleast_1d(librosa.feature.tempo(y=audio[i].astype(np.float32) / 32768.0, sr=sr))[0])
        bpm = int(meta["bpm"][i])
        ratios = [r for r in (1 / 3, 1 / 2, 1, 2, 3) if abs(est - r * bpm) <= tolerance * r * bpm]
        rows.append({"index": int(i), "bpm": bpm, "timbre": str(meta["timbre"][i]), "estimate": round(est, 2),
                     "exact": 1 in ratios, "octave": bool(ratios)})
    by_timbre = {}
    for name in sorted(set(r["timbre"] for r in rows)):
        sub = [r for r in rows if r["timbre"] == name]
        by_timbre[name] = {"n": len(sub), "exact": np.mean([r["exact"] for r in sub]).item(),
                           "octave": np.mean([r["octave"] for r in sub]).item()}
    return {"n": len(rows), "tolerance": tolerance,
            "exact_rate": float(np.mean([r["exact"] for r in rows])),
            "octave_tolerant_rate": float(np.mean([r["octave"] for r in rows])),
            "by_timbre": by_timbre, "librosa": _versions().get("librosa"), "clips": rows}


@dataclass
class Config:
    data_dir: str = Field(str(DEFAULT_DATA_DIR), "where the dataset and its features are cached")
    renderer: str = Field("auto", "sf2 (GM soundfont) | numpy | auto (sf2 if installed)",
                          choices=("auto", "sf2", "numpy"))
    workers: int = Field(0, "render processes (0: all cores)", low=0)
    seed: int = Field(0, "draws the clip start offsets", low=0)
    check_tempo: int = Field(0, "run librosa's tempo estimate on N random clips and print the agreement", low=0)
    check_out: str = Field("", "write the tempo check here (json)")
    record: str = Field("", "write the dataset and feature manifests and this call's wall time here (json)")


def main(argv=None) -> None:
    cfg = parse_config(Config, argv, description=__doc__)
    p = DatasetParams(renderer=resolve_renderer(cfg.renderer), seed=cfg.seed)
    start = time.time()
    features = build_features(p, FeatureParams(), Path(cfg.data_dir), cfg.workers or None)
    folder = Path(cfg.data_dir) / p.name
    manifest = json.loads((folder / "manifest.json").read_text())
    print(f"dataset  {folder}  ({manifest['num_clips']} clips, built in {manifest['build_seconds']} s "
          f"with {manifest['workers']} workers on {manifest['cpu_count']} cores)")
    seconds = time.time() - start
    print(f"features {features}  ({features.stat().st_size / 2**20:.1f} MiB); this call {seconds:.1f} s")
    if cfg.record:
        write_json(cfg.record, {
            "call_seconds": round(seconds, 1), "note": "includes rendering only if no valid cache existed",
            "dataset_manifest": manifest, "features_file": features.name,
            "features_mib": round(features.stat().st_size / 2**20, 1),
            "features_manifest": json.loads(features.with_suffix(".json").read_text())}, indent=2)
    if cfg.check_tempo:
        result = check_tempo(folder, cfg.check_tempo)
        print(f"librosa tempo on {result['n']} clips: {100 * result['exact_rate']:.1f}% within 4% of the label, "
              f"{100 * result['octave_tolerant_rate']:.1f}% allowing x1/3, x1/2, x2, x3")
        for name, r in result["by_timbre"].items():
            print(f"  {name:16s} n={r['n']:3d}  exact {100 * r['exact']:5.1f}%  octave-tolerant {100 * r['octave']:5.1f}%")
        if cfg.check_out:
            write_json(cfg.check_out, result, indent=2)


if __name__ == "__main__":
    main()
