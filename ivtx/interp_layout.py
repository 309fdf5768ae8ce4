"""Where the interpreter puts things: code in bundles at addresses gas would give it (so that
address arithmetic the code does itself works), data directives, symbols outside the file,
and the names code addresses get when runs of two programs are compared (design.md,
Verification; primer sections 3 and 4).
"""

from __future__ import annotations

import zlib

from . import regs
from .cfg import CFG
from .interp_state import CODE_BASE, DATA_BASE, EXT_BASE, MASK64, NotModelled
from .ir import BundleBegin, BundleEnd, Directive, Instruction, Label, Program, PvCall, Sym
from .layout import SectionTracker
from .parse import fold



def external_address(name: str) -> int:
    """A stable address for a symbol outside the file: page_fault is the same in every program."""
    return EXT_BASE + ((zlib.crc32(name.encode()) & 0xFFFFFFF) << 4)


class Layout:
    """Addresses: code is laid out in bundles as gas would (three slots, `movl`/`brl` take two, a
    label or an explicit `{ }` starts a bundle, a branch ends one, `.org` and `.align` move
    the location counter, each section has its own base), so that address arithmetic the code
    does itself (a `.org`-spaced table of stubs entered at base + 64*i) lands where it would.
    Data directives get data addresses; symbols outside the file stable hashed ones.  Exact
    slot positions do not matter: branches go to bundles, and a bundle's first instruction is
    where a branch to it continues."""

    def __init__(self, program: Program, cfg: CFG):
        self.cfg = cfg
        self.n = len(cfg.code)
        self.symbols: dict[str, int] = {}
        self.local_defs: dict[str, list[int]] = {}
        self.data: dict[int, int] = {}  # byte address -> value: the data directives' image
        self.externals: dict[int, str] = {}
        self.addr: list[int] = []  # code position -> bundle address
        self.bundle_first: dict[int, int] = {}  # bundle address -> first code position in it
        self._scan(program)
        # the return address of each br.call (the bundle after it), named as code_point names the
        # instruction there, even when the call is the region's last (no code at that address)
        self.after_call: dict[int, str] = {}
        counts: dict = {}
        for p, s in enumerate(cfg.code):
            if isinstance(s, Instruction) and s.mnemonic.startswith(("br.call", "brl.call")):
                region = cfg.region_of(p)
                k = counts[id(region)] = counts.get(id(region), 0) + 1
                self.after_call.setdefault(self.addr[p] + 16, f"{region_label(region)}/call{k}")

    def _scan(self, program: Program) -> None:
        from .cfg import _is_branch

        sections: dict[str, list[int]] = {}  # name -> [pc, slots used in the open bundle]
        tracker = SectionTracker()
        section = tracker.section
        cur = sections.setdefault(section, [CODE_BASE, 0])
        data_addr = DATA_BASE
        pending: list[Label] = []
        data: list[tuple[int, int, object]] = []  # (address, size, operand)

        def close() -> None:
            if cur[1]:
                cur[0] += 16
                cur[1] = 0

        for s in program.statements:
            if isinstance(s, Label):
                close()
                pending.append(s)
                continue
            if isinstance(s, (Instruction, PvCall)):
                pos = len(self.addr)
                width = 2 if isinstance(s, Instruction) and s.op in ("movl", "brl") else 1
                if cur[1] + width > 3:
                    close()
                if cur[1] == 0:
                    self.bundle_first.setdefault(cur[0], pos)
                for lab in pending:
                    self._define(lab, cur[0], pos)
                pending.clear()
                if isinstance(s, Instruction) and s.tag is not None:
                    self.local_defs.setdefault(s.tag, []).append(pos)
                self.addr.append(cur[0])
                cur[1] += width
                if _is_branch(s) or (isinstance(s, PvCall) and s.name == "RFI"):
                    close()
                continue
            if isinstance(s, (BundleBegin, BundleEnd)):
                close()
                continue
            if not isinstance(s, Directive):
                continue
            name = s.name
            if _data_size(name):
                size = _data_size(name)
                if name.lstrip(".").startswith("data") and not name.endswith(".ua"):
                    data_addr = (data_addr + size - 1) // size * size  # dataN aligns (dataN.ua does not)
                for lab in pending:
                    self._define(lab, data_addr, None)
                pending.clear()
                for a in s.args:
                    data.append((data_addr, _data_size(name), a))
                    data_addr += _data_size(name)
                continue
            new_section = tracker.switch(s)
            if new_section is not None:
                section = new_section
                cur = sections.setdefault(section, [CODE_BASE + (len(sections) << 28), 0])
            elif name == ".org" and s.args:
                close()
                try:
                    target = self.value(getattr(s.args[0], "expr", s.args[0]), None)
                except NotModelled:
                    continue
                if target >= cur[0]:
                    cur[0] = target
            elif name in (".align", ".balign") and s.args:
                close()
                n = getattr(s.args[0], "value", None)
                if n and n > 0 and n & (n - 1) == 0:
                    cur[0] = (cur[0] + n - 1) // n * n
                    data_addr = (data_addr + n - 1) // n * n  # (all data shares one stream)
        for lab in pending:
            self._define(lab, cur[0], len(self.addr))
        for addr, size, a in data:  # after every label has its address
            value = a.value if getattr(a, "value", None) is not None else self.value(getattr(a, "expr", a), None)
            for i in range(size):
                self.data[addr + i] = (value >> (8 * i)) & 0xFF

    def _define(self, lab: Label, addr: int, pos: int | None) -> None:
        if not lab.local:
            self.symbols.setdefault(lab.name, addr)
        elif pos is not None:
            self.local_defs.setdefault(lab.name, []).append(pos)

    def address(self, pos: int) -> int:
        """The bundle address of code position `pos` (the end of the code for len(code))."""
        return self.addr[pos] if pos < self.n else (self.addr[-1] + 16 if self.addr else CODE_BASE)

    def code_pos(self, addr: int) -> int | None:
        """The code position a branch to `addr` continues at (branches ignore the low 4 bits)."""
        return self.bundle_first.get(addr & MASK64 & ~0xF)

    def _local(self, name: str, at: int) -> int | None:
        """`1f` / `1b` seen at code position `at` (primer section 6: numeric local labels)."""
        defs = self.local_defs.get(name[:-1], [])
        if name[-1] == "f":
            hit = next((d for d in defs if d > at), None)
        else:
            hit = next((d for d in reversed(defs) if d <= at), None)
        return None if hit is None else self.address(hit)

    def value(self, expr, at: int | None) -> int:
        """The value of an expression at code position `at` (labels are addresses)."""
        env: dict[str, int] = {}
        for name in _symbols_in(expr):
            if regs.psr_mask(name) is not None and name not in self.symbols:
                continue
            if name == ".":
                env[name] = self.address(at) if at is not None and at < len(self.addr) else CODE_BASE
            elif name in self.symbols:
                env[name] = self.symbols[name]
            elif at is not None and len(name) >= 2 and name[-1] in "fb" and name[:-1].isdigit():
                v = self._local(name, at)
                env[name] = v if v is not None else external_address(name)
            else:
                addr = external_address(name)
                self.externals[addr] = name
                env[name] = addr
        v = fold(_strip_relocs(expr), env)
        if v is None:
            raise NotModelled(f"expression '{expr}' does not evaluate", None)
        return v & MASK64

    def canonical(self, value: int):
        """A value as comparisons across programs see it: a code address becomes the point it
        names, which survives transformation ("@label", "@label+call2": right after the second
        br.call after the label); a symbol outside the file "&name"; other values unchanged."""
        p = self.code_pos(value) if not value & 0xF else None
        if p is None:
            if value in self.after_call:
                return "@" + self.after_call[value]
            name = self.externals.get(value)
            return f"&{name}" if name else value
        return "@" + code_point(self.cfg, p)


def region_label(region) -> str:
    """A code region as exits and code points name it: `ia64_ivt+0x1400` for a vector, else its
    name ("?" for code outside any region)."""
    if region is None:
        return "?"
    return f"{region.table}+{region.offset:#06x}" if region.is_vector else region.name


def code_point(cfg: CFG, p: int) -> str:
    """A name for code position p that survives transformation (inserted code and labels):
    a named label there; right after the k-th br.call of its region, `region/callk` (pv-op
    calls a transform emits branch with br.cond, never br.call); the k-th definition of a
    numeric label in its region, `region/1#k`; else `region+N` (not stable)."""
    region = cfg.region_of(p)
    rname = region_label(region)
    named = [n for n, q in cfg.labels.items() if q == p and not n[0].isdigit()]
    if named:
        return sorted(named)[0]
    first = next((q for q in range(p, -1, -1) if cfg.region_of(q) is not region), -1) + 1
    calls = [q for q in range(first, p) if isinstance(cfg.code[q], Instruction)
             and cfg.code[q].mnemonic.startswith(("br.call", "brl.call"))]
    if calls and calls[-1] == p - 1:
        return f"{rname}/call{len(calls)}"
    s = cfg.program.statements
    for si in range(cfg.stmt_index[p] - 1, -1, -1):
        lab = s[si]
        if not isinstance(lab, Label):
            break
        if lab.local:
            k = sum(1 for q in range(first, p + 1)
                    for t in s[cfg.stmt_index[q - 1] + 1 if q > 0 else 0:cfg.stmt_index[q]]
                    if isinstance(t, Label) and t.local and t.name == lab.name)
            return f"{rname}/{lab.name}#{k}"
    return f"{rname}+{p - first}"


def _data_size(name: str) -> int:
    base = name.lstrip(".").split(".")[0]
    return {"data1": 1, "data2": 2, "data4": 4, "data8": 8, "byte": 1, "quad": 8, "long": 4}.get(base, 0)


def _symbols_in(expr):
    if isinstance(expr, Sym):
        yield expr.name
    for attr in ("left", "right", "arg"):
        sub = getattr(expr, attr, None)
        if sub is not None:
            yield from _symbols_in(sub)


def _strip_relocs(expr):
    from .ir import Binary, Reloc, Unary

    if isinstance(expr, Reloc):
        return _strip_relocs(expr.arg)
    if isinstance(expr, Binary):
        return Binary(expr.op, _strip_relocs(expr.left), _strip_relocs(expr.right))
    if isinstance(expr, Unary):
        return Unary(expr.op, _strip_relocs(expr.arg))
    return expr
