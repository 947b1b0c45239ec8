"""Reading an operator's CSV file (a ticket import, a re-seating file) line by line, never
losing a line silently.

Python's ``csv`` module, strict, over the decoded text (``surrogateescape`` keeps a bad byte
sequence in its own line, so that line alone is refused). A quote left open swallows every
later line into one field: such a field spanning lines is reported with the line it starts on
instead of being read as data.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from hub.errors import BadInput


def read_csv(data: bytes, *, empty: str) -> tuple[list[str], Iterator[tuple[int, list[str] | str]]]:
    """The header, and for each non-blank line after it ``(line number, values)`` or
    ``(line number, why it cannot be read)``. ``empty`` is the message for a file with no header."""
    text = data.decode("utf-8-sig", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise BadInput(empty, code="empty_file") from None
    except csv.Error as exc:
        raise BadInput(f"line 1: unreadable CSV header: {exc}", code="bad_csv") from None

    def lines() -> Iterator[tuple[int, list[str] | str]]:
        while True:
            start = reader.line_num + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield start, (f"unreadable CSV: {exc} (a quote opened on line {start} is not closed properly;"
                              " every line after it was read into that field)"
                              if "end of data" in str(exc) else f"unreadable CSV: {exc}")
                continue
            if reader.line_num > start:
                yield start, (f"a quoted field runs from line {start} to line {reader.line_num}: a quote left"
                              " open? The lines inside it were not read")
                continue
            if not values or all(not v.strip() for v in values):
                continue
            yield start, values

    return header, lines()
