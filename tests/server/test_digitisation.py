"""The server applies the digitisation rule of app/domain: 0..3 on each paper and on the result."""

from __future__ import annotations

from tests.server.helpers import Device, new_dossier, new_name, new_ward, push


def test_the_server_refuses_digitisation_outside_0_to_3(sqlite_api_server):
    api = sqlite_api_server
    ward = new_ward()
    officer = api.enrol(new_name("officer"), "officer", [ward])
    device = Device()

    def paper(value) -> list[dict]:
        return [{"name": "Tờ khai", "originals": 1, "copies": 0, "digitised": value}]

    good = new_dossier(device, ward, documents=paper(3), result_digitised=1)
    bad_paper = new_dossier(device, ward, documents=paper(4))
    bool_paper = new_dossier(device, ward, documents=paper(True))
    bad_result = new_dossier(device, ward, result_digitised=9)
    with api.client(officer.token) as client:
        answers = push(client, [good, bad_paper, bool_paper, bad_result])
        assert [a["status"] for a in answers] == ["applied", "rejected", "rejected", "rejected"]
        assert "documents" in answers[1]["reason"]
        assert "result_digitised" in answers[3]["reason"]
    colleague = api.enrol(new_name("officer"), "officer", [ward])  # the pusher gets no echo
    with api.client(colleague.token) as client:
        pulled = client.get("/sync/pull", params={"cursor": 0, "limit": 1000}).json()["changes"]
    [stored] = [c for c in pulled if c["entity_id"] == good["entity_id"]]
    assert stored["fields"]["documents"]["value"][0]["digitised"] == 3
    assert stored["fields"]["result_digitised"]["value"] == 1
