"""Fuzzing the plist readers every device message goes through: check-ins, command
results (sync and the off-loop path), the dictionary reader and its plain-form fast path.
Each refuses with its own error or answers; none crashes, hangs or balloons."""

from __future__ import annotations

import asyncio
import plistlib

from hypothesis import example, given

from orchardist import plistxml
from orchardist.mdm.checkin import CheckinError, parse_checkin
from orchardist.mdm.reports import ReportError, parse_report, read_report
from orchardist.plists import MAX_DEPTH, PlistError, load_dictionary
from tests.fuzz.harness import bounded_call, fuzzing, traced
from tests.fuzz.seeds import messages, plist_bodies, reports
from tests.web.mutation_seeds import checkins
from tests.web.plists import shared_wide

CHECKINS = plist_bodies(checkins("00008110-000A1C2E3E88801E"))
REPORTS = plist_bodies(reports())
ANY = plist_bodies(messages())
# Half a megabyte of references to one shared array: the tree check walked every place it
# was referenced, up to four values per byte before refusing (3.4 s of CPU under
# tracemalloc); it now measures a shared container once. Found by `make fuzz`.
SHARED_WIDE = shared_wide(500_000, 200)


@fuzzing(100)
@given(body=CHECKINS)
@example(body=SHARED_WIDE)
def test_check_ins(body: bytes) -> None:
    with traced():
        bounded_call("checkin", lambda: parse_checkin(body), (CheckinError,), size=len(body))


@fuzzing(100)
@given(body=REPORTS)
@example(body=SHARED_WIDE)
def test_reports(body: bytes) -> None:
    with traced():
        bounded_call("report", lambda: parse_report(body), (ReportError,), size=len(body))


@fuzzing(30)
@given(body=plist_bodies(reports(), huge_share=4))
def test_reports_read_off_the_loop(body: bytes) -> None:
    """read_report: large bodies take a worker thread, with the same refusals."""
    bounded_call("read_report", lambda: asyncio.run(read_report(body)), (ReportError,))


@fuzzing(100)
@given(body=ANY)
@example(body=SHARED_WIDE)
def test_dictionaries(body: bytes) -> None:
    with traced():
        bounded_call("load_dictionary", lambda: load_dictionary(body), (PlistError,),
                     size=len(body))  # fmt: skip


@fuzzing(100)
@given(body=ANY)
def test_plain_form_reads_as_plistlib_does(body: bytes) -> None:
    """plistxml.read declines (None) or answers exactly what plistlib reads, never raises."""
    with traced():
        plain = bounded_call("plistxml", lambda: plistxml.read(body, MAX_DEPTH), (),
                             size=len(body))  # fmt: skip
    if plain is not None:
        assert repr(plistlib.loads(body)) == repr(plain)
