"""Campaign files: a sweep written down as TOML, checked as strictly as a card.

A campaign names the function to sweep, its fixed parameters, the cards it reads, the axes, the
metrics to keep and where the store goes::

    [campaign]
    name = "crossbar_adc"                 # required; part of the store's fingerprint
    description = "..."                   # optional
    seed = 0                              # optional (default 0)

    [model]
    function = "crossbar_adc"             # a registered model: a key of MODELS, or of the
                                          # ``models`` mapping passed to load_campaign
    parameters = { rows = 32, cols = 16 } # optional fixed keyword arguments

    [card]                                # optional; each card is passed as <kind>_card=Card
    circuit = "some_circuit_card"         # name or path, loaded by cimphys.load_circuit
    device = "some_device_card"           # name or path, loaded by cimphys.load_device

    [axes]                                # one entry per axis, in sweep order
    r_wire = [0.5, 1.0, 2.0]              # a list of numbers or strings, or
    adc_bits = { start = 4, stop = 8, num = 3 }            # linspace (scale = "log": geomspace)

    [metrics]                             # optional: keep only these variables
    names = ["rel_error_rms"]

    [store]                               # optional: stream into this Zarr store (relative
    path = "results/crossbar_adc.zarr"    # paths are taken from the working directory)

An unknown table or key fails with :class:`~cimphys.errors.InputError` naming the file, the key
and the closest valid key; so does an axis or parameter the function does not take.  The fixed
parameters, the cards' contents (:func:`cimphys.cards.card_digest`, not their names or paths)
and the metrics enter the sweep's fingerprint, so editing any of them, a card file in place
included, never resumes a store computed with the old values: the store is refused.

Nothing in a campaign file is executed or imported.  ``function`` is looked up by name among the
package's registered models (:data:`MODELS`) and the functions the caller hands over from Python
(``load_campaign(path, models={"power": power})``); any other name, a dotted path such as
``"os:system"`` included, is refused with one :class:`~cimphys.errors.InputError`.
"""

from __future__ import annotations

import difflib
import hashlib
import inspect
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np
import xarray as xr

from .errors import CardError, InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["MODELS", "Campaign", "crossbar_adc", "load_campaign", "pcm_tile_error"]

_SCHEMA = {
    "campaign": {"name": str, "description": str, "seed": int},
    "model": {"function": str, "parameters": dict},
    "card": {"device": str, "circuit": str},
    "axes": None,  # free keys: the axis names
    "metrics": {"names": list},
    "store": {"path": str},
}
_REQUIRED = {"campaign": ("name",), "model": ("function",), "axes": ()}
_RANGE_KEYS = {"start", "stop", "num", "scale", "values"}


@dataclass(frozen=True)
class Campaign:
    """A checked campaign file.  Build with :func:`load_campaign`; run with :meth:`run`."""

    name: str
    function: str
    axes: MappingProxyType
    description: str = ""
    seed: int = 0
    parameters: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    cards: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    metrics: tuple[str, ...] = ()
    store: Path | None = None
    path: Path | None = None
    models: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))

    @property
    def n_points(self) -> int:
        return int(np.prod([len(v) for v in self.axes.values()]))

    def run(self, *, store=None, overwrite=False, scheduler=None, workers=None, progress=None) -> xr.Dataset:
        """Sweep the campaign; ``store`` (default: the file's ``[store] path``) resumes if it exists."""
        from .sweep import sweep

        fn = resolve_function(self.function, self._where("model.function"), self.models)
        self._check_signature(fn)
        cards = {f"{kind}_card": _load_card(kind, ref, self._where(f"card.{kind}")) for kind, ref in self.cards.items()}
        point = _CampaignPoint(self, fn, cards)
        ds = sweep(point, store=store if store is not None else self.store, seed=self.seed,
                   scheduler=scheduler, workers=workers, progress=progress, overwrite=overwrite,
                   **{k: list(v) for k, v in self.axes.items()})
        ds.attrs.update({"campaign": self.name, "campaign_function": self.function})
        return ds

    def _where(self, key: str) -> str:
        return f"{self.path or '<campaign>'}: {key}"

    def _check_signature(self, fn) -> None:
        params = inspect.signature(fn).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return
        wanted = [*self.axes, *self.parameters, *(f"{k}_card" for k in self.cards)]
        for name in wanted:
            if name not in params:
                close = difflib.get_close_matches(name, list(params), n=3)
                hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
                section = "axes" if name in self.axes else "model.parameters" if name in self.parameters else "card"
                raise InputError(f"{self._where(section + '.' + name)}: {self.function} takes no argument {name!r}{hint}"
                                 f" (it takes {', '.join(params)})")


class _CampaignPoint:
    """The function of one point: axes from the sweep, fixed parameters and cards from the file."""

    def __init__(self, campaign: Campaign, fn, cards: dict):
        from .cards import card_digest

        self.fn, self.cards = fn, cards
        self.parameters = dict(campaign.parameters)
        self.metrics = campaign.metrics
        self.campaign = campaign.name
        # cards enter by what they say (card_digest), not by their name or path: editing a card
        # file in place must not resume a store computed from its old values
        identity = json.dumps({"parameters": self.parameters, "metrics": list(self.metrics),
                               "cards": {kind: card_digest(card) for kind, card in cards.items()}},
                              sort_keys=True, default=str)
        digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
        self.__module__ = "cimphys.campaign"
        self.__qualname__ = f"campaign[{campaign.name}]:{campaign.function}:{digest}"
        fn_params = inspect.signature(fn).parameters
        extra = [n for n in ("rng", "seed") if n in fn_params]
        self.__signature__ = inspect.Signature(
            [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in (*campaign.axes, *extra)]
        )

    def __call__(self, **kwargs):
        result = self.fn(**kwargs, **self.parameters, **self.cards)
        if not self.metrics:
            return result
        names = list(result.data_vars) if isinstance(result, xr.Dataset) else list(result)
        missing = [m for m in self.metrics if m not in names]
        if missing:
            raise InputError(f"campaign {self.campaign}: metrics {missing} not among the outputs {names}")
        if isinstance(result, xr.Dataset):
            return result[list(self.metrics)]
        return {m: result[m] for m in self.metrics}


def load_campaign(path, models=None) -> Campaign:
    """Read and check a campaign TOML file.

    Parameters
    ----------
    path : str or Path
        The campaign file.
    models : mapping of str to callable, optional
        The caller's own functions, by the name the file's ``model.function`` may give; they are
        looked up alongside :data:`MODELS` (a name in both is refused).  A file can never name a
        function any other way.

    Raises
    ------
    InputError
        Unreadable file, unknown table or key (with the closest valid one), missing key, a value
        of the wrong type, or a ``model.function`` that is not a registered model.
    """
    models = _check_models(models)
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such campaign file")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from exc
    _check_tables(path, data)
    camp, model = data["campaign"], data["model"]
    metrics = data.get("metrics", {}).get("names", [])
    if not all(isinstance(m, str) for m in metrics):
        raise InputError(f"{path}: metrics.names: expected a list of variable names, got {metrics!r}")
    seed = camp.get("seed", 0)
    if seed < 0:
        raise InputError(f"{path}: campaign.seed: expected an int >= 0, got {seed!r}")
    store = data.get("store", {}).get("path")
    resolve_function(model["function"], f"{path}: model.function", models)
    return Campaign(
        name=camp["name"], description=camp.get("description", ""), seed=seed,
        function=model["function"], parameters=MappingProxyType(dict(model.get("parameters", {}))),
        cards=MappingProxyType(dict(data.get("card", {}))),
        axes=MappingProxyType({k: _axis(path, k, v) for k, v in data["axes"].items()}),
        metrics=tuple(metrics), store=Path(store) if store else None, path=path, models=models,
    )


def _check_models(models) -> MappingProxyType:
    models = dict(models or {})
    for name, fn in models.items():
        if not isinstance(name, str) or not callable(fn):
            raise InputError(f"load_campaign: models: expected a mapping of names to functions, got {name!r}: {fn!r:.60}")
        if name in MODELS:
            raise InputError(f"load_campaign: models: {name!r} is already a built-in model; pick another name")
    return MappingProxyType(models)


def _check_tables(path: Path, data: dict) -> None:
    for table, value in data.items():
        if table not in _SCHEMA:
            raise InputError(f"{path}: unknown table [{table}]{_suggest(table, _SCHEMA)}")
        if not isinstance(value, dict):
            raise InputError(f"{path}: {table}: expected a table [{table}], got {value!r:.60}")
        keys = _SCHEMA[table]
        for key, item in value.items():
            if keys is None:
                continue
            if key not in keys:
                raise InputError(f"{path}: unknown key {table}.{key}{_suggest(key, keys)}")
            if not isinstance(item, keys[key]) or (keys[key] is int and isinstance(item, bool)):
                raise InputError(f"{path}: {table}.{key}: expected {keys[key].__name__}, got {item!r:.60}")
    for table, required in _REQUIRED.items():
        if table not in data:
            raise InputError(f"{path}: missing table [{table}]")
        for key in required:
            if key not in data[table]:
                raise InputError(f"{path}: missing key {table}.{key}")
    if not data["axes"]:
        raise InputError(f"{path}: [axes] is empty; give at least one axis")


def _axis(path: Path, name: str, spec) -> tuple:
    where = f"{path}: axes.{name}"
    if isinstance(spec, list):
        return tuple(spec)
    if not isinstance(spec, dict):
        raise InputError(f"{where}: expected a list or a table {{start, stop, num}}, got {spec!r:.60}")
    for key in spec:
        if key not in _RANGE_KEYS:
            raise InputError(f"{where}: unknown key {key!r}{_suggest(key, _RANGE_KEYS)}")
    if "values" in spec:
        if set(spec) != {"values"} or not isinstance(spec["values"], list):
            raise InputError(f"{where}: 'values' takes a list and excludes start/stop/num")
        return tuple(spec["values"])
    missing = [k for k in ("start", "stop", "num") if k not in spec]
    if missing:
        raise InputError(f"{where}: missing {', '.join(missing)}")
    scale = spec.get("scale", "linear")
    num = spec["num"]
    if not isinstance(num, int) or isinstance(num, bool) or num < 1:
        raise InputError(f"{where}.num: expected an int >= 1, got {num!r}")
    if scale not in ("linear", "log"):
        raise InputError(f"{where}.scale: expected 'linear' or 'log', got {scale!r}")
    start, stop = spec["start"], spec["stop"]
    if scale == "log" and not (start > 0 and stop > 0):
        raise InputError(f"{where}: a log axis needs start, stop > 0, got {start!r}, {stop!r}")
    values = (np.geomspace if scale == "log" else np.linspace)(start, stop, num)
    if all(isinstance(v, int) for v in (start, stop)) and scale == "linear" and np.all(values == np.round(values)):
        return tuple(int(v) for v in values)
    return tuple(float(v) for v in values)


def _suggest(key: str, options) -> str:
    close = difflib.get_close_matches(key, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (expected one of {', '.join(sorted(options))})"


def resolve_function(spec: str, where: str = "function", models=None):
    """The callable a campaign names: a key of :data:`MODELS` or of ``models`` (the caller's own).

    Nothing is imported: a dotted ``"package.module:function"`` is refused like any unknown name.
    """
    known = {**MODELS, **(models or {})}
    if isinstance(spec, str) and spec in known:
        return known[spec]
    hint = _suggest(spec, known) if isinstance(spec, str) else ""
    raise InputError(f"{where}: {spec!r} is not a registered model{hint}; a campaign file names only "
                     f"registered models (a function of your own: load_campaign(path, models={{'name': fn}}) "
                     f"from Python)")


def _load_card(kind: str, ref: str, where: str):
    from . import cards

    try:
        return cards.load_device(ref) if kind == "device" else cards.load_circuit(ref)
    except CardError as exc:
        raise InputError(f"{where}: {exc}") from exc


# -- built-in models ------------------------------------------------------------------------
def crossbar_adc(rows: int, cols: int, r_wire: float, adc_bits: int, g_on: float = 1e-4,
                 g_off: float = 1e-6, v_read: float = 0.2, batch: int = 8, rng=None) -> xr.Dataset:
    """Error of a crossbar matrix-vector product read through an ADC, for one set of parameters.

    Random conductances in ``[g_off, g_on]`` (S) and inputs in ``[0, v_read]`` (V) are drawn from
    ``rng``; the crossbar with wire segments of ``r_wire`` (ohm) is solved with
    ``cimphys.Crossbar``, its output currents are digitised by an ideal ``adc_bits`` ADC whose range
    spans the ideal (wire-free) outputs, and the result is compared with ``G.T @ v``.

    Returns ``rel_error_rms`` and ``rel_error_max`` (relative to the full-scale ideal current,
    "1"), ``ir_drop_rel`` (the wire-only error, "1") and ``i_full_scale`` (A).
    """
    import cimphys
    from .circuits.adc import ADC

    rng = np.random.default_rng(rng)
    g = rng.uniform(g_off, g_on, (int(rows), int(cols)))
    v = rng.uniform(0.0, v_read, (int(batch), int(rows)))
    ideal = v @ g
    analog = np.asarray(cimphys.Crossbar(g, r_wl=r_wire, r_bl=r_wire).solve(v).i_out)
    full_scale = float(v_read * g.sum(axis=0).max())
    adc = ADC(bits=int(adc_bits)).with_range(0.0, full_scale)
    digital = adc.codes_to_input(adc.convert(analog))
    err = (digital - ideal) / full_scale
    wire = (analog - ideal) / full_scale

    def var(value, units, long_name):
        return ((), value, {"units": units, "long_name": long_name})

    return xr.Dataset({
        "rel_error_rms": var(np.sqrt(np.mean(err**2)), "1", "rms output error / full scale"),
        "rel_error_max": var(np.abs(err).max(), "1", "largest output error / full scale"),
        "ir_drop_rel": var(np.sqrt(np.mean(wire**2)), "1", "rms wire (IR-drop) error / full scale"),
        "i_full_scale": var(full_scale, "A", "ADC full-scale current"),
    })


def pcm_tile_error(adc_bits: int, t_inference: float, device_card, circuit_card, input_magnitude: float = 1.0,
                   weight_magnitude: float = 1.0, rows: int | None = None, cols: int | None = None,
                   n_tiles: int = 8, batch: int = 32, seed: int = 0) -> xr.Dataset:
    """MVM error of a PCM tile (device card programmed into a tile card) read ``t_inference`` s
    after programming: mean and std in normalised output units (see :mod:`cimphys.export`)."""
    from .export import physics_errors

    out = physics_errors(device_card, circuit_card, adc_bits=adc_bits, input_magnitude=input_magnitude,
                         weight_magnitude=weight_magnitude, t_inference=t_inference, n_tiles=n_tiles,
                         batch=batch, rows=rows, cols=cols, seed=seed % (2**63))
    err = out["error"]
    return xr.Dataset({
        "error_mean": ((), err.mean(), {"units": "1", "long_name": "mean MVM error (normalised output)"}),
        "error_std": ((), err.std(ddof=1), {"units": "1", "long_name": "std of MVM error (normalised output)"}),
        "alpha": ((), out["alpha"], {"units": "1", "long_name": "global drift compensation factor"}),
    })


MODELS = MappingProxyType({"crossbar_adc": crossbar_adc, "pcm_tile_error": pcm_tile_error})
