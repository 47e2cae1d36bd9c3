"""The mel-window core below the music pipelines: a track's 30 s mel
windows (``dsp``, ``kernels``, ``mpg123``), their image metadata
(``imagemeta``), the parameters and settings they are made with
(``params``, ``settings``), the ``jobs_specto``/``status_specto`` models
(``models``) and the guarded computation and upload both paths run
(``compute``).

Two pipelines make these windows -- ``spectrogram`` (from ``audio/*.mp3``
in S3) and ``download`` when fused (from the audio on hand) -- and neither
imports the other: what they share lives here, below both, and imports no
pipeline (``[tool.importlinter]`` in pyproject.toml holds that)."""
