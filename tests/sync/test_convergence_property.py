"""Property: three devices edit one audit at random and push and pull, as separate steps, in
random orders. In the end every device and the server hold the same values, each field holds its
greatest-clock write, every write that is gone was either overwritten by someone who had seen it
or lost a same-field race that the server recorded as a conflict holding both writes, and every
recorded conflict is a real race: two different devices' writes of one field, neither of which
had seen the other. Real API process, real encrypted stores.

Deterministic in CI (`derandomize`): the same examples every run, so a failure is a bug and not
bad luck; COMMUNE_PROPERTY_EXAMPLES=N and COMMUNE_PROPERTY_RANDOM=1 make a longer local hunt.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.domain.models import AuditAnswer
from tests.sync.conftest import TEMPLATE, audit_view, server_audit_view, server_state

N_DEVICES = 3
ITEMS = ("premises.ups", "premises.cooling")  # yes/no items; few, so that races are common
EXAMPLES = int(os.environ.get("COMMUNE_PROPERTY_EXAMPLES", "100"))

device_no = st.integers(0, N_DEVICES - 1)
operation = st.one_of(
    st.tuples(st.just("notes"), device_no),
    st.tuples(st.just("answer"), device_no, st.integers(0, len(ITEMS) - 1), st.booleans()),
    st.tuples(st.just("push"), device_no),
    st.tuples(st.just("pull"), device_no),
)


@dataclass(frozen=True)
class Write:
    field: str
    value: object
    hlc: str
    device: int
    seen: frozenset[str]  # ids of the writes its device had seen when it made this one

    @property
    def id(self) -> str:
        return f"{self.field}@{self.hlc}"


class Model:
    """Who has seen which write: a device sees its own writes; a push puts its writes on the
    server; a pull shows the device everything that had reached the server by then."""

    def __init__(self) -> None:
        self.writes: list[Write] = []
        self.known: list[set[str]] = [set() for _ in range(N_DEVICES)]
        self.unpushed: list[set[str]] = [set() for _ in range(N_DEVICES)]
        self.on_server: set[str] = set()

    def wrote(self, device: int, fields: dict[str, tuple[object, str]]) -> None:
        seen = frozenset(self.known[device])
        for name, (value, hlc) in fields.items():
            w = Write(name, value, hlc, device, seen)
            self.writes.append(w)
            self.known[device].add(w.id)
            self.unpushed[device].add(w.id)

    def pushed(self, device: int) -> None:
        self.on_server |= self.unpushed[device]
        self.unpushed[device].clear()

    def pulled(self, device: int) -> None:
        self.known[device] |= self.on_server

    def write_with(self, name: str, value: object, hlc: str) -> Write | None:
        return next(
            (w for w in self.writes if w.field == name and w.hlc == hlc and w.value == value),
            None,
        )


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


def _play(fleet, audit_id: str, ops: list[tuple], model: Model) -> None:
    for step, op in enumerate(ops):
        kind, n = op[0], op[1]
        device = fleet[n]
        if kind == "push":
            assert device.engine.run_once(pull=False).ok
            model.pushed(n)
        elif kind == "pull":
            assert device.engine.run_once(push=False).ok
            model.pulled(n)
        else:
            model.wrote(n, _edit(device, audit_id, op, step))
    for _ in range(2):  # everyone pushes, then everyone pulls what the others pushed
        for n, d in enumerate(fleet):
            assert d.sync().ok
            model.pushed(n)
            model.pulled(n)


def _check_conflicts_are_real_races(model: Model, conflicts: dict) -> dict[str, set[str]]:
    """Each conflict holds two writes of its field by two devices that had not seen each
    other; returns the ids of the writes held in conflicts, by field."""
    held: dict[str, set[str]] = {}
    for c in conflicts.values():
        name = c["field"]
        pair = [model.write_with(name, v["value"], v["hlc"]) for v in c["values"]]
        assert all(pair), f"conflict on {name} holds a write nobody made: {c['values']}"
        a, b = pair
        assert a.device != b.device, f"{name}: a device raced itself: {a} / {b}"
        assert a.id not in b.seen and b.id not in a.seen, (
            f"{name}: conflict without a race, one write had seen the other: {a} / {b}"
        )
        assert a.value != b.value
        held.setdefault(name, set()).update({a.id, b.id})
    return held


def _held(w: Write, writes: list[Write], held: set[str]) -> bool:
    """The write is in a conflict, or was replaced by a later write of the same value that is
    (two devices computed the same score: nothing of its content is lost)."""
    return w.id in held or any(
        o.id in held and o.value == w.value and o.hlc > w.hlc for o in writes
    )


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("COMMUNE_PROPERTY_RANDOM"),  # set it for a local hunt
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(operation, min_size=1, max_size=20))
# A push answered with a version that counts an edit the device never pulled (found by this
# test once push and pull became separate steps):
@example(ops=[("notes", 1), ("push", 1), ("answer", 0, 0, True), ("push", 0), ("notes", 0),
              ("push", 0)])
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
    _play(fleet, audit_id, ops, model)

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
    held = _check_conflicts_are_real_races(model, conflicts)

    by_field: dict[str, list[Write]] = {}
    for w in model.writes:
        by_field.setdefault(w.field, []).append(w)
    for name, writes in by_field.items():
        final = on_server.get(name)
        newest = max(writes, key=lambda w: w.hlc)
        assert final == newest.value, f"{name}: the greatest clock must win"
        for w in writes:
            if w.value == final:
                continue  # its value is what everyone holds (a score computed alike, say)
            overwritten_knowingly = any(w.id in other.seen for other in writes)
            assert overwritten_knowingly or _held(w, writes, held.get(name, set())), (
                f"{name}={w.value!r} (device {w.device}) vanished without a recorded conflict"
            )
