"""The preprocessor's output: lines of text whose every column maps back to a source Loc."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

from .diag import Diagnostic, Loc, SourceCache


@dataclass(slots=True)
class PPLine:
    """One output line. `spans` is sorted by start column (0-based in `text`); the text from
    `start` up to the next span's start came from `loc` onwards (same source line, columns
    advancing one by one when it is plain text; every character maps to `loc` itself when the
    text came out of a macro expansion, whose `via` names the use site)."""

    text: str
    spans: list[tuple[int, Loc, bool]]  # (start col, origin, advances: bool)

    def loc_at(self, col: int) -> Loc:
        """Source location of 0-based column `col` of this line."""
        if not self.spans:
            raise ValueError("PPLine without spans")
        i = bisect_right(self.spans, col, key=lambda s: s[0]) - 1
        start, loc, advances = self.spans[max(i, 0)]
        if not advances or col <= start:
            return loc
        return Loc(loc.file, loc.line, loc.col + (col - start), loc.via)


@dataclass
class Preprocessed:
    path: str
    lines: list[PPLine]
    warnings: list[Diagnostic] = field(default_factory=list)
    sources: SourceCache = field(default_factory=SourceCache)
    macros: frozenset[str] = frozenset()  # names defined at the end of preprocessing

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines) + "\n"


def passthrough(path: str, text: str) -> Preprocessed:
    """No preprocessing at all: each line maps to itself (for `.s` input and for tests)."""
    lines = [PPLine(t, [(0, Loc(path, i, 1), True)]) for i, t in enumerate(text.split("\n"), 1)]
    if lines and lines[-1].text == "":
        lines.pop()
    cache = SourceCache()
    cache.add(path, text)
    return Preprocessed(path, lines, sources=cache)
