"""Does yt-dlp see a JavaScript runtime? Asked the way yt-dlp itself asks.

Since yt-dlp 2025.11.12 YouTube needs an external JS runtime to solve the
player's "n"/signature challenges (yt-dlp issue #15012, wiki "EJS"):
without one, yt-dlp falls back to its JS-less clients, "some formats may be
missing", and a download ends in "Requested format is not available".
yt-dlp decides in ``YoutubeIE._get_requested_clients``
(``yt_dlp/extractor/youtube/_video.py``)::

    js_runtime_available = any(p.is_available() for p in self._jsc_director.providers.values())

where each provider (Deno, Node, Bun, QuickJS) is available when the
runtime the ``js_runtimes`` option enables (default ``{'deno': {}}``) is
found -- in the Python scripts folder first (a venv's ``bin``, where the
``deno`` wheel puts its binary), then on ``PATH`` -- and is a supported
version (``yt_dlp/utils/_jsruntime.py``). ``seen_runtime`` builds the same
director for a ``YoutubeDL`` with the worker's own ``js_runtimes`` option
and asks the same question; nothing is fetched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...runtime.preflight import ConfigError
from ...settings import Settings
from .settings import MusicSettings


class JsRuntimeMissing(ConfigError):
    """A download or search worker whose yt-dlp sees no JS runtime: a
    configuration mistake, so the worker does not start (pre-flight)."""


@dataclass(frozen=True)
class JsRuntime:
    name: str
    version: str
    path: str
    #: Version of the EJS solver scripts package (``yt-dlp-ejs``), "" when
    #: yt-dlp would use its own bundled copy.
    ejs: str = ""

    def describe(self) -> str:
        ejs = f", EJS scripts {self.ejs}" if self.ejs else ", yt-dlp's bundled EJS scripts"
        return f"{self.name} {self.version} ({self.path}{ejs})"


def js_runtimes_option(entries: list[str]) -> dict[str, dict[str, Any]]:
    """``MusicSettings.js_runtimes`` (``RUNTIME[:PATH]`` entries, yt-dlp's
    ``--js-runtimes`` syntax) as yt-dlp's ``js_runtimes`` option, parsed as
    ``yt_dlp/__init__.py`` parses the command line."""
    out: dict[str, dict[str, Any]] = {}
    for entry in entries:
        name, _, path = entry.partition(":")
        out[name.strip().lower()] = {"path": path} if path else {}
    return out


def seen_runtime(config: MusicSettings) -> JsRuntime | None:
    """The JS runtime yt-dlp's YouTube extractor would use with these
    settings, or None when it would fall back to its JS-less clients."""
    import yt_dlp
    from yt_dlp.dependencies import yt_dlp_ejs
    from yt_dlp.extractor.youtube.jsc._director import initialize_jsc_director

    params = {"quiet": True, "no_warnings": True, "cachedir": False,
              "js_runtimes": js_runtimes_option(config.js_runtimes)}
    with yt_dlp.YoutubeDL(params) as ydl:
        director = initialize_jsc_director(ydl.get_info_extractor("Youtube"))
        for provider in director.providers.values():
            if provider.is_available():
                info = getattr(provider, "runtime_info", None)
                return JsRuntime(
                    name=getattr(info, "name", provider.PROVIDER_NAME),
                    version=getattr(info, "version", "unknown"),
                    path=getattr(info, "path", ""),
                    ejs=str(getattr(yt_dlp_ejs, "version", "")) if yt_dlp_ejs is not None else "",
                )
    return None


def check_js_runtime(config: MusicSettings) -> JsRuntime | None:
    """Raise ``JsRuntimeMissing`` (one line: what and how to fix it) unless
    yt-dlp sees a runtime; None when the check is turned off."""
    if not config.require_js_runtime:
        return None
    runtime = seen_runtime(config)
    if runtime is None:
        wanted = ", ".join(config.js_runtimes) or "none"
        raise JsRuntimeMissing(
            f"yt-dlp sees no JavaScript runtime (SPECFLEET_MUSIC_JS_RUNTIMES={wanted}): YouTube downloads would "
            "lose their formats",
            "install specfleet[music] (brings the deno wheel and yt-dlp-ejs) or point SPECFLEET_MUSIC_JS_RUNTIMES "
            "at one, e.g. '[\"deno:/usr/local/bin/deno\"]'",
        )
    return runtime


def preflight_js_runtime(_settings: Settings, config: MusicSettings) -> None:
    """The download worker's pre-flight check (``PipelineSpec.preflight``)."""
    check_js_runtime(config)


def preflight_search_js_runtime(_settings: Settings, config: MusicSettings) -> None:
    """Search's pre-flight check: only its yt-dlp backend needs the runtime."""
    if config.search_backend == "ytdlp":
        check_js_runtime(config)
