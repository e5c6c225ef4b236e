from __future__ import annotations

import random

from agencies.population import households
from schemas.codes import id_check_char, is_valid_id, mask_id, valid_id_mask


def test_reference_ids_of_the_design():
    assert is_valid_id("11010519491231002X")
    assert is_valid_id("440524188001010014")
    assert id_check_char("11010519491231002") == "X"


def test_wrong_check_characters_dates_and_formats_are_invalid():
    assert not is_valid_id("110105194912310021")
    assert not is_valid_id("110105194902300029")  # 30 February
    assert not is_valid_id("11010519491231002")
    assert not is_valid_id(None)


def test_vectorized_check_agrees_with_the_scalar_one():
    rng = random.Random(3)
    ids = [m.id_number for h in households(11, 60) for m in h.members]
    ids += [i[:17] + rng.choice("0123456789X") for i in ids[:80]]
    ids += ["", "x" * 18, "11010519491231002x", None]
    mask = valid_id_mask(ids)
    for i, ok in zip(ids, mask):
        expected = isinstance(i, str) and len(i) == 18 and i[:17].isdigit() and i[17].upper() == id_check_char(i[:17])
        assert bool(ok) == expected


def test_masking_hides_the_middle():
    assert mask_id("11010519491231002X") == "1101**********002X"


def test_department_names_come_from_the_code_when_known():
    from schemas.codes import department_name, division_name

    assert department_name("MZ-210304") == ("鞍山市立山区民政局", "Civil Affairs Bureau, Lishan District, Anshan")
    assert department_name("YB-210303")[0] == "鞍山市铁西区医疗保障局"
    assert department_name("MZ-999999") is None and department_name("HUB-210300") is None
    assert department_name(None) is None
    assert division_name("210381") == ("海城市", "Haicheng City") and division_name("210300") == ("鞍山市", "Anshan")
    assert division_name("110105") is None
