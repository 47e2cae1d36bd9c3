"""The original music spectrogram worker's own steps, for the benchmarks and
the fidelity tests (one copy; SPEC.md section 2 and "What the original tools
did, exactly"), and the music-like test signal they run on.

``original_window_list`` is the original's window loop, verbatim in logic;
``original_window_samples`` its per-window slice and median floor. The
callers keep their own I/O (ffmpeg to WAV, ``librosa.load``, painting).
"""

from __future__ import annotations

import numpy as np


def music_signal(seconds: float, sample_rate: int = 44100, *, seed: int = 7) -> np.ndarray:
    """``(n, 2)`` float32 stereo: chords that change every 2 s, a beat and
    some noise (music-like spectra), the same for the same arguments."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    roots = 110 * 2 ** (rng.integers(0, 12, size=int(seconds / 2) + 1) / 12)
    f = roots[(t // 2).astype(int)]
    sig = sum(0.15 * np.sin(2 * np.pi * f * k * t) / k for k in (1, 1.5, 2, 3, 4))
    sig = sig + 0.3 * np.exp(-((t % 0.5) * 30)) * rng.standard_normal(t.size) + 0.02 * rng.standard_normal(t.size)
    return np.stack([sig, np.roll(sig, 300)], axis=1).astype(np.float32) * 0.5


def original_window_list(duration: float) -> list[tuple[int, int]]:
    """The original's ``(ini, fin)`` windows for a track of ``duration``
    whole seconds: 30 s every 20 s, the last one ending at the track's end."""
    w_list, act = [], 0
    while True:
        fin = act + 30
        if fin <= duration:
            w_list.append((int(act), int(fin)))
            act += 20
            if act >= duration:
                break
        else:
            w_list.append((int(duration - 30), int(duration)))
            break
    return w_list


def original_window_samples(
    S_dB: np.ndarray, n_samples: int, sr: int, hop: int = 512
) -> list[tuple[int, int, np.ndarray]]:
    """``(ini, fin, sample)`` per window of a track of ``n_samples`` at
    ``sr``: the original's slice of the track's dB array, cells below the
    window's median set to its minimum. The slices
    are views, floored in place as the original's were (an overlapping
    window sees the previous one's floor)."""
    step = hop / sr
    out = []
    for ini, end in original_window_list(np.floor(n_samples / sr)):
        sample = S_dB[:, int(ini / step):int(end / step)]
        sample[np.where(sample < np.median(sample.ravel()))] = np.min(sample.ravel())
        out.append((ini, end, sample))
    return out
