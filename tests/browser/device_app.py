"""The web app with stand-ins for the device parts tests may mock: a camera whose capture is a
small JPEG made in memory, and a position provider with a fixed fix in Hanoi. Run as
`python tests/browser/device_app.py --port N` with COMMUNE_DATA_DIR set."""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import flet as ft  # noqa: E402

from app.views.app import ASSETS_DIR, Camera, make_main  # noqa: E402
from app.views.position import Position, PositionProvider  # noqa: E402

# A 1x1 JPEG: enough for the attachment path (sealed file, record, outbox).
TINY_JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b0c"
    "1912130f141d1a1f1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffc0000b"
    "080001000101011100ffc4001f0000010501010101010100000000000000000102030405060708090a0bffc400b5"
    "100002010303020403050504040000017d01020300041105122131410613516107227114328191a1082342b1c115"
    "52d1f02433627282090a161718191a25262728292a3435363738393a434445464748494a535455565758595a6364"
    "65666768696a737475767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7"
    "b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9faffda000801"
    "0100003f00fbd3ffd9"
)


def labelled_photo(caption: str = "camera giả lập") -> bytes:
    """A JPEG that says what it is: screenshots taken with the test stand-ins show a picture
    labelled as a test photo, never one that passes for a real capture."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (480, 320), (255, 236, 179))
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(str(ASSETS_DIR / "fonts" / "DejaVuSans-Bold.ttf"), 30)
    small = ImageFont.truetype(str(ASSETS_DIR / "fonts" / "DejaVuSans.ttf"), 20)
    draw.rectangle([6, 6, 473, 313], outline=(230, 81, 0), width=8)
    draw.text((240, 140), "ẢNH THỬ NGHIỆM", font=font, fill=(120, 40, 0), anchor="mm")
    draw.text((240, 190), caption[:40], font=small, fill=(120, 40, 0), anchor="mm")
    out = io.BytesIO()
    img.save(out, "JPEG", quality=80)
    return out.getvalue()


class StandInCamera(Camera):
    available = True

    async def capture(self) -> bytes | None:
        return labelled_photo()


FIX = Position(21.0368, 105.8346, accuracy_m=8.4)  # near the Ba Đình ward office


class StandInPosition(PositionProvider):
    available = True

    async def locate(self) -> Position | None:
        return FIX


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    data_dir = Path(os.environ["COMMUNE_DATA_DIR"])
    ft.run(
        make_main(data_dir, camera=StandInCamera(), position=StandInPosition()),
        view=ft.AppView.WEB_BROWSER,
        host="127.0.0.1",
        port=args.port,
        no_cdn=True,
        assets_dir=str(ASSETS_DIR),
    )


if __name__ == "__main__":
    main()
