"""Parameters carried inside the images the pipelines write: PNG tEXt
chunks or a JPEG comment holding JSON. Values are strings so one reader
serves both formats; keys are sorted so a job run twice writes the same
bytes."""

from __future__ import annotations

import io
import json


def number(value: float) -> str:
    """A float as metadata text: 4 decimals at most, no trailing zeros."""
    return f"{value:.4f}".rstrip("0").rstrip(".")


def comment(meta: dict[str, str]) -> str:
    """The JSON a JPEG comment carries (sorted keys: the same bytes every run)."""
    return json.dumps(meta, sort_keys=True, ensure_ascii=False)


def read_metadata(image: bytes) -> dict[str, str]:
    """The items of a PNG's tEXt chunks or of a JPEG's JSON comment ({} if none)."""
    from PIL import Image

    with Image.open(io.BytesIO(image)) as img:
        if img.format == "PNG":
            return {str(k): str(v) for k, v in getattr(img, "text", {}).items()}
        found = img.info.get("comment")
    if not found:
        return {}
    try:
        parsed = json.loads(found)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in parsed.items()} if isinstance(parsed, dict) else {}
