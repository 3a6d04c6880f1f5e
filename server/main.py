"""The central API: `create_app(settings)` builds a FastAPI app on SQLite or PostgreSQL."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.domain.hlc import Clock
from server import migrate
from server.api.deps import AppContext
from server.api.routes import (
    admin,
    attachments,
    auth,
    counter,
    device_status,
    health,
    recovery,
    reviews,
    sync,
)
from server.core.config import SERVER_NODE, Settings
from server.core.db import engine_for
from server.core.middleware import (
    BodyLimitMiddleware,
    MetricsMiddleware,
    ResponseCompression,
    SecurityHeadersMiddleware,
)
from server.core.security import RateLimiter
from server.errors import ApiError, error_body
from server.services import at_rest, duplicates, identity
from server.storage import LocalDiskStore

log = logging.getLogger("commune.server")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    at_rest.prepare(settings)  # private folders; the server data key loaded before any read
    engine = engine_for(settings)
    blobs = LocalDiskStore(settings.blobs_dir)
    if settings.migrate_on_start:
        migrate.upgrade(engine)
        at_rest.seal_on_start(engine, blobs)
        duplicates.index_on_start(engine)  # ID terms under the current key, once per key
    ctx = AppContext(
        settings=settings,
        engine=engine,
        blobs=blobs,
        clock=Clock(SERVER_NODE),
        login_limiter=RateLimiter(settings.login_attempts_per_window, settings.rate_window_seconds),
        login_address_limiter=RateLimiter(
            settings.login_attempts_per_address, settings.rate_window_seconds
        ),
        enrol_limiter=RateLimiter(settings.enrol_attempts_per_window, settings.rate_window_seconds),
    )
    app = FastAPI(
        title="commune-field central API",
        version="1",
        description="Đồng bộ hồ sơ một cửa và khảo sát hạ tầng CNTT cấp xã.",
        # Production: no schema or interactive docs for outsiders (Settings.docs to keep them).
        docs_url="/docs" if settings.docs_enabled else None,
        redoc_url="/redoc" if settings.docs_enabled else None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
    )
    app.state.ctx = ctx
    for module in (
        health, auth, sync, attachments, reviews, admin, recovery, device_status, counter
    ):
        app.include_router(module.router)
    _add_error_handlers(app)
    _add_push_schema(app)
    app.add_middleware(ResponseCompression, minimum_size=1024)
    app.add_middleware(
        BodyLimitMiddleware,
        max_body_bytes=settings.max_body_bytes,
        spool_bytes=settings.spool_memory_bytes,
        limits={"/auth/": settings.max_auth_body_bytes},
        authorize=_token_check(engine),
    )
    app.add_middleware(MetricsMiddleware, counters=ctx.counters)
    app.add_middleware(SecurityHeadersMiddleware, hsts_seconds=settings.hsts_seconds)  # outermost
    app.router.add_event_handler("shutdown", engine.dispose)
    _schedule_backups(app, settings)
    _schedule_snapshots(app, settings, engine)
    return app


def _add_push_schema(app: FastAPI) -> None:
    """The push route reads its body itself (`read_push`); its schema, `PushRequest`'s, is
    added to the OpenAPI components that the route's request body refers to."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()
            parts = dict(sync.PUSH_SCHEMAS)
            defs = parts.pop("$defs", {})
            known = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, part in {**defs, "PushRequest": parts}.items():
                known.setdefault(name, part)
        return app.openapi_schema

    app.openapi = openapi


def _token_check(engine):
    """For a body past the in-memory spool: its bearer token must be good before more is read."""

    async def authorize(scope: dict) -> None:
        header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthorized", "a bearer token is required")
        await run_in_threadpool(identity.authenticate, engine, token.strip())

    return authorize


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory server.main:app_from_env` (settings from COMMUNE_*),
    called in each worker process of `commune api --workers N`."""
    from server.core.runtime import tune_gc

    app = create_app(Settings.from_env())
    tune_gc()
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", ""))}
            for err in exc.errors()[:20]
        ]
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        message = f"{'.'.join(first['loc'])}: {first['msg']}"
        body = {"error": {"code": "validation_error", "message": message, "details": details}}
        return JSONResponse(body, status_code=422)

    @app.exception_handler(DataError)
    async def _bad_data(_request: Request, exc: DataError) -> JSONResponse:
        # The database refused a value the validators let through: the client's input, not a
        # server fault (the transaction was rolled back).
        log.warning("database refused a value: %s", exc.orig)
        return JSONResponse(
            error_body("invalid_data", "the database refused a value of this request"),
            status_code=422,
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse(error_body("internal", "internal server error"), status_code=500)


def _schedule_backups(app: FastAPI, settings: Settings) -> None:
    """Sealed backups in this process when COMMUNE_BACKUP_DIR is set (server.core.backup)."""
    from server.core.backup import BackupSchedule

    schedule = BackupSchedule.from_env(settings.db_url, settings.data_dir)
    if schedule is not None:
        scheduler = schedule.start()
        app.router.add_event_handler("shutdown", lambda: scheduler.shutdown(wait=False))


def _schedule_snapshots(app: FastAPI, settings: Settings, engine) -> None:
    """Report snapshots published in this process every `report_publish_seconds` (a run with
    nothing new since the last one, on the same day, reads one number and writes nothing)."""
    if settings.report_publish_seconds <= 0:
        return
    from server.services.reports import ScheduledPublish

    scheduler = ScheduledPublish(engine).start(settings.report_publish_seconds)
    app.router.add_event_handler("shutdown", lambda: scheduler.shutdown(wait=False))
