"""GPT-2-style byte-level BPE tokenizers of Llama-family models, built with ``tokenizers``.

A GGUF file carries the tokenizer as data: ``tokenizer.ggml.tokens`` (the vocabulary, byte
level: a space is ``Ġ``), ``tokenizer.ggml.merges`` (BPE merge rules in priority order),
``tokenizer.ggml.token_type`` (3 = control tokens such as ``<|im_start|>``) and
``tokenizer.ggml.pre`` (which pre-tokenizer splits the text before BPE).  The pre-tokenizers
understood are llama.cpp's (``src/llama-vocab.cpp``):

- ``"smollm"`` (SmolLM, StarCoder): every digit on its own, then GPT-2's split
  ``'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+``;
- ``"gpt2"`` / ``"default"``: GPT-2's split alone.

Control tokens written in the text (``<|im_start|>``) are read as those tokens, as llama.cpp
does with ``parse_special``.  The chat template is read as text, never run: the ChatML form
(``<|im_start|>role\\ncontent<|im_end|>\\n``, with the template's default system message) is
recognised, anything else is refused.

References
----------
R. Sennrich et al., "Neural machine translation of rare words with subword units", ACL 2016
(BPE).  A. Radford et al., "Language models are unsupervised multitask learners", 2019
(byte-level BPE and its pre-tokenizer regex).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = ["CONTROL_TOKEN", "LlamaTokenizer", "chatml_prompt"]

CONTROL_TOKEN = 3  # llama.cpp's LLAMA_TOKEN_TYPE_CONTROL
_PRE = {"smollm": True, "gpt2": False, "default": False}  # name -> split digits first
_CHATML_SYSTEM = re.compile(r"<\|im_start\|>system(?:\n|\\n)(.*?)<\|im_end\|>", re.S)


def chatml_prompt(messages: Sequence[dict], template: str | None, *, add_generation_prompt: bool = True,
                  where: str = "model") -> str:
    """The ChatML text of ``messages`` (``[{"role": ..., "content": ...}]``) for ``template``.

    The template's default system message (``<|im_start|>system\\n...<|im_end|>``) is
    prepended when the first message is not a system message, as SmolLM2's template does.
    """
    if not template or "<|im_start|>" not in template or "<|im_end|>" not in template:
        raise InputError(f"{where}: chat template {str(template)[:60]!r} is not ChatML; only ChatML is supported")
    parts = []
    if messages and messages[0].get("role") != "system":
        default = _CHATML_SYSTEM.search(template)
        if default is not None:
            parts.append(f"<|im_start|>system\n{default.group(1)}<|im_end|>\n")
    for m in messages:
        if set(m) != {"role", "content"}:
            raise InputError(f"messages: each needs exactly 'role' and 'content', got {sorted(m)}")
        parts.append(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n")
    if add_generation_prompt:
        parts.append("<|im_start|>assistant\n")
    return "".join(parts)


class LlamaTokenizer:
    """Text <-> token ids for a Llama-family model (a ``tokenizers.Tokenizer`` inside).

    Examples
    --------
    >>> tok = load_model("smollm2").tokenizer()   # doctest: +SKIP
    >>> tok.encode("Hello world")                 # doctest: +SKIP
    [19556, 905]
    """

    def __init__(self, tokenizer, *, bos_id: int | None, eos_id: int | None, add_bos: bool,
                 chat_template: str | None, where: str):
        self._tok = tokenizer
        self.bos_id, self.eos_id, self.add_bos = bos_id, eos_id, add_bos
        self.chat_template = chat_template
        self.where = where

    @classmethod
    def from_gguf(cls, data, path: Path) -> LlamaTokenizer:
        """From the ``tokenizer.ggml.*`` fields of a GGUF file."""
        from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

        if data.get("model") != "gpt2":
            raise InputError(f"{path}: tokenizer.ggml.model {data.get('model')!r} is not supported; expected 'gpt2' "
                             "(byte-level BPE)")
        pre = str(data.get("pre"))
        if pre not in _PRE:
            raise InputError(f"{path}: tokenizer.ggml.pre {pre!r} is not supported; expected one of {sorted(_PRE)}")
        tokens = list(data["tokens"])
        vocab = {t: i for i, t in enumerate(tokens)}
        merges = [tuple(m.split(" ", 1)) for m in data.get("merges") or []]
        tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
        split = [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
        if _PRE[pre]:
            split.insert(0, pre_tokenizers.Digits(individual_digits=True))
        tok.pre_tokenizer = pre_tokenizers.Sequence(split)
        tok.decoder = decoders.ByteLevel()
        types = data.get("token_type")
        if types is not None:
            control = [tokens[i] for i in np.flatnonzero(np.asarray(types) == CONTROL_TOKEN)]
            tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in control])
        return cls(tok, bos_id=data.get("bos_id"), eos_id=data.get("eos_id"),
                   add_bos=bool(data.get("add_bos")), chat_template=data.get("chat_template"), where=str(path))

    @classmethod
    def from_file(cls, path: Path, config) -> LlamaTokenizer:
        """From a Hugging Face ``tokenizer.json``."""
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_file(str(path)), bos_id=config.get("bos_token_id"),
                   eos_id=config.get("eos_token_id"), add_bos=False, chat_template=None, where=str(path))

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (control tokens in it parsed; BOS first if the model adds one)."""
        if not isinstance(text, str):
            raise InputError(f"text: expected a string, got {type(text).__name__}")
        ids = self._tok.encode(text, add_special_tokens=False).ids
        return ([self.bos_id] if self.add_bos and self.bos_id is not None else []) + ids

    def decode(self, ids) -> str:
        """Text of ``ids`` (control tokens included)."""
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=False)

    def chat(self, messages: Sequence[dict], *, add_generation_prompt: bool = True) -> list[int]:
        """Token ids of a conversation in the model's chat template (ChatML)."""
        return self.encode(chatml_prompt(messages, self.chat_template, add_generation_prompt=add_generation_prompt,
                                         where=self.where))
