"""Device and circuit cards: TOML parameter sets, checked against their model's declaration.

A card is a TOML file with three tables::

    [model]
    name = "vteam"                 # a registered model of this card's kind
    description = "..."            # optional

    [parameters]                   # SI values, every key declared by the model
    r_on = 50.0

    [provenance]                   # where the numbers come from
    source = "Kvatinsky et al., IEEE TCAS-II 62, 786 (2015)"
    doi = "10.1109/TCSII.2015.2433536"   # or url = "..."
    fitted = "k_off, k_on, alpha_off, alpha_on to the Pickett model"
    method = "published fit, taken from Table I"
    residual = "not given by the source"

A model may declare further optional tables (``[variability]``, ``[adc]``, ...).  Every model
declares its parameters (name, unit, range, default) once, in a :class:`ModelSpec` registered
with :func:`register_model`; loading checks every key, type and range against it and fails with
one :class:`CardError` naming the file, the key, the value and what was expected.  Cards are
data: nothing in them is ever executed.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from .errors import CardError
from .model_spec import KINDS, PLAUSIBLE, ModelSpec, Parameter, register_model, registered_models

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "KINDS",
    "PLAUSIBLE",
    "Card",
    "CardRef",
    "ModelSpec",
    "Parameter",
    "card_digest",
    "card_dirs",
    "list_cards",
    "load_card",
    "load_circuit",
    "load_device",
    "register_model",
    "registered_models",
]

MAX_CARD_BYTES = 1 << 20  # 1 MiB: a parameter set is a few kB; refuse anything absurd early
_PROVENANCE_REQUIRED = ("source", "fitted", "method", "residual")
_PROVENANCE_OPTIONAL = ("doi", "url", "notes", "data", "figure", "table", "date", "authors")
_MODEL_KEYS = ("name", "description")


@dataclass(frozen=True)
class Card:
    """A checked card: immutable; ``with_parameters`` returns a checked copy."""

    name: str
    kind: str
    model: str
    parameters: Mapping[str, Any]
    provenance: Mapping[str, Any]
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    description: str = ""
    path: str | None = None

    def __getitem__(self, key: str) -> Any:
        return self.parameters[key]

    @property
    def spec(self) -> ModelSpec:
        return registered_models(self.kind)[self.model]

    def with_parameters(self, **changes: Any) -> Card:
        """A copy with some parameters changed, checked like a card on disk."""
        where = f"{self.name} (with_parameters)"
        params = {**self.parameters, **changes}
        params = {key: list(value) if isinstance(value, tuple) else value for key, value in params.items()}
        checked = _check_table(where, "parameters", params, self.spec.parameters)
        _run_checks(where, self.spec, checked)
        return dataclasses.replace(self, parameters=MappingProxyType(checked))

    def with_section(self, title: str, **changes: Any) -> Card:
        """A copy with keys of the table ``[title]`` changed, checked like a card on disk."""
        declared = self.spec.sections.get(title)
        if declared is None:
            raise CardError(f"{self.name}: model {self.model!r} has no table [{title}]"
                            f"{_suggest(title, list(self.spec.sections))}")
        where = f"{self.name} (with_section)"
        table = {k: list(v) if isinstance(v, tuple) else v
                 for k, v in {**self.sections.get(title, {}), **changes}.items()}
        checked = MappingProxyType(_check_table(where, title, table, declared))
        return dataclasses.replace(self, sections=MappingProxyType({**self.sections, title: checked}))

    def to_toml(self) -> str:
        """The card as TOML text (round-trips through :func:`load_card`)."""
        lines = ["[model]", f"name = {_toml_value(self.model)}"]
        if self.description:
            lines.append(f"description = {_toml_value(self.description)}")
        tables = [("parameters", self.parameters), *self.sections.items(), ("provenance", self.provenance)]
        for title, table in tables:
            lines += ["", f"[{title}]"]
            lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
        return "\n".join(lines) + "\n"


class CardRef(NamedTuple):
    """A card found on disk: its kind, name (file stem) and path."""

    kind: str
    name: str
    path: Path


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _suggest(key: str, valid: list[str], noun: str = "valid keys") -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    if not valid:
        return ""
    return f"; {noun}: {', '.join(sorted(valid))}" if len(valid) <= 12 else ""


def _fail(where: str, message: str) -> CardError:
    return CardError(f"{where}: {message}")


def _check_table(where: str, title: str, table: Any, declared: tuple[Parameter, ...]) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise _fail(where, f"[{title}] must be a table, got {_show(table)}")
    by_name = {p.name: p for p in declared}
    checked: dict[str, Any] = {}
    for key, value in table.items():
        if key not in by_name:
            raise _fail(where, f"unknown key [{title}] {key!r}{_suggest(key, list(by_name))}")
        try:
            checked[key] = by_name[key].check(value)
        except ValueError as exc:
            raise _fail(where, f"[{title}] {key} = {_show(value)}: expected {exc}") from None
    for p in declared:
        if p.name not in checked:
            if p.required:
                raise _fail(where, f"missing key [{title}] {p.name!r}: expected {p.expectation()}")
            checked[p.name] = p.default
    return checked


def _run_checks(where: str, spec: ModelSpec, params: Mapping[str, Any]) -> None:
    for predicate, message in spec.checks:
        if not predicate(params):
            raise _fail(where, f"[parameters] {message}")


def _check_provenance(where: str, table: Any) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise _fail(where, f"[provenance] must be a table, got {_show(table)}")
    valid = list(_PROVENANCE_REQUIRED + _PROVENANCE_OPTIONAL)
    for key, value in table.items():
        if key not in valid:
            raise _fail(where, f"unknown key [provenance] {key!r}{_suggest(key, valid)}")
        number_ok = key == "residual" and isinstance(value, (int, float)) and not isinstance(value, bool)
        if not (isinstance(value, str) and value.strip()) and not number_ok:
            raise _fail(where, f"[provenance] {key} = {_show(value)}: expected a non-empty string")
    for key in _PROVENANCE_REQUIRED:
        if key not in table:
            raise _fail(where, f"missing key [provenance] {key!r}: expected a non-empty string")
    if "doi" not in table and "url" not in table:
        raise _fail(where, "[provenance] needs a 'doi' or a 'url' for its source")
    return dict(table)


def _model_table(data: dict, kind: str, where: str):
    """The checked ``[model]`` table of a parsed card and the spec of the registered ``kind``
    model it names: ``(table, spec)``."""
    models = registered_models(kind)
    model_table = data.get("model")
    if not isinstance(model_table, dict) or "name" not in model_table:
        raise _fail(where, "missing key [model] 'name': expected the name of a registered model")
    for key, value in model_table.items():
        if key not in _MODEL_KEYS:
            raise _fail(where, f"unknown key [model] {key!r}{_suggest(key, list(_MODEL_KEYS))}")
        if not isinstance(value, str):
            raise _fail(where, f"[model] {key} = {_show(value)}: expected a string")
    model = model_table["name"]
    if model not in models:
        raise _fail(where, f"[model] name = {model!r}: not a {kind} model{_suggest(model, list(models), 'known models')}")
    return model_table, models[model]


def card_from_mapping(data: Any, kind: str, where: str, name: str, path: str | None = None) -> Card:
    """Check a parsed card (a mapping as TOML gives it) and return the :class:`Card`."""
    if not isinstance(data, dict):
        raise _fail(where, "a card must be a TOML document of tables")
    model_table, spec = _model_table(data, kind, where)
    spec_sections: Mapping[str, tuple[Parameter, ...]] = spec.sections
    valid_tables = ["model", "parameters", "provenance", *spec_sections]
    for title in data:
        if title not in valid_tables:
            raise _fail(where, f"unknown table [{title}]{_suggest(title, valid_tables)}")
    for title in ("parameters", "provenance"):
        if title not in data:
            raise _fail(where, f"missing table [{title}]")
    params = _check_table(where, "parameters", data["parameters"], spec.parameters)
    _run_checks(where, spec, params)
    sections = {
        title: MappingProxyType(_check_table(where, title, data[title], declared))
        for title, declared in spec_sections.items()
        if title in data
    }
    return Card(
        name=name,
        kind=kind,
        model=model_table["name"],
        parameters=MappingProxyType(params),
        provenance=MappingProxyType(_check_provenance(where, data["provenance"])),
        sections=MappingProxyType(sections),
        description=model_table.get("description", ""),
        path=path,
    )


def parse_card_bytes(raw: bytes, kind: str, where: str, name: str, path: str | None = None) -> Card:
    """Parse and check the bytes of a card file."""
    if len(raw) > MAX_CARD_BYTES:
        raise _fail(where, f"file is {len(raw)} bytes; a card is at most {MAX_CARD_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(where, f"not UTF-8 text (byte {exc.start} is {raw[exc.start]:#04x})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _fail(where, f"not valid TOML: {exc}") from None
    except RecursionError:
        raise _fail(where, "not valid TOML: nested too deeply") from None
    return card_from_mapping(data, kind, where, name, path)


def card_dirs(kind: str) -> list[Path]:
    """Folders searched for cards of a kind: the installed wheel's, then the source tree's."""
    folder = {"device": "devices", "circuit": "circuits"}[kind]
    here = Path(__file__).resolve().parent
    candidates = [here / "_cards" / folder, here.parent / folder]
    return [d for d in candidates if d.is_dir()]


def list_cards(kind: str | None = None) -> list[CardRef]:
    """Cards that load by name, sorted by kind and name (first folder wins on a clash)."""
    kinds = KINDS if kind is None else (_check_kind(kind),)
    refs: list[CardRef] = []
    for k in kinds:
        seen: set[str] = set()
        for folder in card_dirs(k):
            for path in sorted(folder.glob("*.toml")):
                if path.stem not in seen:
                    seen.add(path.stem)
                    refs.append(CardRef(k, path.stem, path))
    return sorted(refs, key=lambda r: (KINDS.index(r.kind), r.name))


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return kind


def load_card(name_or_path: str | Path, kind: str) -> Card:
    """Load a card of ``kind`` by name (a shipped card) or by path (a ``.toml`` file)."""
    _check_kind(kind)
    text = str(name_or_path)
    path = Path(text)
    if path.suffix == ".toml" or path.parent != Path(".") or path.is_file():
        if not path.is_file():
            raise CardError(f"{path}: no such card file")
        return parse_card_bytes(_read_limited(path), kind, str(path), path.stem, str(path))
    refs = {r.name: r for r in list_cards(kind)}
    if text not in refs:
        raise CardError(f"no {kind} card named {text!r}{_suggest(text, list(refs), 'known cards')}")
    ref = refs[text]
    return parse_card_bytes(_read_limited(ref.path), kind, str(ref.path), ref.name, str(ref.path))


def _read_limited(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(MAX_CARD_BYTES + 1)
    except OSError as exc:
        raise CardError(f"{path}: cannot read card ({exc.strerror})") from None


def load_device(name_or_path: str | Path) -> Card:
    """Load a device card (``devices/NAME.toml``) by name or path."""
    return load_card(name_or_path, "device")


def load_circuit(name_or_path: str | Path) -> Card:
    """Load a circuit card (``circuits/NAME.toml``) by name or path."""
    return load_card(name_or_path, "circuit")


def card_digest(card: Card | str | Path, kind: str = "device") -> str:
    """SHA-256 (hex) of what a card says: its kind, model, parameters and optional tables.

    ``card`` is a :class:`Card` or a name or path loaded as ``kind``.  Two cards that load to the
    same numbers have the same digest wherever they lie and whatever their provenance or
    comments say; editing any value changes it.  Cache keys use it for cards named by path
    or name, whose contents can change while the name stays (:mod:`cimphys.cache`).

    Examples
    --------
    >>> card = load_device("nandakumar2019_pcm")
    >>> card_digest(card) == card_digest("nandakumar2019_pcm")
    True
    """
    import hashlib
    import json

    if not isinstance(card, Card):
        card = load_card(card, kind)
    content = {"kind": card.kind, "model": card.model, "parameters": dict(card.parameters),
               "sections": {title: dict(table) for title, table in card.sections.items()}}
    text = json.dumps(content, sort_keys=True, allow_nan=True, default=_digest_value)
    return hashlib.sha256(text.encode()).hexdigest()


def _digest_value(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"card_digest: cannot encode {type(value).__name__}")
