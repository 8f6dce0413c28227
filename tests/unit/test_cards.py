"""Cards: declared parameters, the one clear error per bad card, loading by name and path."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import cimphys
from cimphys.cards import Parameter, load_card, parse_card_bytes
from cimphys.errors import CardError
from tests.conftest import SINH_CARD

GOOD = SINH_CARD
ROOT = Path(__file__).resolve().parents[2]


def parse(text: str):
    return parse_card_bytes(text.encode(), "device", "test.toml", "test")


def test_good_card_loads_with_values_and_provenance():
    card = parse(GOOD)
    assert card.model == "sinh"
    assert card["k"] == 1e-6 and card["a"] == 2.5
    assert card.provenance["doi"] == "10.1109/LED.2012.2210856"


def test_card_is_frozen_and_with_parameters_rechecks():
    card = parse(GOOD)
    with pytest.raises(AttributeError):
        card.model = "other"
    changed = card.with_parameters(a=3.0)
    assert changed["a"] == 3.0 and card["a"] == 2.5
    with pytest.raises(CardError, match=r"\[parameters\] a = -1.0"):
        card.with_parameters(a=-1.0)


def test_to_toml_round_trips():
    card = parse(GOOD)
    again = parse(card.to_toml())
    assert again.parameters == card.parameters
    assert again.provenance == card.provenance


@pytest.mark.parametrize(
    ("old", "new", "pattern"),
    [
        ("k = 1e-6", "kk = 1e-6", r"unknown key \[parameters\] 'kk'; did you mean 'k'\?"),
        ("k = 1e-6", "k_amp = 1e-6", r"unknown key \[parameters\] 'k_amp'; valid keys: a, k"),
        ("k = 1e-6", "k = -1e-6", r"test.toml: \[parameters\] k = -1e-06: expected a finite number in \[1e-18, 1\] A"),
        ("k = 1e-6", 'k = "1e-6"', r"k = '1e-6': expected a finite number"),
        ("k = 1e-6", "k = nan", r"k = nan: expected a finite number"),
        ("k = 1e-6", "k = inf", r"k = inf: expected a finite number"),
        ("k = 1e-6", "k = true", r"k = True: expected a finite number"),
        ("k = 1e-6\n", "", r"missing key \[parameters\] 'k'"),
        ('name = "sinh"', 'name = "sihn"', r"not a device model; did you mean 'sinh'\?"),
        ("[provenance]", "[provenence]", r"unknown table \[provenence\]; did you mean 'provenance'\?"),
        ('doi = "10.1109/LED.2012.2210856"\n', "", r"needs a 'doi' or a 'url'"),
        ("residual = 0.01", 'residual = ""', r"residual = '': expected a non-empty string"),
        ("a = 2.5", "a = 2.5\na = 3.0", r"not valid TOML: Cannot overwrite a value"),
        ("a = 2.5", "a = {x = 1}", r"a = \{'x': 1\}: expected a finite number"),
    ],
)
def test_bad_card_gets_one_clear_error(old, new, pattern):
    assert old in GOOD
    with pytest.raises(CardError, match=pattern):
        parse(GOOD.replace(old, new, 1))


def test_non_utf8_bytes():
    with pytest.raises(CardError, match=r"test.toml: not UTF-8 text \(byte 8 is 0xff\)"):
        parse_card_bytes(b"[model]\n\xff", "device", "test.toml", "test")


def test_huge_file_is_refused_before_parsing(tmp_path):
    path = tmp_path / "huge.toml"
    with path.open("wb") as handle:
        handle.write(GOOD.encode())
        handle.write(b"# " + b"x" * (50 * 1024 * 1024) + b"\n")
    with pytest.raises(CardError, match=r"huge.toml: file is \d+ bytes; a card is at most"):
        load_card(path, "device")


def test_deep_nesting_is_a_card_error():
    deep = GOOD + "z = " + "[" * 5000 + "]" * 5000 + "\n"
    with pytest.raises(CardError, match="test.toml"):
        parse(deep)


def test_card_card_error_is_value_error():
    assert issubclass(CardError, ValueError)
    assert cimphys.CardError is CardError


def test_load_by_path_and_missing_file(tmp_path):
    path = tmp_path / "my_cell.toml"
    path.write_text(GOOD)
    assert cimphys.load_device(path).name == "my_cell"
    with pytest.raises(CardError, match="no such card file"):
        cimphys.load_device(tmp_path / "absent.toml")


def test_unknown_card_name_suggests():
    with pytest.raises(CardError, match="no device card named 'zz_not_a_card'"):
        cimphys.load_device("zz_not_a_card")


def test_every_shipped_card_loads():
    refs = cimphys.list_cards()
    for ref in refs:
        card = load_card(ref.path, ref.kind)
        assert card.provenance["source"]
        assert "doi" in card.provenance or "url" in card.provenance


@pytest.mark.parametrize(
    ("parameter", "good", "bad"),
    [
        (Parameter("n", "1", "count", kind="int", low=1, high=10), 3, [3.0, True, 0, 11]),
        (Parameter("on", "1", "switch", kind="bool", default=False), True, [1, "yes"]),
        (Parameter("adc", "1", "type", kind="str", choices=("sar", "flash")), "sar", ["SAR", 1]),
        (Parameter("w", "m", "widths", kind="floats", low=0.0), [1.0, 2], [[], [1.0, -1.0], [math.nan], 1.0]),
    ],
)
def test_parameter_kinds(parameter, good, bad):
    parameter.check(good)
    for value in bad:
        with pytest.raises(ValueError):
            parameter.check(value)


def test_card_digest_follows_values_not_names_or_comments(tmp_path):
    """card_digest keys caches and sweep stores: every value changes it, comments and paths do not."""
    from cimphys.cards import card_digest, load_device

    base = card_digest("nandakumar2019_pcm")
    text = (ROOT / "devices" / "nandakumar2019_pcm.toml").read_text()
    moved = tmp_path / "elsewhere.toml"
    moved.write_text(text.replace("# S;", "# siemens;"))
    assert card_digest(moved) == base
    card = load_device("nandakumar2019_pcm")
    checked = 0
    for key, value in card.parameters.items():
        changed = [v * 1.001 for v in value] if isinstance(value, (list, tuple)) else value * 1.001
        try:
            other = card.with_parameters(**{key: changed})
        except CardError:  # a change out of the declared range is not a card
            continue
        assert card_digest(other) != base, key
        checked += 1
    assert checked >= len(card.parameters) - 2


@pytest.mark.parametrize(
    ("kind", "card", "old", "new", "match"),
    [
        ("circuit", "circuits/isaac_128x128.toml", "g_max_s = 1e-5", "g_max_s = 1e5", r"g_max_s = 100000.*\[1e-15, 1\] S"),
        ("device", "devices/kvatinsky2015_vteam_pickett.toml", "r_on = 1000.0", "r_on = 1e-30", r"r_on = 1e-30.*\[0.001, 1e\+15\] ohm"),
        ("device", "devices/kvatinsky2015_vteam_pickett.toml", "k_off = 0.091", "k_off = 9e40", r"k_off = 9e\+40.*1e\+06\] m/s"),
    ],
)
def test_unit_slips_fail_to_load(tmp_path, kind, card, old, new, match):
    """Regression (issue 18.8): a tile card with g_max_s = 1e5 S and a device card with
    r_on = 1e-30 ohm or k_off = 9e40 m/s loaded (checked failing before: no error).  Every
    parameter is held to the physical window of its unit (cards.PLAUSIBLE)."""
    text = (ROOT / card).read_text()
    assert old in text
    path = tmp_path / "slip.toml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(CardError, match=match):
        load_card(path, kind)
