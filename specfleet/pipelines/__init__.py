"""Pipeline registry. Modules load lazily so an echo worker never imports
librosa and a hydrophone worker never imports selenium."""

from __future__ import annotations

from importlib import import_module

from ..runtime.pipeline import Pipeline

#: pipeline name -> "module:attribute" of its ``Pipeline``.
PIPELINES: dict[str, str] = {
    "echo": "specfleet.pipelines.echo:PIPELINE",
    "hydrophone": "specfleet.pipelines.hydrophone.worker:PIPELINE",
    "search": "specfleet.pipelines.music.search:PIPELINE",
    "download": "specfleet.pipelines.music.download:PIPELINE",
    "spectrogram": "specfleet.pipelines.spectrogram.worker:PIPELINE",
}


def get_pipeline(name: str) -> Pipeline:
    try:
        target = PIPELINES[name]
    except KeyError:
        raise KeyError(f"unknown pipeline {name!r}; choose one of {', '.join(PIPELINES)}") from None
    module, attr = target.split(":")
    return getattr(import_module(module), attr)
