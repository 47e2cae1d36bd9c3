"""CloudFormation building blocks: intrinsic functions and a YAML writer.

The template is built as plain dicts (``template.py``); intrinsics are small
objects that the writer prints in CloudFormation's short form (``!Ref X``,
``!GetAtt A.B``, ``!Sub "..."``, ``!If [...]``), multi-line strings as
literal blocks, keys in insertion order -- so the same registry always gives
byte-identical YAML. ``resolve`` evaluates a loaded template's functions
against known values (the emulator fills in what moto's CloudFormation
skips; the least-privilege test resolves the roles' policies).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml


@dataclass(frozen=True)
class Intrinsic:
    """``!tag value``: value is a string (scalar form) or a list (sequence form)."""

    tag: str
    value: Any


def ref(name: str) -> Intrinsic:
    return Intrinsic("!Ref", name)


def get_att(resource: str, attribute: str) -> Intrinsic:
    return Intrinsic("!GetAtt", f"{resource}.{attribute}")


def sub(text: str) -> Intrinsic:
    return Intrinsic("!Sub", text)


def if_(condition: str, when_true: Any, when_false: Any) -> Intrinsic:
    return Intrinsic("!If", [condition, when_true, when_false])


def equals(a: Any, b: Any) -> Intrinsic:
    return Intrinsic("!Equals", [a, b])


def not_(condition: Any) -> Intrinsic:
    return Intrinsic("!Not", [condition])


def and_(*conditions: Any) -> Intrinsic:
    return Intrinsic("!And", list(conditions))


def select(index: int, items: Any) -> Intrinsic:
    return Intrinsic("!Select", [index, items])


NO_VALUE = ref("AWS::NoValue")


# --- YAML ---------------------------------------------------------------------------
class _Dumper(yaml.SafeDumper):
    """SafeDumper that indents lists under their key, writes ``!Ref X``
    unquoted and never uses anchors (CloudFormation style)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> Any:
        return super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def choose_scalar_style(self) -> str:
        event: Any = self.event
        if isinstance(event, yaml.ScalarEvent) and event.tag in ("!Ref", "!GetAtt") and not event.style:
            analysis: Any = getattr(self, "analysis", None)  # the emitter's cache of this scalar's analysis
            if analysis is None:
                analysis = self.analysis = self.analyze_scalar(event.value)
            if (self.flow_level and analysis.allow_flow_plain) or (not self.flow_level and analysis.allow_block_plain):
                return ""
        return str(super().choose_scalar_style())


def _intrinsic(dumper: yaml.SafeDumper, node: Intrinsic) -> yaml.Node:
    if isinstance(node.value, list):
        return dumper.represent_sequence(node.tag, node.value, flow_style=_flat(node.value))
    return dumper.represent_scalar(node.tag, node.value, style='"' if node.tag == "!Sub" else None)


def _flat(items: list[Any]) -> bool:
    """Short sequences of scalars and intrinsics stay on one line."""
    return all(isinstance(i, str | int | float | bool | Intrinsic) and not isinstance(i, dict) for i in items) and all(
        not isinstance(i, Intrinsic) or not isinstance(i.value, list) or _flat(i.value) for i in items
    )


def _text(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    if "\n" in text:
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", text)


_Dumper.add_representer(Intrinsic, _intrinsic)
_Dumper.add_representer(str, _text)


def dump(document: Mapping[str, Any], comments: Mapping[str, str] | None = None) -> str:
    """The document as YAML; ``comments`` puts ``# text`` lines above the
    top-level resource of that logical id (YAML itself has no comments)."""
    text = yaml.dump(dict(document), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120,
                     allow_unicode=True)
    if not comments:
        return text
    out: list[str] = []
    for line in text.splitlines():
        match = re.fullmatch(r"  ([A-Za-z0-9]+):", line)
        if match and match.group(1) in comments:
            out.extend(f"  # {c}".rstrip() for c in comments[match.group(1)].splitlines())
        out.append(line)
    return "\n".join(out) + "\n"


# --- evaluation ------------------------------------------------------------------------
class _Removed:
    """What ``!Ref AWS::NoValue`` evaluates to: dropped from its list or map."""


REMOVED = _Removed()


def resolve(value: Any, lookup: Callable[[str], Any], get_attr: Callable[[str, str], Any],
            conditions: Mapping[str, bool] | None = None) -> Any:
    """A loaded template's ``value`` (long form: ``{"Ref": x}``,
    ``{"Fn::GetAtt": [r, a]}``, ``{"Fn::Sub": s}``, ``{"Fn::Select": [i, l]}``,
    ``{"Fn::If": [c, a, b]}``) with those functions evaluated: ``lookup(name)``
    answers refs and ``${name}``, ``get_attr(resource, attribute)`` answers
    ``Fn::GetAtt`` and ``${resource.attribute}``, ``conditions`` the
    conditions ``Fn::If`` names; ``AWS::NoValue`` removes the entry."""

    def again(v: Any) -> Any:
        return resolve(v, lookup, get_attr, conditions)

    if isinstance(value, dict):
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return REMOVED if arg == "AWS::NoValue" else lookup(str(arg))
            if key == "Fn::GetAtt":
                resource, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return get_attr(str(resource), str(attribute))
            if key == "Fn::Sub":
                if not isinstance(arg, str):
                    raise ValueError("Fn::Sub with a variable map is not supported here")

                def one(m: re.Match[str]) -> str:
                    name = m.group(1)
                    if "." in name and not name.startswith("AWS::"):
                        resource, _, attribute = name.partition(".")
                        return str(get_attr(resource, attribute))
                    return str(lookup(name))

                return re.sub(r"\$\{([A-Za-z0-9:.]+)\}", one, arg)
            if key == "Fn::Select":
                index, items = arg
                return again(items)[int(index)]
            if key == "Fn::If":
                if conditions is None or arg[0] not in conditions:
                    raise ValueError(f"condition {arg[0]!r} is not known here")
                return again(arg[1] if conditions[arg[0]] else arg[2])
            if key.startswith("Fn::"):
                raise ValueError(f"cannot evaluate {key} here")
        out = {k: again(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not REMOVED}
    if isinstance(value, list):
        return [v for v in (again(v) for v in value) if v is not REMOVED]
    return value
