"""Properties over generated inputs (bounded example counts keep this area fast)."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.text import tokens
from app.storage.blind_index import BlindIndex
from app.storage.crypto import Sealer

KEY = os.urandom(32)
VIET = st.text(
    alphabet=st.sampled_from(list("aăâbcdđeêghiklmnoôơpqrstuưvxyàảãáạằẳẵắặầẩẫấậễềểếệ ĐƯỜ,.-0123")),
    max_size=80,
)


@settings(max_examples=60, deadline=None)
@given(text=VIET)
def test_a_record_is_found_by_its_own_text(text: str) -> None:
    index = BlindIndex(KEY)
    assert set(index.query_terms(text)) <= set(index.terms(text))


@settings(max_examples=60, deadline=None)
@given(text=VIET, cut=st.integers(min_value=2, max_value=12))
def test_every_typed_prefix_finds_the_record(text: str, cut: int) -> None:
    index = BlindIndex(KEY)
    typed = " ".join(token[:cut] for token in tokens(text))  # prefixes of >= 2 letters
    assert set(index.query_terms(typed)) <= set(index.terms(text))


@settings(max_examples=60, deadline=None)
@given(
    value=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=30),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=12,
    ),
    row_id=st.text(min_size=1, max_size=40),
    version=st.integers(min_value=0, max_value=2**40),
)
def test_any_json_value_round_trips(value, row_id: str, version: int) -> None:
    sealer = Sealer(KEY)
    blob = sealer.seal_json(value, table="audit", row_id=row_id, version=version)
    assert sealer.open_json(blob, table="audit", row_id=row_id, version=version) == value
