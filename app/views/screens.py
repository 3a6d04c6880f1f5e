"""Route table: which screen answers which route."""

from __future__ import annotations

from typing import TYPE_CHECKING

import flet as ft

from app.views import audit_views, dossier_views, other_views, oversight_views, review_views
from app.views.audit_models import home_route, route_allowed

if TYPE_CHECKING:
    from app.views.context import AppContext


async def build(app: AppContext, route: str) -> ft.Control:
    path = route.split("?", 1)[0].rstrip("/") or "/dossiers"
    if not route_allowed(app.role, path):  # another role's screen: this role's home instead
        path = home_route(app.role)
    parts = path.strip("/").split("/")
    head = parts[0]
    if head == "dossiers" and len(parts) == 2:
        return await dossier_views.DetailScreen(app, parts[1]).build()
    if head == "dashboard":
        return await dossier_views.dashboard_screen(app)
    if head == "receive":
        return dossier_views.ReceiveScreen(app).build()
    if head == "audits":
        return await audit_views.build_route(app, parts)
    if head == "oversight":
        return await oversight_views.build_route(app, parts)
    if head == "reviews":
        return await review_views.build_route(app, parts)
    if head == "sync":
        return await other_views.SyncScreen(app).build()
    if head == "settings":
        return await other_views.SettingsScreen(app).build()
    return await dossier_views.ListScreen(app, route).build()
