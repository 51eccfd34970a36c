"""Text normalisation for hashing (exact dedup keys and MinHash shingles), vectorised with pyarrow.

Each step is a switch, like datatrove's ``TextNormConfig``: case, accents, digits, punctuation,
whitespace. Punctuation and symbols become spaces (``"don't"`` -> ``"don t"``) so words glued by
punctuation still split; digit runs become ``0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class TextNormalization:
    lowercase: bool = True
    accents: bool = True
    digits: bool = True
    punctuation: bool = True
    whitespace: bool = True

    def describe(self) -> str:
        """Short stable label recorded with models and indexes (what was normalised how)."""
        flags = [name for name in ("lowercase", "accents", "digits", "punctuation", "whitespace")
                 if getattr(self, name)]
        return "norm-v1:" + ("+".join(flags) or "none")


def normalize(texts: pa.Array, options: TextNormalization) -> pa.Array:
    """Apply the enabled steps to every string of ``texts`` (nulls stay null)."""
    out = texts
    if options.accents:
        decomposed = pc.utf8_normalize(out, form="NFD")
        out = pc.replace_substring_regex(decomposed, pattern=r"\p{Mn}+", replacement="")
    if options.lowercase:
        out = pc.utf8_lower(out)
    if options.digits:
        out = pc.replace_substring_regex(out, pattern=r"\d+", replacement="0")
    if options.punctuation and options.whitespace:  # one regex pass instead of two
        return pc.utf8_trim_whitespace(
            pc.replace_substring_regex(out, pattern=r"[\p{P}\p{S}\s]+", replacement=" "))
    if options.punctuation:
        out = pc.replace_substring_regex(out, pattern=r"[\p{P}\p{S}]+", replacement=" ")
    if options.whitespace:
        out = pc.utf8_trim_whitespace(pc.replace_substring_regex(out, pattern=r"\s+", replacement=" "))
    return out
