"""Exit policy: what is live where control leaves the analysed code (design.md "Exits").

Loaded from a convention file (TOML; the shipped default describes Linux ia64). The policy is
an object the liveness solver asks, never a constant inside it: `rfi` exits, external
symbols, `br.call` targets, the implicit nested-TLB-miss vector. An unknown target means
every location is live, and the policy says so in `why()`.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

from .diag import IvtxError, Loc

BANKED = range(16, 32)

_SIMPLE_FILES = {"r": (1, 127), "p": (1, 63), "b": (0, 7), "f": (2, 127)}


def all_register_locations() -> list[str]:
    """Every register location the analysis tracks by default, in a stable order."""
    out = []
    for n in range(1, 128):
        if n in BANKED:
            out += [f"r{n}@0", f"r{n}@1"]
        else:
            out.append(f"r{n}")
    out += [f"p{n}" for n in range(1, 64)]
    out += [f"b{n}" for n in range(8)]
    out += [f"f{n}" for n in range(2, 128)]
    return out


_RANGE = re.compile(r"^([rpbf])(\d+)(?:-\1?(\d+))?(?:@([01]))?$")
_AR_RANGE = re.compile(r"^ar\.k(\d)-ar\.k(\d)$")


def expand_item(item: str, context: list[str] | None, where: str) -> list[str]:
    """One location-set item -> locations. `r16-r31@0` -> [r16@0 .. r31@0]; `r24` -> both banks."""
    if item == "@all":
        return ["@all"]
    if item == "@context":
        if context is None:
            raise IvtxError(f"{where}: '@context' used before the context is defined", Loc(where, 1))
        return list(context)
    m = _RANGE.match(item)
    if m:
        kind, lo, hi, bank = m.group(1), int(m.group(2)), m.group(3), m.group(4)
        hi = int(hi) if hi is not None else lo
        first, last = _SIMPLE_FILES[kind]
        if not (first <= lo <= hi <= last) and not (kind == "p" and lo == 0):
            raise IvtxError(f"{where}: bad register range '{item}'", Loc(where, 1))
        out = []
        for n in range(lo, hi + 1):
            if kind == "r" and n in BANKED:
                banks = [bank] if bank is not None else ["0", "1"]
                out += [f"r{n}@{b}" for b in banks]
            else:
                if bank is not None:
                    raise IvtxError(f"{where}: only r16-r31 have banks: '{item}'", Loc(where, 1))
                out.append(f"{kind}{n}")
        return out
    m = _AR_RANGE.match(item)
    if m:
        return [f"ar.k{n}" for n in range(int(m.group(1)), int(m.group(2)) + 1)]
    if re.match(r"^(ar|cr|psr)\.[a-z0-9]+$|^cfm$|^rse$|^mem$|^tlb$", item):
        return [item]
    raise IvtxError(f"{where}: unknown location '{item}'", Loc(where, 1))


def expand_set(items: list[str], context: list[str] | None, where: str) -> frozenset[str]:
    out: set[str] = set()
    for item in items:
        if not isinstance(item, str):
            raise IvtxError(f"{where}: location items are strings, got {item!r}", Loc(where, 1))
        if item.startswith("-"):
            out -= set(expand_item(item[1:], context, where))
        else:
            out |= set(expand_item(item, context, where))
    return frozenset(out)


@dataclass(frozen=True)
class Summary:
    """What code outside the file reads (live_in) and may overwrite (clobbers) before returning."""

    name: str
    live_in: frozenset[str]
    clobbers: frozenset[str] = frozenset()
    origin: str = ""  # where the summary came from, for reports
    claim: str | None = None  # a claim the user made about code ivtx cannot see ([unresolved_calls])

    @property
    def everything(self) -> bool:
        return "@all" in self.live_in


@dataclass
class ExitPolicy:
    context: frozenset[str]
    rfi: Summary
    nested: Summary
    symbols: dict[str, Summary] = field(default_factory=dict)
    c_functions: dict[str, Summary] = field(default_factory=dict)
    source: str = "conventions.toml"
    # [unresolved_calls]: the summary every untraced br.call gets (None: everything is live there)
    unresolved_calls: Summary | None = None

    def symbol(self, name: str) -> Summary:
        """Summary for a branch to `name` outside the file; unknown = everything live."""
        s = self.symbols.get(name) or self.c_functions.get(name)
        if s is not None:
            return s
        if name.startswith("return via "):
            return Summary(name, frozenset({"@all"}),
                           origin=f"{name} to a caller ivtx does not see: everything is live")
        return Summary(name, frozenset({"@all"}),
                       origin=f"branch to '{name}', which has no summary in {self.source} or an inline "
                              f"'ivtx: summary' comment: everything is live")

    def call(self, name: str | None) -> Summary:
        """Summary for `br.call` to `name` (None: the target was not resolved)."""
        if name is None:
            if self.unresolved_calls is not None:
                return self.unresolved_calls
            return Summary("?", frozenset({"@all"}),
                           origin="br.call target not traced to a label (no summary applies): everything is live")
        return self.symbol(name)

    def without_claims(self) -> "ExitPolicy":
        """The same policy without the [unresolved_calls] claim (what ivtx would prove alone)."""
        from dataclasses import replace

        return replace(self, unresolved_calls=None)

    def add(self, summary: Summary) -> None:
        self.symbols[summary.name] = summary


def _load_toml(text: str, source: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise IvtxError(f"bad convention file: {exc}", Loc(source, 1)) from None


def _extend(data: dict, source: str) -> dict:
    """`extends = "default"`: the shipped file, with this file's sections on top. A [symbol.X] or
    [calling_convention.X] table replaces the default's table of that name; any other key or table
    (context, rfi, nested, unresolved_calls) replaces the default's."""
    base = data.pop("extends")
    if base != "default":
        raise IvtxError(f"{source}: extends = {base!r}: only \"default\" (the shipped convention file) can be "
                        "extended", Loc(source, 1))
    out = _load_toml(_default_text(), "conventions.toml")
    for key, value in data.items():
        if key in ("symbol", "calling_convention") and isinstance(value, dict):
            out.setdefault(key, {}).update(value)
        else:
            out[key] = value
    return out


def parse_conventions(text: str, source: str) -> ExitPolicy:
    data = _load_toml(text, source)
    if "extends" in data:
        data = _extend(data, source)
    known = {"context", "rfi", "nested", "symbol", "calling_convention", "unresolved_calls"}
    for key in data:
        if key not in known:
            raise IvtxError(f"{source}: unknown section '{key}' (known: {', '.join(sorted(known))})", Loc(source, 1))
    context = sorted(expand_set(data.get("context", []), None, source))
    ctx = list(context)

    def summ(name: str, table: dict, origin: str) -> Summary:
        for k in table:
            if k not in ("live_in", "clobbers", "functions"):
                raise IvtxError(f"{source}: [{origin}] unknown key '{k}'", Loc(source, 1))
        return Summary(name, expand_set(table.get("live_in", ["@all"]), ctx, source),
                       expand_set(table.get("clobbers", []), ctx, source), origin=f"{source} [{origin}]")

    rfi = summ("rfi", data.get("rfi", {"live_in": ["@context"]}), "rfi")
    nested = summ("nested_dtlb_miss", data.get("nested", {"live_in": ["@all"]}), "nested")
    policy = ExitPolicy(frozenset(context), rfi, nested, source=source)
    for name, table in data.get("symbol", {}).items():
        policy.symbols[name] = summ(name, table, f"symbol.{name}")
    conventions: dict[str, Summary] = {}
    for conv, table in data.get("calling_convention", {}).items():
        s = conventions[conv] = summ(conv, table, f"calling_convention.{conv}")
        for fn in table.get("functions", []):
            policy.c_functions[fn] = Summary(fn, s.live_in, s.clobbers, origin=f"{source} [calling_convention.{conv}]")
    if "unresolved_calls" in data:
        policy.unresolved_calls = _unresolved_calls(data["unresolved_calls"], conventions, source)
    return policy


def _unresolved_calls(table, conventions: dict[str, Summary], source: str) -> Summary:
    """[unresolved_calls] convention = "c": every br.call whose target ivtx cannot trace (`br.call
    b6=b6` through a table) follows that calling convention. A claim the user makes about their
    code; every register it frees is reported with it (ivtx.claims)."""
    if not isinstance(table, dict) or set(table) != {"convention"} or not isinstance(table["convention"], str):
        raise IvtxError(f"{source}: [unresolved_calls] takes one key, convention = \"NAME\" (a "
                        "[calling_convention.NAME] of the file)", Loc(source, 1))
    name = table["convention"]
    if name not in conventions:
        known = ", ".join(sorted(conventions)) or "none"
        raise IvtxError(f"{source}: [unresolved_calls] convention = \"{name}\": no [calling_convention.{name}] "
                        f"(known: {known})", Loc(source, 1))
    conv = conventions[name]
    claim = f"follows the {name.upper() if len(name) == 1 else name} conventions (your claim in {source})"
    return Summary("?", conv.live_in, conv.clobbers, claim=claim,
                   origin=f"br.call target not traced; {source} [unresolved_calls] claims it follows "
                          f"[calling_convention.{name}]")


@lru_cache(maxsize=1)
def _default_text() -> str:
    return resources.files("ivtx.data").joinpath("conventions.toml").read_text()


def load_policy(path: str | None = None) -> ExitPolicy:
    if path is None:
        return parse_conventions(_default_text(), "conventions.toml")
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise IvtxError(f"cannot read convention file: {exc.strerror}", Loc(path, 1)) from None
    return parse_conventions(text, path)


_INLINE = re.compile(r"ivtx:\s*summary\s+([A-Za-z_.$][\w.$]*)\s+live_in=\[([^\]]*)\](?:\s+clobbers=\[([^\]]*)\])?")


def inline_summaries(sources: dict[str, list[str]], policy: ExitPolicy) -> list[Summary]:
    """Summaries declared in comments: `// ivtx: summary my_sym live_in=[r16@0, r1-r15] clobbers=[p6]`."""
    found = []
    for fname, lines in sources.items():
        for lineno, line in enumerate(lines, 1):
            m = _INLINE.search(line)
            if not m:
                continue
            where = f"{fname}:{lineno}"
            live = [x.strip() for x in m.group(2).split(",") if x.strip()]
            clob = [x.strip() for x in (m.group(3) or "").split(",") if x.strip()]
            s = Summary(m.group(1), expand_set(live, list(policy.context), where),
                        expand_set(clob, list(policy.context), where), origin=f"inline at {where}")
            policy.add(s)
            found.append(s)
    return found
