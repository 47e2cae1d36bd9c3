"""The ffmpeg binary, and encoding samples to mp3 with it (the demo's
generated tracks, test fixtures and benchmarks all make their mp3s here)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a download worker (no numpy installed) imports ffmpeg_path
    import numpy as np


@lru_cache(maxsize=4)
def ffmpeg_path(configured: str = "") -> str:
    """The ffmpeg binary: the configured one, else imageio-ffmpeg's (installs
    with the project), else ``ffmpeg`` on PATH."""
    if configured:
        return configured
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        found = shutil.which("ffmpeg")
        if not found:
            raise RuntimeError("no ffmpeg: install imageio-ffmpeg or put ffmpeg on PATH") from None
        return found


def encode_mp3(
    path: str | Path,
    samples: np.ndarray,
    sample_rate: int,
    *,
    bitrate: str = "64k",
    extra_args: Sequence[str] = (),
) -> Path:
    """Encode float samples, (frames,) or (frames, channels) in [-1, 1], to
    an mp3 at ``path`` with LAME; ``extra_args`` go before the output name."""
    import numpy as np

    pcm = np.ascontiguousarray(samples, dtype=np.float32)
    channels = 1 if pcm.ndim == 1 else pcm.shape[1]
    subprocess.run(
        [ffmpeg_path(), "-v", "error", "-y", "-f", "f32le", "-ar", str(sample_rate), "-ac", str(channels),
         "-i", "-", "-codec:a", "libmp3lame", "-b:a", bitrate, *extra_args, str(path)],
        input=pcm.tobytes(), check=True,
    )
    return Path(path)
