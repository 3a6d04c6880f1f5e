"""`commune report weekly|audits|ward`: oversight reports as XLSX or PDF.

With --db the figures come from the server's database (its SQL, server/services/reports.py);
without it, from this device's store: the snapshots a supervisor pulled, else the device's own
dossiers counted by the same definitions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from app.cli import CliError
from app.cli.common import add_store_options, open_store
from app.domain import audit as A
from app.domain import oversight as O
from app.domain import reference
from app.domain.calendar import vn_today


def register(subparsers: argparse._SubParsersAction) -> None:
    report = subparsers.add_parser("report", help="oversight reports (XLSX, PDF) across wards")
    rsub = report.add_subparsers(dest="report_command", metavar="KIND", required=True)
    helps = {
        "weekly": "weekly progress report of dossiers and audits across wards",
        "audits": "summary of all wards, one row per ward (dossier and audit figures)",
        "ward": "one ward's audit report with sections, failing items and photo thumbnails",
    }
    for kind, text in helps.items():
        p = rsub.add_parser(kind, help=text, description=text)
        add_store_options(p)
        p.add_argument("--format", choices=("xlsx", "pdf"), default="xlsx",
                       help="file format (default xlsx; the ward report is PDF only)")
        p.add_argument("--out", type=Path, required=True, help="file to write")
        p.add_argument("--ward", help="5-digit ward code (required for 'ward'; else a filter)")
        p.add_argument("--from", dest="date_from", type=dt.date.fromisoformat,
                       help="first day of receipt counted, YYYY-MM-DD (Vietnam time)")
        p.add_argument("--to", dest="date_to", type=dt.date.fromisoformat,
                       help="last day of receipt counted, YYYY-MM-DD (Vietnam time)")
        p.add_argument("--db", help="the server's database URL (sqlite:///… or postgresql://…)")
        p.add_argument("--attachments", type=Path,
                       help="with --db: the server's attachment folder (photo thumbnails)")
        p.add_argument("--key-file", type=Path,
                       help="with --db: the server data key file that opens the sealed audit "
                       "answers and photos (default COMMUNE_SERVER_KEY_FILE; COMMUNE_SERVER_KEY "
                       "wins)")
        p.set_defaults(handler=cmd_report, kind=kind)
    publish = rsub.add_parser(
        "publish",
        help="write each ward's figures as report snapshots that supervisors' devices pull",
        description="On the server: compute the figures of every ward (dossiers per week and "
        "procedure, the latest audit per section) and write one report_snapshot record per ward "
        "whose figures changed, so supervisors receive them through the normal pull.",
    )
    publish.add_argument("--data-dir", default=argparse.SUPPRESS,
                         help="the server's data folder (its embedded SQLite database)")
    publish.add_argument("--db", metavar="URL", help="database URL (default: COMMUNE_DATABASE_URL, "
                         "else the SQLite file in the data folder)")
    publish.set_defaults(handler=cmd_publish)


def cmd_publish(args: argparse.Namespace) -> int:
    from app.cli.server_cmds import _engine, settings_for
    from server.services import reports

    _load_server_key(settings_for(args).key_file)
    engine = _engine(args)
    try:
        written = _sealed_key_needed(reports.publish_snapshots, engine, vn_today())
    finally:
        engine.dispose()
    print(f"published {written} ward snapshots")
    return 0


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _ward_name(code: str) -> str:
    try:
        return reference.ward(code).name
    except KeyError:
        return code


def cmd_report(args: argparse.Namespace) -> int:
    from app.reports import oversight as R

    if args.kind == "ward" and not args.ward:
        raise CliError("'commune report ward' needs --ward CODE")
    if args.kind == "ward" and args.format != "pdf":
        raise CliError("the ward report is a PDF: use --format pdf")
    if args.date_from and args.date_to and args.date_from > args.date_to:
        raise CliError("--from is after --to")
    _say(R._vi("report.progress.figures"))
    today = vn_today()
    wards = [args.ward] if args.ward else None
    if args.db:
        data, photos = _sealed_key_needed(_from_server, args, today, wards)
    else:
        data, photos = _from_device(args, today, wards)
    if args.kind == "ward":
        line = next((w for w in data.wards if w.code == args.ward), None)
        line = line or R.WardLine(args.ward, _ward_name(args.ward), O.DossierFigures())
        version = A.LATEST_TEMPLATE
        body = R.ward_audit_pdf(line, A.template(version), photos, today)
    elif args.format == "xlsx":
        body = R.summary_xlsx(data, _say)
    else:
        body = R.weekly_pdf(data, _say)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(body)
    _say(R._vi("report.progress.saved", path=args.out))
    return 0


def _lines(wholes: dict[str, O.DossierFigures], audits: dict[str, O.WardAuditFigures]):
    from app.reports.oversight import WardLine

    codes = sorted(set(wholes) | set(audits))
    return [
        WardLine(c, _ward_name(c), wholes.get(c) or O.DossierFigures(key={"ward": c}),
                 audits.get(c))
        for c in codes
    ]


def _from_server(args, today: dt.date, wards):
    from app.reports.oversight import Photo, ReportData
    from server.core.db import make_engine
    from server.services import reports

    key_file = args.key_file or os.environ.get("COMMUNE_SERVER_KEY_FILE")
    _load_server_key(Path(key_file) if key_file else None)
    engine = make_engine(args.db, pool_size=2)
    try:
        by_ward = reports.dossier_figures(engine, today, ("ward",), args.date_from, args.date_to,
                                          wards)
        weeks = reports.dossier_figures(engine, today, ("week",), args.date_from, args.date_to,
                                        wards)
        audits = reports.audit_figures(engine, wards)
        photos: list[Photo] = []
        if args.kind == "ward" and args.ward in audits and audits[args.ward].latest_id:
            for label, sha in reports.audit_photos(engine, audits[args.ward].latest_id):
                photo = _server_photo(args.attachments, sha)
                if photo is not None:
                    photos.append(Photo(label, photo))
    finally:
        engine.dispose()
    data = ReportData(today, args.date_from, args.date_to,
                      _lines({f.key["ward"]: f for f in by_ward}, audits), weeks)
    return data, photos


def _sealed_key_needed(fn, *args):
    """Run `fn`; sealed audit answers this process holds no key for stop it with the reason."""
    from server.core.sealing import SealError

    try:
        return fn(*args)
    except SealError as exc:
        raise CliError(
            "the server's sealed audit answers do not open: give the server data key "
            f"(--key-file or COMMUNE_SERVER_KEY) ({exc})"
        ) from exc


def _load_server_key(key_file: Path | None) -> None:
    """Make the server data key known to this process: audit answers and attachment bytes are
    sealed at rest on the server. An existing key file or COMMUNE_SERVER_KEY only; a report
    never makes a key (a new key would open nothing)."""
    from server.core import sealing

    if os.environ.get(sealing.KEY_ENV, "").strip() or (key_file is not None and key_file.is_file()):
        sealing.install(sealing.load_keyring(key_file or Path(os.devnull)))


def _server_photo(folder: Path | None, sha256: str) -> bytes | None:
    """A photo's plaintext from the server's sealed attachment store, or None when it is not
    there or does not open (the report goes on without that thumbnail)."""
    from server.core.sealing import SealError
    from server.storage import read_blob

    if folder is None or not (folder / sha256[:2] / sha256).is_file():
        return None
    try:  # read only: a report never makes folders or changes modes in the server's store
        return b"".join(read_blob(folder, sha256))
    except (SealError, OSError, ValueError):
        return None


def _from_device(args, today: dt.date, wards):
    from app.reports.oversight import Photo, data_from_snapshots

    store = open_store(args)
    try:
        snapshots = store.oversight.snapshots(wards) or [
            s for s in store.oversight.local_snapshots(today)
            if wards is None or s.ward_code in wards
        ]
        data = data_from_snapshots(snapshots, today, _ward_name, args.date_from, args.date_to)
        audits = {s.ward_code: s.audit for s in snapshots if s.audit}
        photos: list[Photo] = []
        audit = audits.get(args.ward) if args.ward else None
        if args.kind == "ward" and audit and audit.latest_id:
            tpl = A.template()
            labels = {i.id: i.label for i in tpl.items()}
            try:
                held = store.audits.get(audit.latest_id)
            except KeyError:
                held = None
            for item_id, answer in (held.answers.items() if held else []):
                for sha in answer.photos:
                    if store.attachments.has(sha):
                        label = labels.get(item_id, item_id)
                        photos.append(Photo(label, store.attachments.read(sha)))
    finally:
        store.close()
    return data, photos
