"""Random machine states at a vector entry, obeying the interruption convention (primer section 2).

The hardware has just interrupted some context: psr.ic=0, psr.i=0, psr.bn=0, cpl 0, dt/it/rt
as the context had them (Linux: on).  Bank 1 r16-r31, r1-r15, the stacked frame, pr, b*, ar*
and f* hold the interrupted context (random); bank-0 r16-r31 hold leftovers.  The
interruption CRs describe a plausible fault: cr.ipsr has bn=1 and ic=1 (Linux runs all
interruptible code like that), cr.ifa a canonical-looking address in a random region,
cr.itir a page size, cr.isr random code/x/w/r/na/sp bits with ni=0, cr.ifs.v=0.  Memory is
the seeded page-table generator of ivtx.interp_state: walks meet present and absent
entries.  Values that the Linux code uses as pointers (sp, ar.k6 current, ar.k7 the page
table, the backing store) are aligned so that the interesting paths do not just fault.

`EntryState.machine(interp)` builds a Machine for one program; the same EntryState gives
the native and the transformed program identical starts.  `zeroed(keys)` is for shrinking.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field, replace
from functools import lru_cache

from . import regs
from .interp_state import MASK64, PT_TAG_SHIFT, Machine, Memory, mix64

BOF = 1000  # physical index of the interrupted frame's r32 (any value works)
CONTINUATION = 0xC0C0C0C0C0C0C0C0  # r30@0 of a standalone 0x1400 run: "a continuation of the file"
NESTED_VECTOR = 0x1400

_PSR_FIELDS = {name: bit for name, bit in regs.PSR_BITS.items()}


@dataclass(frozen=True)
class EntryState:
    """A vector-entry state.  `values` holds the locations fixed when the state was drawn (the
    ones Linux uses as pointers, the interruption CRs, the RSE, overrides and shrinking's
    zeros); every other register is generated from `seed` the first time a run reads it
    (a register no run reads costs nothing), with the same distributions."""

    values: dict  # physical location -> value (see ivtx.interp_state)
    nats: frozenset  # NaT bits of the fixed locations
    psr: int
    cfm: int
    bof: int
    files: dict
    ivr: tuple
    mem_seed: int
    nested_seed: int
    scribble_seed: int
    seed: int = 0  # for the generated registers
    nat_free: bool = False  # generated registers never NaT (tests)
    nested_rate: int = 2  # a continuation load misses when hash % nested_rate == 0
    cache: dict = field(default_factory=dict, init=False, compare=False, repr=False)  # generated values, shared by runs

    def machine(self, interp) -> Machine:
        values = dict(self.values)
        if values.get("r30@0") == CONTINUATION:
            points = interp.continuation_points
            values["r30@0"] = interp.layout.address(points[self.mem_seed % len(points)]) if points else CONTINUATION
        m = Machine(values, set(self.nats), self.psr, self.cfm, self.bof, Memory(self.mem_seed, interp.layout.data),
                    self.files, self.ivr, seed=self.mem_seed, generate=self.generate)
        seed, rate = self.nested_seed, self.nested_rate
        m.nested_choice = (lambda k: mix64(seed ^ (k + 1)) % rate == 0) if rate else None
        m.rng = random.Random(self.scribble_seed)
        return m

    def generate(self, key: str) -> tuple[int, bool] | None:
        """The value and NaT bit of a register not fixed in `values` (None: not a register)."""
        hit = self.cache.get(key)
        if hit is None:
            hit = self.cache[key] = self._generate(key)
        return hit

    def _generate(self, key: str) -> tuple[int, bool] | None:
        h = mix64(self.seed ^ _key_hash(key))
        nat = not self.nat_free and (h >> 40) & 31 == 0  # 1/32
        head = key[0]
        if head == "r" and "@" not in key:
            return _anyval(h), nat and key not in ("r12", "r13")
        if head == "r":
            if key.endswith("@0"):  # bank-0 leftovers: anything, NaT 1/8
                return mix64(h), not self.nat_free and (h >> 40) & 7 == 0
            return _anyval(h), nat
        if head == "s" and key[1:].isdigit():
            return _anyval(h), nat
        if head == "p" and key[1:].isdigit():
            return h & 1, False
        if head == "b" and key[1:].isdigit():
            return _address(h, 16), False
        if head == "f" and key[1:].isdigit():
            return h & ((1 << 82) - 1) if int(key[1:]) > 1 else None, False
        if key in _GENERATED_SPECIAL:
            return mix64(h), False
        return None

    def keys(self) -> list[str]:
        """Every register location of the state (fixed or generated), FRs excepted."""
        out = [f"r{n}" for n in range(1, 16)] + [f"r{n}@{b}" for n in range(16, 32) for b in (0, 1)]
        out += [f"s{self.bof + i}" for i in range(self.cfm & 0x7F)]
        out += [f"p{n}" for n in range(1, 64)] + [f"b{n}" for n in range(8)] + sorted(_GENERATED_SPECIAL)
        return out + sorted(k for k in self.values if k not in set(out))

    def value(self, key: str) -> tuple[int, bool]:
        if key in self.values:
            return self.values[key], key in self.nats
        return self.generate(key)

    def zeroed(self, keys) -> "EntryState":
        """The state with these locations set to 0 (and not NaT)."""
        keys = set(keys)
        values = dict(self.values)
        values.update((k, 0) for k in keys)
        return replace(self, values=values, nats=frozenset(self.nats - keys))

    def nonzero(self) -> dict:
        """The non-zero (or NaT) locations, value or (value, NaT)."""
        out = {}
        for k in self.keys():
            v, nat = self.value(k)
            if v or nat:
                out[k] = (v, True) if nat else v
        return out


@lru_cache(maxsize=4096)
def _key_hash(key: str) -> int:
    return mix64(zlib.crc32(key.encode()))


_GENERATED_SPECIAL = frozenset([f"ar.{n}" for n in regs.AR_NAMES.values()] +
                               [f"cr.{n}" for n in regs.CR_NAMES.values() if n not in ("ivr", "eoi")])


def _address(h: int, align: int = 8, region: int | None = None) -> int:
    """A kernel- or user-looking address from 64 random bits: region bits 61-63, then a
    moderate offset."""
    vrn = (h >> 61) if region is None else region
    off = h & ((1 << (24 + 4 * ((h >> 56) & 3) + (4 if (h >> 56) & 3 == 3 else 0))) - 1)
    return ((vrn << 61) | off) & ~(align - 1) & MASK64


def _addr(rng: random.Random, align: int = 8, region: int | None = None) -> int:
    return _address(rng.getrandbits(64), align, region)


def _anyval(h: int) -> int:
    """A context register's value from 64 random bits: often a small number or an address."""
    kind = h & 7
    if kind == 0:
        return (h >> 3) & 0xFF
    if kind <= 2:
        return _address(mix64(h))
    return mix64(h ^ 1)


def _psr_bits(**fields) -> int:
    v = 0
    for name, bit in fields.items():
        if name == "cpl":
            v |= bit << 32
        elif name == "ri":
            v |= bit << 41
        elif bit:
            v |= 1 << _PSR_FIELDS[name]
    return v


BREAK_VECTOR = 0x2C00


def random_entry(rng: random.Random, vector: int | None = None) -> EntryState:
    """A state at the entry of the vector at IVT offset `vector`."""
    v: dict[str, int] = {"r12": _addr(rng, 16, 7), "r13": _addr(rng, 16384, 7)}
    nats: set[str] = set()
    preds = rng.getrandbits(64)  # fixed, not generated: `mov r31=pr` reads all of them at once
    v.update((f"p{n}", (preds >> n) & 1) for n in range(1, 64))
    sof = 0 if rng.random() < 0.2 else rng.randrange(1, 97)
    sol = rng.randrange(sof + 1)
    _application_registers(rng, v, sof, sol)
    ipsr = _control_registers(rng, v, vector)
    psr = ipsr & _psr_bits(up=1, mfl=1, mfh=1, dfl=1, dfh=1, pp=1, dt=1, it=1, rt=1)
    rr = {i: (rng.getrandbits(64) & ~0xFF) | (rng.choice((12, 13, 14, 16, 18, 20, 24)) << 2) | 1 for i in range(8)}
    ivr = tuple(rng.randrange(16, 256) for _ in range(rng.randrange(3)))
    if vector == BREAK_VECTOR and rng.random() < 0.5:
        # a system call's number: 1024 + a table index, sometimes past the end of the table
        v["r15"] = 1024 + rng.randrange(600)
    if vector == NESTED_VECTOR:
        # the faulting handler's contract: r16 the address whose PTE is wanted, r29 its b0,
        # r31 its pr, r30 where to resume (a continuation of this file, resolved per program)
        v.update({"r16@0": _addr(rng, 1), "r29@0": _addr(rng, 16), "r31@0": rng.getrandbits(64) | 1,
                  "r30@0": CONTINUATION})
    return EntryState(v, frozenset(nats), psr, sof | (sol << 7), BOF, {"rr": rr}, ivr,
                      rng.getrandbits(63), rng.getrandbits(63), rng.getrandbits(63), seed=rng.getrandbits(64))


def _application_registers(rng: random.Random, v: dict, sof: int, sol: int) -> None:
    v["ar.k6"] = _addr(rng, 1 << 16, 7)  # current task
    v["ar.k7"] = _addr(rng, 1 << 14, 7) & ~(0xF << PT_TAG_SHIFT) | (1 << PT_TAG_SHIFT)  # page-table root (pgd)
    v["ar.rsc"] = rng.getrandbits(2) | (rng.getrandbits(2) << 2)  # mode, pl; be=0, loadrs=0
    bspstore = _addr(rng, 8, rng.choice((0, 1, 7)))
    if (bspstore >> 3) & 63 == 63:
        bspstore += 8  # never points at a NaT-collection slot
    from .interp_state import rse_advance

    ndirty = rng.choice((0, rng.randrange(1, 40), rng.randrange(40, 200)))
    v["ar.bspstore"] = bspstore
    v["ar.bsp"] = rse_advance(bspstore, ndirty)
    pfs_sof = rng.randrange(97)
    v["ar.pfs"] = pfs_sof | (rng.randrange(pfs_sof + 1) << 7) | (rng.getrandbits(6) << 52) | (rng.getrandbits(2) << 62)
    v["ar.ec"] = rng.getrandbits(6)
    v["ar.fpsr"] = rng.getrandbits(58)


def _control_registers(rng: random.Random, v: dict, vector: int | None) -> int:
    v["cr.eoi"] = 0
    ipsr = _psr_bits(ic=1, dt=1, it=1, rt=1, bn=1, i=rng.getrandbits(1), up=rng.getrandbits(1),
                     ac=rng.getrandbits(1), mfl=rng.getrandbits(1), mfh=rng.getrandbits(1),
                     dfh=rng.getrandbits(1), ed=int(rng.random() < 0.1), pp=rng.getrandbits(1),
                     cpl=rng.choice((0, 0, 3, 3, 1, 2)), ri=rng.randrange(3))
    v["cr.ipsr"] = ipsr
    v["cr.iip"] = _addr(rng, 16)
    v["cr.iipa"] = _addr(rng, 16)
    ifa = _addr(rng, 1) if rng.random() < 0.8 else rng.getrandbits(64)
    v["cr.ifa"] = ifa
    v["cr.iha"] = _addr(rng, 8) & ~(0xF << PT_TAG_SHIFT) | (3 << PT_TAG_SHIFT)  # a PTE in the VHPT
    v["cr.itir"] = (rng.getrandbits(24) << 8) | (rng.choice((12, 13, 14, 16, 18, 20, 24, 28)) << 2)
    # isr: code (bits 0-15) often 0 (Linux's general_exception tests for that), vector bits
    # 16-23 usually 0, reserved 24-31 zero; x w r na sp rs ir so ei ed random, ni=0 (the
    # context had psr.ic=1)
    code = rng.choice((0, rng.getrandbits(4) << 4, rng.getrandbits(16)))
    v["cr.isr"] = code | (rng.getrandbits(8) << 16 if rng.random() < 0.1 else 0) | (
        rng.getrandbits(12) << 32 & ~(1 << 39))
    # break immediates: often the Linux system-call break (0x100000), else small or anything
    v["cr.iim"] = rng.choice((0x100000, rng.getrandbits(21), rng.getrandbits(64)))
    v["cr.ifs"] = rng.getrandbits(38)  # v=0
    pta = _addr(rng, 1 << 20, 7) & ~(0xF << PT_TAG_SHIFT) | (3 << PT_TAG_SHIFT)  # thash lands on PTEs
    v["cr.pta"] = pta | (rng.randrange(15, 21) << 2) | 1  # ve=1, vf=0
    v["cr.tpr"] = rng.getrandbits(8)
    return ipsr
