"""The only client code that speaks HTTP or schedules background work.

- `transport.Transport`: HTTP to the central API (compression, retries, typed errors).
- `engine.SyncEngine(store.sync, transport, on_revoked=...)`: `run_once() -> SyncReport`,
  `fetch_attachment(sha256)`.
- `scheduler.SyncScheduler(engine, ...)`: background runs, probe, `sync_now()`, listeners of
  `SyncStatus`, `shutdown()`.
- `enrolment.enrol(settings, server_url, code, device_name)`.
"""
