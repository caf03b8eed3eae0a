"""CSV bodies the API and the console send (reports, payment-batch results): one writer, one defence against
spreadsheet formula injection."""

import csv
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?", re.ASCII)


def csv_cell(value: Any) -> Any:
    """A spreadsheet would run a text cell starting with = + - @ tab or CR as a formula (CSV injection, OWASP):
    such cells get a leading apostrophe. Plain numbers (our negative amounts) stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([csv_cell(h) for h in header])
    writer.writerows([csv_cell("" if cell is None else cell) for cell in row] for row in rows)
    return buffer.getvalue()
