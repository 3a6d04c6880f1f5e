import datetime as dt

import pytest

from app.domain.codes import (
    BLOCK,
    SLOTS,
    SequenceExhausted,
    default_agency_code,
    format_code,
    next_sequence,
    parse_code,
    sequence_range,
)


def test_circular_example_round_trips():
    code = "000.00.53.H48-220921-0099"
    parsed = parse_code(code)
    assert parsed.received == dt.date(2022, 9, 21) and parsed.sequence == 99
    assert str(parsed) == code


def test_slots_never_overlap():
    seen: set[int] = set()
    for slot in range(SLOTS):
        numbers = set(sequence_range(slot))
        assert len(numbers) == BLOCK and not numbers & seen
        seen |= numbers
    assert max(seen) <= 9999


def test_two_devices_issue_distinct_codes_offline():
    day, agency = dt.date(2026, 11, 23), default_agency_code("00070")
    a = {format_code(agency, day, next_sequence(0, i)) for i in range(BLOCK)}
    b = {format_code(agency, day, next_sequence(1, i)) for i in range(BLOCK)}
    assert len(a) == len(b) == BLOCK and not a & b


def test_exhausted_slot_and_bad_input_are_refused():
    with pytest.raises(SequenceExhausted):
        next_sequence(0, BLOCK)
    with pytest.raises(ValueError):
        sequence_range(SLOTS)
    with pytest.raises(ValueError):
        parse_code("000.00.53.H48-220921-99")
    with pytest.raises(ValueError):
        format_code("bad", dt.date.today(), 1)


def test_the_local_range_is_outside_every_slot_and_rotates_by_offset():
    from app.domain.codes import LOCAL_SEQUENCES, device_sequences

    every_slot = {n for slot in range(SLOTS) for n in sequence_range(slot)}
    assert not set(LOCAL_SEQUENCES) & every_slot
    assert (LOCAL_SEQUENCES[0], LOCAL_SEQUENCES[-1]) == (9801, 9999)
    rotated = device_sequences(None, 10)
    assert rotated[0] == 9811 and sorted(rotated) == list(LOCAL_SEQUENCES)
    assert next_sequence(None, 0, 10) == 9811
    assert device_sequences(2) == list(sequence_range(2))
    with pytest.raises(SequenceExhausted):
        next_sequence(None, len(LOCAL_SEQUENCES), 10)


def test_code_search_forms_are_the_whole_code_and_its_tails():
    from app.domain.codes import code_search_forms

    assert code_search_forms("000.00.53.h26-261207-9944") == [
        "000.00.53.H26-261207-9944", "261207-9944", "9944"]
    assert code_search_forms("261207-9944") == ["261207-9944", "9944"]
    assert code_search_forms(" 9944 ") == ["9944"]
    assert code_search_forms("994") == code_search_forms("nguyen") == []
