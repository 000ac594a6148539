"""``spanlake erase``: the right-to-erasure command's flags, help and output (the work is in collector.storage.erasure).

Kept out of ui/cli.py so the command's long help and its printing live with the command; only
argparse is imported at module level, so ``spanlake --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

ERASE_HELP = "delete a user's or a trace's rows from spans, logs and span_content (right to erasure)"
ERASE_DESCRIPTION = """\
Delete rows from spans, logs and span_content, and record the erasure in the `erasures` table.

What goes:
  --user-id U   every trace with a span whose user_id is U: all its spans (the app's own spans too), its
                span_content rows and its logs; and every log record carrying U in a user attribute
                (user.id, enduser.id, ...), with or without a trace.
  --where SQL   every trace with a span matching the predicate over `spans` (e.g. "user_id = 'u-1'",
                "tags['feature'] = 'x' AND dt < '2026-11-01'"): its spans, span_content rows and logs.
                Trace-less logs are not matched: use --user-id for a person.
  --trace-id T  those traces: their spans, span_content rows and logs.
  --spans-only  with --user-id or --where: only the picked spans and the logs and span_content rows of
                those spans (same trace and span id), not their whole traces; for traces that serve
                several users (a batch job). The app's own spans of the request stay.

Run with --dry-run first: it prints how many rows each table would lose, deleting nothing.
The deleted rows stay in replaced files on disk until vacuum: the collector's maintenance vacuums
them vacuum_grace_s after the erasure (at its next round, every compact_interval_s; or run
`spanlake compact`); --vacuum-now deletes them right away (a reader holding an older snapshot at
that moment fails its query once), and also files abandoned by write attempts that lost a commit race
which still hold copies of the erased rows (the maintenance vacuum takes those after an hour). The erasure is recorded with its time, the filter as given and
the rows deleted per table, never the erased data: `spanlake erase --list` shows the log.

The collector may keep running. Matching rows that reach the lake after the erasure began (spans
still in the write-ahead log, new traces of the user) are not deleted: run the same erasure again.
"""


def add_erase_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``erase`` on the CLI's subparsers; the caller adds the data-dir flags and the handler."""
    p: argparse.ArgumentParser = sub.add_parser("erase", help=ERASE_HELP, description=ERASE_DESCRIPTION,
                                                formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--user-id", action="append", metavar="U", help="erase this user (repeatable)")
    what.add_argument("--where", metavar="SQL", help="erase the traces of spans matching this predicate over spans")
    what.add_argument("--trace-id", action="append", metavar="T", help="erase this trace (32 hex; repeatable)")
    what.add_argument("--list", action="store_true", help="show the erasure log and exit")
    p.add_argument("--dry-run", action="store_true", help="print the rows each table would lose; delete nothing")
    p.add_argument("--spans-only", action="store_true",
                   help="erase only the picked spans (and their logs and content), not their whole traces")
    p.add_argument("--vacuum-now", action="store_true",
                   help="delete the replaced files from disk now instead of after vacuum_grace_s")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help="format of --list")
    return p


def run_erase(settings: Any, args: argparse.Namespace) -> int:
    """Carry out ``spanlake erase`` with the parsed flags; the exit code (2 for a bad request)."""
    from spanlake.collector.storage import erasure
    from spanlake.ui.formatting import format_table

    lake_dir = settings.lake_dir
    if args.list:
        print(format_table(erasure.list_erasures(lake_dir), args.format))
        return 0
    try:
        request = erasure.request_from(args.where, args.user_id, args.trace_id, args.spans_only)
        if args.dry_run:
            plan = erasure.plan_erasure(lake_dir, request)
            scope = "spans in" if request.spans_only else "the whole of"
            print(f"dry run: {request.kind} {request.filter_text!r}: {scope} {len(plan.trace_ids)} traces; "
                  f"nothing deleted")
            for table in erasure.ERASED_TABLES:
                print(f"  {table}: {plan.counts[table]} rows would be deleted")
            return 0
        result = erasure.erase(lake_dir, request, vacuum=args.vacuum_now)
    except erasure.ErasureError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    scope = "spans in" if request.spans_only else "the whole of"
    print(f"erased {request.kind} {request.filter_text!r}: {scope} {len(result.plan.trace_ids)} traces")
    for table in erasure.ERASED_TABLES:
        print(f"  {table}: {result.deleted[table]} rows deleted")
    if args.vacuum_now:
        print(f"vacuum: {result.files_vacuumed} replaced files deleted from disk")
    else:
        print(f"the replaced files stay on disk until the collector's maintenance vacuum after vacuum_grace_s "
              f"({settings.vacuum_grace_s:.0f}s; or `spanlake compact` then); --vacuum-now deletes them at once")
    print(f"recorded in the erasure log at {result.erased_at:%Y-%m-%d %H:%M:%S} UTC (spanlake erase --list)")
    return 0
