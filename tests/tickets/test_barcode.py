from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tickets.barcode import KEY_BYTES, barcode_key, fold


def test_a_code_read_back_in_another_letter_case_has_the_same_key() -> None:
    assert barcode_key("ab12cd34ef") == barcode_key("AB12CD34EF") == barcode_key(" ab12CD34ef\n")


def test_different_codes_have_different_keys() -> None:
    assert barcode_key("ab12cd34ef") != barcode_key("ab12cd34eg")


@given(st.text())
def test_every_text_has_a_fixed_size_key_and_folding_is_idempotent(text: str) -> None:
    assert len(barcode_key(text)) == KEY_BYTES
    assert fold(fold(text)) == fold(text)
