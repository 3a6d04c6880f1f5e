"""The device's camera and position, where the build has them.

A `flet build` for Android or iOS carries flet-camera, flet-geolocator and
flet-permission-handler (see docs/packaging.md): photos are taken in the app and the position
comes from the location service, after the user grants the permission. The web build served by
`commune app --web` and the desktop client run Flet's prebuilt clients, which hold none of these
extensions: there the camera and position stay unavailable, so no button offers them (photos come
from the file picker, coordinates are typed).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import flet as ft

from app.i18n import t
from app.views.position import Position, PositionProvider

log = logging.getLogger(__name__)

MOBILE = (ft.PagePlatform.ANDROID, ft.PagePlatform.IOS)
LOCATE_TIMEOUT_S = 20.0
CAPTURE_TIMEOUT_S = 300.0  # the user frames the picture; a forgotten dialog gives up


class Camera:
    """No camera: `available` is False and `capture()` finds nothing (web, desktop)."""

    available = False

    async def capture(self) -> bytes | None:
        return None


def has_device_extensions(page: Any) -> bool:
    """A mobile `flet build` (not the web client): the only build that packs the extensions."""
    return bool(getattr(page, "platform", None) in MOBILE and not getattr(page, "web", False))


def _granted(status: Any) -> bool:
    return getattr(status, "value", status) in ("granted", "limited")


class DeviceCamera(Camera):
    """flet-camera: a preview dialog with "Chụp"; the back camera when there is one."""

    available = True

    def __init__(self, page: ft.Page, permissions: Any) -> None:
        self.page = page
        self.permissions = permissions

    async def capture(self) -> bytes | None:
        import flet_camera as fc
        from flet_permission_handler import Permission

        if not _granted(await self.permissions.request(Permission.CAMERA)):
            return None
        preview = fc.Camera(expand=True)
        taken: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()

        async def shoot(e: Any) -> None:
            if not taken.done():
                taken.set_result(await preview.take_picture())

        def cancel(e: Any) -> None:
            if not taken.done():
                taken.set_result(None)

        dialog = ft.AlertDialog(
            modal=True,
            content=ft.Container(preview, width=560, height=420),
            actions=[
                ft.TextButton(t("detail.cancel"), on_click=cancel),
                ft.Button(t("audit.take_photo"), icon=ft.Icons.CAMERA_ALT, on_click=shoot),
            ],
        )
        self.page.show_dialog(dialog)
        try:
            cameras = await preview.get_available_cameras()
            if not cameras:
                return None
            back = next(
                (c for c in cameras if c.lens_direction == fc.CameraLensDirection.BACK), None
            )
            await preview.initialize(
                back or cameras[0], fc.ResolutionPreset.HIGH, enable_audio=False
            )
            return await asyncio.wait_for(taken, CAPTURE_TIMEOUT_S)
        except (TimeoutError, RuntimeError) as exc:
            log.warning("camera capture failed: %s", exc)
            return None
        finally:
            dialog.open = False
            self.page.update()


class DevicePosition(PositionProvider):
    """flet-geolocator: the current fix, after the location permission."""

    available = True

    def __init__(self, geolocator: Any, permissions: Any) -> None:
        self.geolocator = geolocator
        self.permissions = permissions

    async def locate(self) -> Position | None:
        from flet_permission_handler import Permission

        try:
            if not _granted(await self.permissions.request(Permission.LOCATION_WHEN_IN_USE)):
                return None
            fix = await asyncio.wait_for(self.geolocator.get_current_position(), LOCATE_TIMEOUT_S)
        except (TimeoutError, RuntimeError) as exc:
            log.warning("no position fix: %s", exc)
            return None
        if fix.latitude is None or fix.longitude is None:
            return None
        return Position(float(fix.latitude), float(fix.longitude), fix.accuracy)


def device_capabilities(page: ft.Page) -> tuple[Camera, PositionProvider]:
    """The camera and position this build really has; stand-ins with nothing elsewhere."""
    if not has_device_extensions(page):
        return Camera(), PositionProvider()
    try:
        import flet_camera  # noqa: F401  (present in the build)
        import flet_geolocator as fg
        import flet_permission_handler as fph
    except ImportError:
        log.info("device extensions not in this build: typed position, picked photos")
        return Camera(), PositionProvider()
    permissions = fph.PermissionHandler()
    geolocator = fg.Geolocator(
        configuration=fg.GeolocatorConfiguration(accuracy=fg.GeolocatorPositionAccuracy.HIGH)
    )
    page.services.extend([permissions, geolocator])
    return DeviceCamera(page, permissions), DevicePosition(geolocator, permissions)
