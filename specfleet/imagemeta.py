"""Parameters carried inside the images the pipelines write: PNG tEXt
chunks or a JPEG comment holding JSON. Values are strings so one reader
serves both formats; keys are sorted so a job run twice writes the same
bytes."""

from __future__ import annotations

import io
import json
from typing import Any

from pydantic import BaseModel


def number(value: float) -> str:
    """A float as metadata text: 4 decimals at most, no trailing zeros."""
    return f"{value:.4f}".rstrip("0").rstrip(".")


def text(value: object) -> str:
    """A parameter's value as metadata text (tiny floats such as ``amin`` in ``g`` form)."""
    if isinstance(value, float):
        return f"{value:g}" if value and abs(value) < 1e-4 else number(value)
    return str(value)


def image_keys(model: type[BaseModel]) -> dict[str, str]:
    """``{parameter: metadata key}`` of the parameters a pipeline's
    declaration marks for its images (``Field(json_schema_extra={"image": key})``)."""
    out = {}
    for name, field in model.model_fields.items():
        extra: Any = field.json_schema_extra
        if isinstance(extra, dict) and "image" in extra:
            out[name] = str(extra["image"])
    return out


def declared_items(params: BaseModel) -> dict[str, str]:
    """The marked parameters of ``params`` as metadata items (``image_keys``)."""
    return {key: text(getattr(params, name)) for name, key in image_keys(type(params)).items()}


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
