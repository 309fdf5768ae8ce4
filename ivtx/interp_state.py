"""The interpreter's machine state: registers with NaT bits and banks, the register stack,
pending (group) writes, a sparse memory over a seeded page-table generator, and event logs.

Physical location names (what `Machine.v` is keyed by):
  r1..r15, r16@0..r31@0 (bank 0), r16@1..r31@1 (bank 1)   static and banked GRs (primer section 1)
  s<N>                     stacked physical register N; r32+i names s<bof+i> while i < CFM.sof
  p0..p63, b0..b7, f0..f127, ar.<name>, cr.<name>
PSR, CFM and the bottom of frame (bof) are attributes.  NaT bits: the set `nat` of GR names.
"""

from __future__ import annotations

MASK64 = (1 << 64) - 1
CODE_BASE = 0xA000000100000000   # the first code section (ivtx.interp.Layout lays out bundles)
EXT_BASE = 0xA000000200000000    # symbols outside the file (hashed)
DATA_BASE = 0xA000000300000000   # the file's data directives

PSR_BE, PSR_IC, PSR_I, PSR_DT, PSR_BN = 1, 13, 14, 17, 44
SOF_MASK = 0x7F

_STATIC = [f"r{n}" for n in range(16)]
_BANKED = ([f"r{n}@0" for n in range(16, 32)], [f"r{n}@1" for n in range(16, 32)])
PNAMES = [f"p{n}" for n in range(64)]
BNAMES = [f"b{n}" for n in range(8)]


class NotModelled(Exception):
    """The run needs semantics the interpreter does not have; names the instruction and where."""

    def __init__(self, message: str, loc):
        super().__init__(message)
        self.message = message
        self.loc = loc

    def __str__(self) -> str:
        return f"{self.loc}: not modelled: {self.message}" if self.loc else f"not modelled: {self.message}"


class Fault(Exception):
    """An architectural fault the instruction raises (the run exits with kind 'fault')."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


def mix64(x: int) -> int:
    """splitmix64's finaliser: a fast deterministic hash of a 64-bit value."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


PT_TAG_SHIFT = 52  # bits 52-55 of a generated pointer say which page-table level it points to
_PAGE = ((1 << PT_TAG_SHIFT) - 1) & ~0x3FFF
_PTE_BITS = (((1 << 50) - 1) & ~0x1F) | (1 << 52)  # a, d, pl, ar, ppn, ed; ma = 0


def page_table_word(seed: int, addr8: int) -> int:
    """The never-written 8-byte word at aligned address `addr8`, shaped so that page-table
    walks find present and absent entries (primer section 2, the handlers' walks).

    A pointer the generator hands out carries the level of the page it points to in bits
    52-55 (1 pgd, 2 pmd, 3 PTE page; entry states tag ar.k7, cr.pta and cr.iha the same way):
    a word in a pgd or pmd page is empty (1/8) or a 16K-aligned pointer one level down; a
    word in a PTE page is a PTE, present (bit 0) 3/4 of the time.  Other words are 0 (1/4),
    a pmd pointer (1/4) or a PTE-shaped value (1/2)."""
    tag = (addr8 >> PT_TAG_SHIFT) & 0xF
    h = mix64(seed ^ mix64(addr8))
    r = h & 0xF
    val = mix64(h)
    if tag in (1, 2):
        return 0 if r < 2 else ((tag + 1) << PT_TAG_SHIFT) | (val & _PAGE)
    if tag == 3:
        return (val & _PTE_BITS) | (r >= 4)
    if r < 4:
        return 0
    if r < 8:
        return (2 << PT_TAG_SHIFT) | (val & _PAGE)
    return (val & _PTE_BITS) | (r >= 10)


class Memory:
    """Sparse little-endian memory of aligned 8-byte words: written words, over the file's data
    image, over the generator.  Every access the interpreter makes is aligned and at most 8
    bytes, so it stays inside one word (16-byte spills are two)."""

    __slots__ = ("words", "written", "image", "seed", "log")

    def __init__(self, seed: int, image: dict | None = None):
        self.words: dict[int, int] = {}
        self.written: dict[int, int] = {}  # word address -> mask of the bytes written
        self.image = image or {}
        self.seed = seed
        self.log: list | None = None  # (addr, size, value) of each write, when tracing

    def initial(self, a8: int) -> int:
        """The word before the run: the data image's bytes over the generator."""
        v = page_table_word(self.seed, a8)
        if self.image:
            for i in range(8):
                b = self.image.get(a8 + i)
                if b is not None:
                    v = (v & ~(0xFF << (8 * i))) | (b << (8 * i))
        return v

    def word(self, a8: int) -> int:
        v = self.words.get(a8)
        if v is None:
            v = self.words[a8] = self.initial(a8)
        return v

    def read(self, addr: int, size: int) -> int:
        v = self.word(addr & ~7)
        if size == 8:
            return v
        return (v >> (8 * (addr & 7))) & ((1 << (8 * size)) - 1)

    def write(self, addr: int, size: int, value: int) -> None:
        a8 = addr & ~7
        if size == 8:
            self.words[a8] = value & MASK64
            self.written[a8] = 0xFF
        else:
            shift = 8 * (addr & 7)
            mask = ((1 << (8 * size)) - 1) << shift
            self.words[a8] = (self.word(a8) & ~mask) | ((value << shift) & mask)
            self.written[a8] = self.written.get(a8, 0) | (((1 << size) - 1) << (addr & 7))
        if self.log is not None:
            self.log.append((addr, size, value & ((1 << (8 * size)) - 1)))


class Store(dict):
    """Register values; a register the entry state did not fix is generated (by the entry
    state's `generate(name) -> (value, nat) | None`) the first time it is read."""

    __slots__ = ("generate", "nat")

    def __missing__(self, key: str) -> int:
        got = self.generate(key) if self.generate is not None else None
        if got is None:
            raise NotModelled(f"register {key} has no value in the machine model", None)
        value, nat = got
        if nat:
            self.nat.add(key)
        self[key] = value
        return value


# --------------------------------------------------------------------------- RSE arithmetic


def rse_advance(addr: int, n: int) -> int:
    """Backing-store address n registers above `addr`, skipping NaT-collection slots (the slot
    whose address bits 8:3 are all ones)."""
    return addr + 8 * (n + (((addr >> 3) & 63) + n) // 63)


def rse_retreat(addr: int, n: int) -> int:
    """Backing-store address n registers below `addr`."""
    return addr - 8 * (n + (62 - ((addr >> 3) & 63) + n) // 63)


def rse_count(lo: int, hi: int) -> int:
    """Registers (not collection slots) in the backing store between addresses lo and hi."""
    if hi <= lo:
        return 0
    # slot s = address >> 3 is a collection slot when s % 64 == 63; there are x // 64 of
    # them below slot x
    return ((hi - lo) >> 3) - ((hi >> 9) - (lo >> 9))


# --------------------------------------------------------------------------- operand access


def gr_reader(n: int):
    """A function m -> (value, NaT) reading GR n as its group started (the hot path of every
    instruction: static and banked names are resolved without a call)."""
    if n == 0:
        return lambda m: (0, False)
    if n < 16:
        name = _STATIC[n]

        def read(m):
            if name in m.pend:
                m.violation("RAW", name)
            return m.v[name], name in m.nat
        return read
    if n < 32:
        names = (_BANKED[0][n - 16], _BANKED[1][n - 16])

        def read(m):
            name = names[m.bn]
            if name in m.pend:
                m.violation("RAW", name)
            return m.v[name], name in m.nat
        return read
    return lambda m: m.gr(n)


def gr_writer(n: int):
    """A function (m, value, nat) writing GR n at the end of the group."""
    if n == 0:
        def write0(m, value, nat=False):
            raise Fault("illegal-operation", "write to r0")
        return write0
    if n < 32:
        names = (_STATIC[n], _STATIC[n]) if n < 16 else (_BANKED[0][n - 16], _BANKED[1][n - 16])

        def write(m, value, nat=False):
            name = names[m.bn]
            pend = m.pend
            if name in pend:
                m.violation("WAW", name)
            pend[name] = (value & MASK64, nat)
        return write
    return lambda m, value, nat=False: m.set_gr(n, value, nat)


# --------------------------------------------------------------------------- the machine


class Machine:
    __slots__ = ("v", "nat", "pend", "pend_kind", "pend_psr", "pend_unat", "psr", "bn", "cfm", "sof",
                 "bof", "mem", "tlb", "sys", "crlog", "violations", "hazards", "unser", "alat", "ivr",
                 "files", "touched", "pv_model", "rng", "nested_choice", "nested_count", "steps", "pos",
                 "interp", "seed", "coverage", "dirty", "trace_writes", "serializations")

    def __init__(self, values: dict, nats: set, psr: int, cfm: int, bof: int, memory: Memory,
                 files: dict | None = None, ivr: tuple = (), seed: int = 0, generate=None):
        self.v = Store(values)
        self.v.generate = generate
        self.v.nat = self.nat = set(nats)
        self.v["p0"] = 1
        self.pend: dict = {}
        self.pend_kind: dict = {}
        self.pend_psr: list = []
        self.pend_unat: list = []
        self.psr = psr & MASK64
        self.bn = (psr >> PSR_BN) & 1
        self.cfm = cfm
        self.sof = cfm & SOF_MASK
        self.bof = bof
        self.mem = memory
        self.tlb: list = []
        self.sys: list = []
        self.crlog: list = []
        self.violations: list = []
        self.hazards: list = []
        self.unser: set = set()
        self.alat = 0
        self.ivr = tuple(ivr)
        self.files = {k: dict(v) for k, v in (files or {}).items()}
        self.touched: set | None = None
        self.pv_model = None
        self.rng = None
        self.nested_choice = None
        self.nested_count = 0
        self.steps = 0
        self.pos = 0
        self.interp = None
        self.seed = seed
        self.coverage: set | None = None
        self.dirty: set = set()  # physical names ever written (the rest still hold entry values)
        self.trace_writes: dict | None = None  # when tracing: what commits wrote during one step
        self.serializations: list = []  # (srlz.d / srlz.i, code position): for reports, not compared

    # ------------------------------------------------------------------ names

    def gname(self, n: int) -> str:
        """The physical name of GR n in the current bank and frame (primer section 1)."""
        if n < 16:
            return _STATIC[n]
        if n < 32:
            return _BANKED[self.bn][n - 16]
        i = n - 32
        if i >= self.sof:
            raise Fault("illegal-operation", f"r{n} is outside the current frame (sof={self.sof})")
        return f"s{self.bof + i}"

    # ------------------------------------------------------------------ reads (committed values)

    def gr(self, n: int) -> tuple[int, bool]:
        """(value, NaT) of GR n as the group started."""
        if n == 0:
            return 0, False
        name = self.gname(n)
        if name in self.pend:
            self.violation("RAW", name)
        return self.v[name], name in self.nat

    def get(self, name: str) -> int:
        """A non-GR register (p6, b0, ar.ccv, cr.ifa) as the group started."""
        if name in self.pend and name != "p0":
            self.violation("RAW", name)
        return self.v[name]

    def for_branch(self, name: str) -> int:
        """A predicate or branch register read by a branch: a write earlier in the same group
        is seen (primer section 4, the allowed exception)."""
        hit = self.pend.get(name)
        return hit[0] if hit is not None else self.v[name]

    def predicates(self) -> int:
        v = self.v
        out = 0
        for i in range(63, 0, -1):
            out = (out << 1) | v[PNAMES[i]]
        return (out << 1) | 1

    # ------------------------------------------------------------------ writes (pending)

    def set_gr(self, n: int, value: int, nat: bool = False) -> None:
        if n == 0:
            raise Fault("illegal-operation", "write to r0")
        self.put(self.gname(n), value & MASK64, nat)

    def put(self, name: str, value: int, nat: bool = False) -> None:
        if name in self.pend:
            self.violation("WAW", name)
        self.pend[name] = (value, nat)

    def set_pr(self, n: int, bit: int, kind: str | None = None) -> None:
        """Write predicate n (p0 writes are dropped).  `kind` 'and'/'or' marks a parallel
        compare: several of one kind may write a predicate in one group."""
        if n == 0:
            return
        name = PNAMES[n]
        if name in self.pend and not (kind is not None and self.pend_kind.get(name) == kind):
            self.violation("WAW", name)
        self.pend[name] = (bit, False)
        if kind is not None:
            self.pend_kind[name] = kind

    def psr_update(self, clear: int, setbits: int) -> None:
        self.pend_psr.append((clear & MASK64, setbits & MASK64))

    def unat_bit(self, bit: int, value: int) -> None:
        self.pend_unat.append((bit, value))

    def touch(self, *names: str) -> None:
        if self.touched is not None:
            self.touched.update(names)

    def violation(self, kind: str, name: str) -> None:
        self.violations.append((kind, name.split("@")[0] if name[0] == "r" else name, self.pos))

    def hazard(self, what: str) -> None:
        self.hazards.append((what, self.pos))

    # ------------------------------------------------------------------ groups

    def commit(self) -> None:
        """End of an instruction group: pending writes take effect."""
        pend = self.pend
        if pend:
            if self.trace_writes is not None:
                self.trace_writes.update(pend)
            v, nat = self.v, self.nat
            self.dirty.update(pend)
            for name, (val, n) in pend.items():
                v[name] = val
                if n:
                    nat.add(name)
                elif name in nat:
                    nat.discard(name)
            pend.clear()
            if self.pend_kind:
                self.pend_kind.clear()
        if self.pend_psr:
            if self.trace_writes is not None:
                self.trace_writes["psr"] = tuple(self.pend_psr)
            old = psr = self.psr
            for clear, setbits in self.pend_psr:
                psr = (psr & ~clear) | setbits
            self.pend_psr.clear()
            self.psr = psr
            self.bn = (psr >> PSR_BN) & 1
            changed = old ^ psr
            if changed & (1 << PSR_IC):
                self.unser.add("ic")
            if changed & (1 << PSR_DT):
                self.unser.add("dt")
        if self.pend_unat:
            unat = self.v["ar.unat"]
            for bit, val in self.pend_unat:
                unat = (unat & ~(1 << bit)) | (val << bit)
            if self.trace_writes is not None:
                self.trace_writes["ar.unat"] = unat
            self.v["ar.unat"] = unat
            self.dirty.add("ar.unat")
            self.pend_unat.clear()

    # ------------------------------------------------------------------ frames and RSE

    def set_cfm(self, cfm: int) -> None:
        self.cfm = cfm & ((1 << 38) - 1)
        self.sof = self.cfm & SOF_MASK
        self.touch("cfm")

    def ndirty(self) -> int:
        return rse_count(self.v["ar.bspstore"], self.v["ar.bsp"])

    def set_bsp(self, value: int) -> None:
        self.v["ar.bsp"] = value & MASK64
        self.dirty.add("ar.bsp")
        self.touch("ar.bsp")

    def poke(self, name: str, value: int, nat: bool = False) -> None:
        """Write a register outside the group discipline (an interruption's own effects)."""
        self.v[name] = value & MASK64
        self.dirty.add(name)
        if nat:
            self.nat.add(name)
        else:
            self.nat.discard(name)

    def stacked(self, idx: int) -> tuple[int, bool]:
        key = f"s{idx}"
        return self.v[key], key in self.nat

    # ------------------------------------------------------------------ observation

    def interrupt_cr_check(self, cr: str) -> None:
        """Interruption CRs are accessible only with psr.ic=0 (primer section 1)."""
        if (self.psr >> PSR_IC) & 1:
            raise Fault("illegal-operation", f"{cr} accessed with psr.ic=1")
        if "ic" in self.unser:
            self.hazard(f"{cr} accessed before a psr.ic change was serialized")

    def peek_reads(self, s) -> dict:
        """The values statement `s` reads, by the effects tables' location names (for traces)."""
        from .effects import default_table, effects_of
        from .ir import PvCall
        from .pveffects import pv_effects

        eff = pv_effects(s) if isinstance(s, PvCall) else effects_of(s)
        fields = default_table().psr_fields
        out = {}
        for loc in sorted(eff.reads):
            if loc[0] == "r" and loc[1:].isdigit():
                try:
                    name = self.gname(int(loc[1:]))
                except Fault:
                    continue
                out[loc] = (self.v[name], name in self.nat)
            elif loc.startswith("psr."):
                bit, width, _ = fields[loc[4:]]
                out[loc] = (self.psr >> bit) & ((1 << width) - 1)
            elif loc == "cfm":
                out[loc] = self.cfm
            else:
                try:
                    out[loc] = self.v[loc]
                except NotModelled:
                    pass
        return out

    def data_access(self) -> None:
        if "dt" in self.unser:
            self.hazard("data access before a psr.dt change was serialized")
