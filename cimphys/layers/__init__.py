"""Transformer matrix products on CIM tiles: weight mapping, analog tiles, routing, models.

Read top to bottom, a run is: load a model folder (:func:`load_model`), build the model
(:func:`build_model`), pick tile physics from a circuit card (:meth:`CimConfig.from_card`),
run it on an :class:`AnalogEngine` (or :func:`run_model` for the whole fidelity/energy report).

>>> from cimphys.layers import CimConfig, run_model            # doctest: +SKIP
>>> ds = run_model(sentences=10, config=CimConfig.from_card("isaac_128x128"))  # doctest: +SKIP
"""

from .config import DEFAULT_CARD, CimConfig, default_card
from .engine import AnalogEngine
from .mapping import Mapping, map_matrix
from .matmul import DigitalEngine, MatmulEngine
from .models import build_model, load_model
from .pipeline import run_model
from .routing import Routing
from .sentences import sentences
from .transformer import BertEncoder, GPT2Decoder
from .weights import ModelWeights, default_model_dir

__all__ = [
    "DEFAULT_CARD",
    "AnalogEngine",
    "BertEncoder",
    "CimConfig",
    "DigitalEngine",
    "GPT2Decoder",
    "Mapping",
    "MatmulEngine",
    "ModelWeights",
    "Routing",
    "build_model",
    "default_card",
    "default_model_dir",
    "load_model",
    "map_matrix",
    "run_model",
    "sentences",
]
