"""The Flet client (Flet 1.0). Screens read and write through the store's services and `app/sync`;
never SQL, never HTTP.

- Presenters (pure Python, no Flet, unit-tested in tests/views): `lock_model` (first run, PIN,
  unlock with lock-out feedback, idle timer), `dossier_models` (list, intake form, detail with
  only the allowed moves, dashboard tiles), `sync_models` (sync line, conflict chooser, settings),
  `format` (dates in Vietnam's time zone, status names), `audit_models` (wards in scope, the
  audit form: sections, validation, score, photos, position, submit), `review_models` (audits to
  review, decisions the role may make, compliance summary), `position` (location provider).
- Flet views: `app.CommuneApp` (routing, lock, one store thread, sync listener), `shell`
  (NavigationBar under 900 px, NavigationRail above; sync line; "Khoá ngay"), `lock_view`,
  `dossier_views`, `audit_views`, `review_views`, `other_views` (sync and settings), `screens`
  (route table).
- Entry points: `app.views.app.make_main(data_dir, camera=None)` for `ft.run`, used by
  `commune app [--web]`.
"""
