"""Helpers that build small IVT files for the analysis tests (shapes named by what they show)."""

from __future__ import annotations

from ivtx.cfg import build_cfg
from ivtx.conventions import load_policy, parse_conventions
from ivtx.liveness import solve
from ivtx.parse import parse_text
from ivtx.sites import analyse_sites, find_sites

HEAD = """\
	.section .text..ivt,"ax"
	.align 32768
	.global ia64_ivt
ia64_ivt:
"""


def vector(offset: int, name: str, body: str) -> str:
    return f"\t.org ia64_ivt+{offset:#06x}\n{name}:\n{body}\n"


def ivt(*vectors: str) -> str:
    return HEAD + "".join(vectors)


class Analysed:
    def __init__(self, text: str, conventions: str | None = None):
        self.program = parse_text(text, "t.s")
        self.cfg = build_cfg(self.program)
        self.policy = parse_conventions(conventions, "conv.toml") if conventions else load_policy()
        self.live = solve(self.cfg, self.policy)
        self.sites = find_sites(self.cfg)
        analyse_sites(self.cfg, self.live, self.sites)

    def pos(self, needle: str, nth: int = 0) -> int:
        """Code position of the nth instruction whose printed text contains `needle`."""
        from ivtx.printer import statement_text

        hits = [p for p, s in enumerate(self.cfg.code) if needle in statement_text(s)]
        assert len(hits) > nth, f"{needle!r} not found in {[statement_text(s) for s in self.cfg.code]}"
        return hits[nth]

    def live_after(self, needle: str, nth: int = 0) -> set[str]:
        return set(self.live.names(self.live.live_after(self.pos(needle, nth))))

    def site(self, needle: str):
        p = self.pos(needle)
        for s in self.sites:
            if s.pos <= p < s.pos + s.length:
                return s
        raise AssertionError(f"no site at {needle!r}")

    def edges(self, kind: str | None = None) -> list[tuple]:
        return [(a, b, d["kind"]) for a, b, d in self.cfg.graph.edges(data=True) if kind is None or d["kind"] == kind]
