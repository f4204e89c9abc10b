"""Text that reaches a terminal: control characters (ANSI escapes, BEL, bidi overrides) removed."""

from __future__ import annotations

import re
import unicodedata

# C0/C1 controls except tab/newline, DEL, and the bidi/format characters that reorder or hide text
_UNSAFE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI sequences (colours, cursor moves)
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC sequences (titles, hyperlinks)
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
)


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with terminal control characters removed (newlines too unless `keep_newlines`)."""
    cleaned = _UNSAFE.sub("", text)
    if not keep_newlines:
        cleaned = cleaned.replace("\n", " ").replace("\r", " ")
    return unicodedata.normalize("NFC", cleaned)
