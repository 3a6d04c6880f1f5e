"""Defence in depth: a stored row the pull cannot serve is set aside (logged, counted in
/metrics) and the page goes on. Bad rows are written straight into the real server's database,
bypassing push, on SQLite and PostgreSQL (the `api_server` fixture is parametrized)."""

from __future__ import annotations

import re

from app.domain.hlc import Clock
from tests.server.helpers import Device, new_dossier, new_ward, pull_all, push
from tests.support.raw_rows import insert_raw_record

SECRET = "Trần Bí Mật"  # a personal value that must never reach the server's log


def _set_aside_total(client) -> int:
    text = client.get("/metrics").text
    return int(re.search(r"^commune_pull_rows_set_aside_total (\d+)$", text, re.M).group(1))


def _bad_rows(dialect: str, hlc: str) -> dict[str, str]:
    """Stored `fields` texts that no pull can serve as they are, by what is wrong with them
    ($G: a good status field, $H: a good stamp, $S: a personal value)."""
    rows = {
        "fields_not_an_object": "[1, 2, 3]",
        "field_not_an_object": '{"status": 5}',
        "field_without_hlc": '{"status": {"value": 2}}',
        "field_without_value": '{"status": {"hlc": "$H"}}',
        "bad_clock_stamp": '{"status": {"value": 2, "hlc": "yesterday"}}',
        "stamp_not_text": '{"status": {"value": 2, "hlc": 17}}',  # fails the Change model
        "nul_in_stamp": '{"status": {"value": 2, "hlc": "$H\\u0000"}}',
        "nul_in_value": '{$G, "notes": {"value": "a\\u0000 $S", "hlc": "$H"}}',
        "lone_surrogate": '{$G, "applicant_name": {"value": "$S \\ud800", "hlc": "$H"}}',
    }
    if dialect == "sqlite":  # PostgreSQL's json type refuses these at the door
        rows["nan_value"] = '{$G, "fee": {"value": NaN, "hlc": "$H"}}'
        rows["broken_json"] = '{"status": {"value": 2, "hlc": '
    good = '"status": {"value": 2, "hlc": "$H", "changed_version": 1}'
    return {
        k: v.replace("$G", good).replace("$H", hlc).replace("$S", SECRET)
        for k, v in rows.items()
    }


def test_bad_stored_rows_are_set_aside_and_the_pull_goes_on(api_server):
    ward = new_ward()
    officer = api_server.enrol(f"officer_bad_{ward}", "officer", [ward])
    reader = api_server.enrol(officer.user)
    device = Device()
    before = [new_dossier(device, ward) for _ in range(3)]
    after = [new_dossier(device, ward) for _ in range(2)]
    with api_server.client(officer.token) as client:
        push(client, before)
    dialect = api_server.engine.dialect.name
    bad = _bad_rows(dialect, Clock("raw").now())
    bad_ids = {
        insert_raw_record(api_server.engine, "dossier", ward, fields): reason
        for reason, fields in bad.items()
    }
    with api_server.client(officer.token) as client:
        push(client, after)

    with api_server.client(reader.token) as client:
        counted_before = _set_aside_total(client)
        changes, cursor = pull_all(client)
        # in small pages too: a page of only bad rows still moves the cursor on
        paged, paged_cursor = pull_all(client, limit=2)
        counted = _set_aside_total(client) - counted_before
        head = client.get("/sync/pull", params={"cursor": cursor}).json()

    good_ids = {m["entity_id"] for m in before + after}
    assert {c["entity_id"] for c in changes} == good_ids
    assert {c["entity_id"] for c in paged} == good_ids
    assert paged_cursor == cursor and head == {"changes": [], "next_cursor": cursor,
                                               "has_more": False}
    assert counted == 2 * len(bad_ids)  # each bad row, once per pull that met it
    log = api_server.log_tail(200_000)
    for entity_id in bad_ids:
        assert f"set aside dossier {entity_id}" in log
    assert SECRET not in log
