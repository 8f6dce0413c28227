"""Model folders: the real MiniLM loads; broken folders fail with messages naming what is wrong."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from cimphys.errors import InputError
from cimphys.layers.tiny import write_tiny_bert, write_tiny_gpt2
from cimphys.layers import load_model


def test_default_model_is_minilm():
    w = load_model()
    assert (w.arch, w.n_layers, w.hidden, w.n_heads) == ("bert", 6, 384, 12)
    assert w.tensors["layer.0.ffn_up.w"].shape == (384, 1536)  # stored (in, out)
    assert w.max_length == 256  # sentence-transformers' max_seq_length, not the 512 positions


def test_bert_weights_transposed_to_in_out(tmp_path):
    folder = write_tiny_bert(tmp_path / "b", ffn=48)
    raw = load_file(str(folder / "model.safetensors"))
    w = load_model(folder)
    assert np.array_equal(w.tensors["layer.1.ffn_up.w"], raw["encoder.layer.1.intermediate.dense.weight"].T)


def test_prefixed_names_accepted(tmp_path):
    folder = write_tiny_gpt2(tmp_path / "g")
    raw = load_file(str(folder / "model.safetensors"))
    save_file({"transformer." + k: v for k, v in raw.items()}, str(folder / "model.safetensors"))
    assert load_model(folder).n_layers == 2


def test_missing_tensor_named(tmp_path):
    folder = write_tiny_bert(tmp_path / "b")
    raw = load_file(str(folder / "model.safetensors"))
    del raw["encoder.layer.1.attention.self.key.weight"]
    save_file(raw, str(folder / "model.safetensors"))
    with pytest.raises(InputError, match=r"model\.safetensors.*encoder\.layer\.1\.attention\.self\.key\.weight.*missing.*\(32, 32\)"):
        load_model(folder)


def test_wrong_shape_named(tmp_path):
    folder = write_tiny_gpt2(tmp_path / "g")
    raw = load_file(str(folder / "model.safetensors"))
    raw["h.0.mlp.c_fc.weight"] = np.zeros((32, 100), dtype=np.float32)
    save_file(raw, str(folder / "model.safetensors"))
    with pytest.raises(InputError, match=r"h\.0\.mlp\.c_fc\.weight.*\(32, 100\).*expected \(32, 128\)"):
        load_model(folder)


def test_pickle_checkpoint_refused(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04not really")
    with pytest.raises(InputError, match=r"pytorch_model\.bin.*pickle"):
        load_model(folder)
    with pytest.raises(InputError, match="pickle"):
        load_model(folder / "pytorch_model.bin")


def test_missing_config_and_bad_type(tmp_path):
    with pytest.raises(InputError, match=r"config\.json.*missing"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(InputError, match="llama"):
        load_model(tmp_path)
    with pytest.raises(InputError, match="not a folder"):
        load_model(tmp_path / "nope")


def test_nonfinite_weights_refused(tmp_path):
    folder = write_tiny_bert(tmp_path / "b")
    raw = load_file(str(folder / "model.safetensors"))
    raw["embeddings.LayerNorm.bias"][3] = np.nan
    save_file(raw, str(folder / "model.safetensors"))
    with pytest.raises(InputError, match="embeddings.LayerNorm.bias.*non-finite"):
        load_model(folder)


def _edit_config(folder, **changes):
    path = folder / "config.json"
    cfg = json.loads(path.read_text())
    cfg.update(changes)
    path.write_text(json.dumps(cfg))
    return path


@pytest.mark.parametrize(
    ("writer", "changes", "match"),
    [
        (write_tiny_bert, {"num_hidden_layers": 10**9}, r"num_hidden_layers = 1000000000: expected an integer in \[1, 1024\]"),
        (write_tiny_bert, {"num_hidden_layers": 1000}, r"1000 layers need 16000 tensors, but .*model\.safetensors holds"),
        (write_tiny_gpt2, {"n_layer": 500}, r"500 layers need 6000 tensors"),
        (write_tiny_bert, {"num_attention_heads": 5}, r"hidden_size = 32 is not divisible by num_attention_heads = 5"),
        (write_tiny_gpt2, {"n_head": 3}, r"n_embd = 32 is not divisible by n_head = 3"),
        (write_tiny_bert, {"hidden_size": 32.0}, r"hidden_size = 32.0: expected an integer"),
        (write_tiny_bert, {"vocab_size": True}, r"vocab_size = True: expected an integer"),
        (write_tiny_bert, {"intermediate_size": -4}, r"intermediate_size = -4"),
        (write_tiny_gpt2, {"n_inner": "128"}, r"n_inner = '128'"),
    ],
)
def test_config_sizes_checked_before_any_table_is_built(tmp_path, writer, changes, match):
    """Regression (issue 18.6, 18.10): num_hidden_layers = 1e9 spent 118 s and then a MemoryError
    building the table of expected tensors; heads not dividing hidden passed.  Checked failing
    before (all but the 1e9 case run; that one ran into the MemoryError of the report)."""
    folder = writer(tmp_path / "m")
    _edit_config(folder, **changes)
    with pytest.raises(InputError, match=match):
        load_model(folder)


@pytest.mark.parametrize("text", ["[1, 2]", '"bert"', "3"])
def test_config_json_must_be_an_object(tmp_path, text):
    folder = write_tiny_bert(tmp_path / "m")
    (folder / "config.json").write_text(text)
    with pytest.raises(InputError, match=r"config\.json: expected a JSON object"):
        load_model(folder)
