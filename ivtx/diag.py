"""Source coordinates and diagnostics: `file:line:col: error: msg`, the line and a caret."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Loc:
    """Where a statement came from in the user's files (1-based line and column).

    `via` is the location of the macro use (C preprocessor or gas `.macro`) that
    produced this text, outermost last: `Loc('minstate.h', 60, 2, via=Loc('ivt.S', 790, 2))`.
    """

    file: str
    line: int
    col: int = 1
    via: "Loc | None" = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    @property
    def use_site(self) -> "Loc":
        """The outermost location: the line in the file the user is reading."""
        loc = self
        while loc.via is not None:
            loc = loc.via
        return loc

    def chain(self) -> list["Loc"]:
        out, loc = [], self
        while loc is not None:
            out.append(loc)
            loc = loc.via
        return out


@dataclass(slots=True)
class Diagnostic:
    severity: str  # "error" | "warning" | "note"
    message: str
    loc: Loc | None = None

    def render(self, sources: "SourceCache | None" = None) -> str:
        head = f"{self.loc}: {self.severity}: {self.message}" if self.loc else f"ivtx: {self.severity}: {self.message}"
        if self.loc is None:
            return head
        lines = [head]
        cache = sources or _DEFAULT_CACHE
        text = cache.line(self.loc.file, self.loc.line)
        if text is not None:
            shown = text.expandtabs(8) if "\t" in text else text
            col = _display_col(text, self.loc.col)
            lines.append(shown)
            lines.append(" " * max(col - 1, 0) + "^")
        via = self.loc.via
        while via is not None:
            lines.append(f"{via}: note: expanded from here")
            via = via.via
        return "\n".join(lines)


def _display_col(text: str, col: int) -> int:
    """Column on screen after tab expansion (tabs every 8)."""
    out = 0
    for ch in text[: max(col - 1, 0)]:
        out = (out // 8 + 1) * 8 if ch == "\t" else out + 1
    return out + 1


class IvtxError(Exception):
    """A user-facing error with a location; the CLI prints it and exits 2."""

    def __init__(self, message: str, loc: Loc | None = None, *, notes: list[Diagnostic] | None = None):
        super().__init__(message)
        self.message = message
        self.loc = loc
        self.notes = notes or []

    @property
    def diagnostic(self) -> Diagnostic:
        return Diagnostic("error", self.message, self.loc)

    def render(self, sources: "SourceCache | None" = None) -> str:
        parts = [self.diagnostic.render(sources)]
        parts += [n.render(sources) for n in self.notes]
        return "\n".join(parts)


@dataclass
class SourceCache:
    """Lines of source files, for carets. Files registered from memory win over disk."""

    texts: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, text: str) -> None:
        self.texts[name] = text.splitlines()

    def line(self, name: str, lineno: int) -> str | None:
        lines = self.texts.get(name)
        if lines is None:
            try:
                data = Path(name).read_bytes()
            except OSError:
                return None
            lines = data.decode("utf-8", "replace").splitlines()
            self.texts[name] = lines
        if 1 <= lineno <= len(lines):
            return lines[lineno - 1]
        return None


_DEFAULT_CACHE = SourceCache()


def default_sources() -> SourceCache:
    return _DEFAULT_CACHE
