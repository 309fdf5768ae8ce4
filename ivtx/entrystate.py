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
from dataclasses import dataclass, replace

from . import regs
from .interp_state import MASK64, PT_TAG_SHIFT, Machine, Memory, mix64

BOF = 1000  # physical index of the interrupted frame's r32 (any value works)
CONTINUATION = 0xC0C0C0C0C0C0C0C0  # r30@0 of a standalone 0x1400 run: "a continuation of the file"
NESTED_VECTOR = 0x1400

_PSR_FIELDS = {name: bit for name, bit in regs.PSR_BITS.items()}


@dataclass(frozen=True)
class EntryState:
    values: dict  # physical location -> value (see ivtx.interp_state)
    nats: frozenset
    psr: int
    cfm: int
    bof: int
    files: dict
    ivr: tuple
    mem_seed: int
    nested_seed: int
    scribble_seed: int
    nested_rate: int = 2  # a continuation load misses when hash % nested_rate == 0

    def machine(self, interp) -> Machine:
        values = dict(self.values)
        if values.get("r30@0") == CONTINUATION:
            points = interp.continuation_points
            values["r30@0"] = interp.layout.address(points[self.mem_seed % len(points)]) if points else CONTINUATION
        m = Machine(values, set(self.nats), self.psr, self.cfm, self.bof, Memory(self.mem_seed, interp.layout.data),
                    self.files, self.ivr, seed=self.mem_seed)
        seed, rate = self.nested_seed, self.nested_rate
        m.nested_choice = (lambda k: mix64(seed ^ (k + 1)) % rate == 0) if rate else None
        m.rng = random.Random(self.scribble_seed)
        return m

    def zeroed(self, keys) -> "EntryState":
        """The state with these locations set to 0 (and not NaT)."""
        keys = set(keys)
        values = {k: (0 if k in keys else v) for k, v in self.values.items()}
        return replace(self, values=values, nats=frozenset(self.nats - keys))

    def nonzero(self) -> dict:
        return {k: v for k, v in self.values.items() if v or k in self.nats}


def _addr(rng: random.Random, align: int = 8, region: int | None = None) -> int:
    """A kernel- or user-looking address: region bits 61-63, then a moderate offset."""
    r = rng.getrandbits(64)
    vrn = (r >> 61) if region is None else region
    off = r & ((1 << (24 + 4 * ((r >> 56) & 3) + (4 if (r >> 56) & 3 == 3 else 0))) - 1)
    return ((vrn << 61) | off) & ~(align - 1) & MASK64


def _anyval(rng: random.Random) -> int:
    """A context register's value: often a small number or an address, else any 64 bits."""
    r = rng.getrandbits(64)
    kind = r & 7
    if kind == 0:
        return (r >> 3) & 0xFF
    if kind <= 2:
        return _addr(rng)
    return rng.getrandbits(64)


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


def random_entry(rng: random.Random, vector: int | None = None) -> EntryState:
    """A state at the entry of the vector at IVT offset `vector`."""
    v: dict[str, int] = {}
    nats: set[str] = set()

    nat_bits = rng.getrandbits(256)  # NaT: 1/32 for context GRs, 1/8 for bank-0 leftovers

    def gr(name: str, value: int, nat: bool) -> None:
        v[name] = value & MASK64
        if nat:
            nats.add(name)

    for n in range(1, 16):
        gr(f"r{n}", _anyval(rng), n not in (12, 13) and (nat_bits >> (5 * n)) & 31 == 0)
    v["r12"] = _addr(rng, 16, 7)
    v["r13"] = _addr(rng, 16384, 7)
    nat_bits = rng.getrandbits(256)
    for n in range(16, 32):
        gr(f"r{n}@1", _anyval(rng), (nat_bits >> (5 * (n - 16))) & 31 == 0)
        gr(f"r{n}@0", rng.getrandbits(64), (nat_bits >> (80 + 3 * (n - 16))) & 7 == 0)
    sof = 0 if rng.random() < 0.2 else rng.randrange(1, 97)
    sol = rng.randrange(sof + 1)
    nat_bits = rng.getrandbits(5 * 96)
    for i in range(sof):
        gr(f"s{BOF + i}", _anyval(rng), (nat_bits >> (5 * i)) & 31 == 0)
    preds = rng.getrandbits(64)
    for n in range(1, 64):
        v[f"p{n}"] = (preds >> n) & 1
    for n in range(8):
        v[f"b{n}"] = _addr(rng, 16)
    _application_registers(rng, v, sof, sol)
    ipsr = _control_registers(rng, v, vector)
    psr = ipsr & _psr_bits(up=1, mfl=1, mfh=1, dfl=1, dfh=1, pp=1, dt=1, it=1, rt=1)
    rr = {i: (rng.getrandbits(64) & ~0xFF) | (rng.choice((12, 13, 14, 16, 18, 20, 24)) << 2) | 1 for i in range(8)}
    ivr = tuple(rng.randrange(16, 256) for _ in range(rng.randrange(3)))
    if vector == NESTED_VECTOR:
        # the faulting handler's contract: r16 the address whose PTE is wanted, r30 where to
        # resume (a continuation of this file, resolved per program)
        v["r16@0"] = _addr(rng, 1)
        nats.difference_update({"r16@0", "r29@0", "r30@0", "r31@0"})  # written by the faulting handler
        v["r30@0"] = CONTINUATION
    return EntryState(v, frozenset(nats), psr, sof | (sol << 7), BOF, {"rr": rr}, ivr,
                      rng.getrandbits(63), rng.getrandbits(63), rng.getrandbits(63))


def _application_registers(rng: random.Random, v: dict, sof: int, sol: int) -> None:
    for n, name in regs.AR_NAMES.items():
        v[f"ar.{name}"] = rng.getrandbits(64)
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
    v["ar.fpsr"] &= (1 << 58) - 1


def _control_registers(rng: random.Random, v: dict, vector: int | None) -> int:
    for n, name in regs.CR_NAMES.items():
        if name not in ("ivr", "eoi"):
            v[f"cr.{name}"] = rng.getrandbits(64)
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
    v["cr.isr"] = rng.getrandbits(64) & ~(1 << 39)  # ni=0: the context had psr.ic=1
    # break immediates: often the Linux system-call break (0x100000), else small or anything
    v["cr.iim"] = rng.choice((0x100000, rng.getrandbits(21), rng.getrandbits(64)))
    v["cr.ifs"] = rng.getrandbits(38)  # v=0
    pta = _addr(rng, 1 << 20, 7) & ~(0xF << PT_TAG_SHIFT) | (3 << PT_TAG_SHIFT)  # thash lands on PTEs
    v["cr.pta"] = pta | (rng.randrange(15, 21) << 2) | 1  # ve=1, vf=0
    v["cr.tpr"] = rng.getrandbits(8)
    return ipsr
