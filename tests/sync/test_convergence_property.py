"""Property: three devices edit one audit at random and sync in random orders; in the end every
device and the server hold the same values, each field holds its greatest-clock write, and every
write that is gone was either overwritten by someone who had seen it or lost a same-field race
that the server recorded as a conflict. Real API process, real encrypted stores."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.domain.models import AuditAnswer
from tests.sync.conftest import TEMPLATE, audit_view, server_audit_view, server_state

N_DEVICES = 3
ITEMS = ("premises.ups", "premises.cooling", "network.firewall")  # yes/no items

device_no = st.integers(0, N_DEVICES - 1)
operation = st.one_of(
    st.tuples(st.just("notes"), device_no),
    st.tuples(st.just("answer"), device_no, st.integers(0, len(ITEMS) - 1), st.booleans()),
    st.tuples(st.just("sync"), device_no),
)


@dataclass(frozen=True)
class Write:
    field: str
    value: object
    hlc: str
    seen: frozenset[str]  # ids (hlc + field) of the writes its device had seen

    @property
    def id(self) -> str:
        return f"{self.field}@{self.hlc}"


class Model:
    """Who has seen which write: a device sees its own writes, and after a sync run (push, then
    pull) everything that had reached the server by then."""

    def __init__(self) -> None:
        self.writes: list[Write] = []
        self.known: list[set[str]] = [set() for _ in range(N_DEVICES)]
        self.unpushed: list[set[str]] = [set() for _ in range(N_DEVICES)]
        self.on_server: set[str] = set()

    def wrote(self, device: int, fields: dict[str, tuple[object, str]]) -> None:
        seen = frozenset(self.known[device])
        for name, (value, hlc) in fields.items():
            w = Write(name, value, hlc, seen)
            self.writes.append(w)
            self.known[device].add(w.id)
            self.unpushed[device].add(w.id)

    def synced(self, device: int) -> None:
        self.on_server |= self.unpushed[device]
        self.unpushed[device].clear()
        self.known[device] |= self.on_server


def _edit(device, audit_id: str, op: tuple, step: int) -> dict[str, tuple[object, str]]:
    """Make one edit; return the fields it wrote with the stamps the outbox gave them."""
    if op[0] == "notes":
        device.store.audits.set_fields(audit_id, notes=f"ghi chú {op[1]}-{step}")
    else:
        answer = AuditAnswer(value=op[3], note=f"thiết bị {op[1]} bước {step}")
        device.store.audits.answer(audit_id, ITEMS[op[2]], answer)
    mutation = device.store.sync.pending_mutations(10**9)[-1]
    assert mutation.entity_id == audit_id
    return {name: (fv.value, fv.hlc) for name, fv in mutation.fields.items()}


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(operation, min_size=1, max_size=12))
def test_random_edits_and_sync_orders_converge(devices, sync_server, ward, ops):
    if not devices.made:  # the same three devices serve every example; each gets a new audit
        user = devices.user("auditor", [ward])
        for _ in range(N_DEVICES):
            devices.enrol(user)
    fleet = devices.made
    audit_id = fleet[0].store.audits.create(ward, TEMPLATE, "Vũ Minh Tâm").id
    for d in fleet:
        assert d.sync().ok
    model = Model()

    for step, op in enumerate(ops):
        device = fleet[op[1]]
        if op[0] == "sync":
            assert device.sync().ok
            model.synced(op[1])
        else:
            model.wrote(op[1], _edit(device, audit_id, op, step))
    for _ in range(2):  # everyone pushes, then everyone pulls what the others pushed
        for i, d in enumerate(fleet):
            assert d.sync().ok
            model.synced(i)

    state = server_state(sync_server, ward)
    on_server = state[audit_id]
    views = [audit_view(d.store, audit_id) for d in fleet]
    assert all(v == views[0] for v in views)  # every device alike
    assert server_audit_view(on_server) == views[0]  # and alike the server

    conflicts = {
        cid: c
        for cid, c in state.items()
        if c["_entity"] == "conflict" and c["entity_id"] == audit_id
    }
    for d in fleet:  # every device knows of every conflict on this audit
        local = {c.id for c in d.store.sync.open_conflicts() if c.entity_id == audit_id}
        assert local == set(conflicts)
    race_losers: dict[str, list] = {}
    for c in conflicts.values():
        race_losers.setdefault(c["field"], []).extend(v["value"] for v in c["values"])

    by_field: dict[str, list[Write]] = {}
    for w in model.writes:
        by_field.setdefault(w.field, []).append(w)
    for name, writes in by_field.items():
        final = on_server.get(name)
        newest = max(writes, key=lambda w: w.hlc)
        assert final == newest.value, f"{name}: the greatest clock must win"
        for w in writes:
            if w.value == final:
                continue
            overwritten_knowingly = any(w.id in other.seen for other in writes)
            assert overwritten_knowingly or w.value in race_losers.get(name, []), (
                f"{name}={w.value!r} vanished without a recorded conflict"
            )
