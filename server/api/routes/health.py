"""Liveness and metrics (Prometheus text format)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from sqlalchemy import text

from server.api.deps import Ctx
from server.errors import ApiError
from server.schemas import Health
from server.services.sync import sync_lag

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def health(ctx: Ctx) -> Health:
    try:
        with ctx.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        raise ApiError(503, "database_unavailable", "the database does not answer") from exc
    return Health(status="ok", database=ctx.engine.dialect.name)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(ctx: Ctx) -> str:
    counters = ctx.counters.snapshot()
    lag = sync_lag(ctx.engine)
    lines = [
        (
            "commune_requests_total",
            "counter",
            "requests served by this worker",
            counters.get("requests", 0),
        ),
        (
            "commune_request_errors_4xx_total",
            "counter",
            "4xx answers of this worker",
            counters.get("errors_4xx", 0),
        ),
        (
            "commune_request_errors_5xx_total",
            "counter",
            "5xx answers of this worker",
            counters.get("errors_5xx", 0),
        ),
        (
            "commune_mutations_applied_total",
            "counter",
            "mutations applied by this worker",
            counters.get("mutations_applied", 0),
        ),
        (
            "commune_mutations_conflict_total",
            "counter",
            "mutations applied with a conflict",
            counters.get("mutations_conflict", 0),
        ),
        (
            "commune_mutations_rejected_total",
            "counter",
            "mutations rejected by this worker",
            counters.get("mutations_rejected", 0),
        ),
        (
            "commune_pull_rows_set_aside_total",
            "counter",
            "stored rows a pull could not serve and skipped (see the warning log)",
            counters.get("pull_rows_set_aside", 0),
        ),
        ("commune_change_log_head", "gauge", "latest change-log sequence", lag["head"]),
        ("commune_devices_active", "gauge", "enrolled devices not revoked", lag["devices"]),
        (
            "commune_sync_devices_behind",
            "gauge",
            "devices that have not pulled the head",
            lag["devices_behind"],
        ),
        (
            "commune_sync_lag_changes_max",
            "gauge",
            "changes the furthest-behind device lacks",
            lag["lag_max"],
        ),
        (
            "commune_sync_lag_changes_sum",
            "gauge",
            "changes pending pull over all devices",
            lag["lag_sum"],
        ),
    ]
    out = []
    for name, kind, help_text, value in lines:
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value}"]
    return "\n".join(out) + "\n"
