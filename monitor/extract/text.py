"""The text rules: what a title or description is once read from a page (pure, engine-free).

Text arrives entity-decoded from the parser. Here it is Unicode NFC-normalised, stripped of
invisible and control characters, and white-space-normalised (SPEC: "Entries, identity and
states"), so that two spellings a reader cannot tell apart are the same text.
"""

from __future__ import annotations

import re
import unicodedata

# Dropped without a trace: C0 and C1 controls that are not white space (NUL included), never
# text a user wrote; and the invisible characters SPEC names (soft hyphen, zero-width space and
# joiners, word joiner, BOM), which a page may sprinkle into a word without changing what a
# reader sees.
_INVISIBLE = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\xad\u200b-\u200d\u2060\ufeff]+")
# Only the control characters: what the parser must never see (a NUL is a parse error).
CONTROLS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f]+")
# What _INVISIBLE matches of ASCII (the C0 controls but tab..CR, and DEL), as bytes.translate
# deletes them.
ASCII_CONTROLS = bytes([*range(0x00, 0x09), *range(0x0E, 0x20), 0x7F])


def normalise_text(text: str) -> str:
    """`text` as stored: invisible characters gone, NFC, each white-space run 1 space, trimmed."""
    if text.isascii():  # known without a scan; most text on English pages
        # The same rule at C speed: of the invisible characters, ASCII holds only controls, and
        # NFC leaves ASCII as it is (a third of the regex's cost, which reads every character).
        text = text.encode("ascii").translate(None, ASCII_CONTROLS).decode("ascii")
    else:
        text = unicodedata.normalize("NFC", _INVISIBLE.sub("", text))
    # str.split() splits at Unicode's White_Space characters (tab..CR, space, NEL, no-break
    # space, the Zs spaces, line and paragraph separators) and at U+001C..U+001F, which Unicode
    # does not count as white space but which are gone already, as control characters.
    return " ".join(text.split())


# The first name of the rule, imported elsewhere: the same function.
normalise_space = normalise_text
