"""Names clients send (dataset names, file names): kept as given, less what cannot be stored.

Postgres refuses NUL in text and lone surrogates in UTF-8; control characters only garble listings.
"""

from __future__ import annotations

import unicodedata

UNSTORABLE_CATEGORIES = ("Cc", "Cs")  # control characters (NUL among them) and lone surrogates


def storable(text: str) -> str:
    return "".join(ch for ch in text if unicodedata.category(ch) not in UNSTORABLE_CATEGORIES)
