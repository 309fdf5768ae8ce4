"""Forward tracking of the machine state that decides what names mean: psr.bn, psr.ic, psr.dt.

At vector entry the hardware sets bn=0 and ic=0 (primer section 2); psr.dt is unchanged from
the interrupted context, which in Linux always runs with dt=1 (documented assumption).
`bsw.0/1` switch the bank, `rsm`/`ssm` clear/set ic and dt; a predicated change, a `mov psr.l=`
or a merge of paths that disagree makes the bit unknown (None). Code not reachable from a
vector entry starts with everything unknown.
"""

from __future__ import annotations

from dataclasses import dataclass

from .cfg import CFG
from .ir import Imm, Instruction, PvCall, Reg

PSR_IC = 1 << 13
PSR_DT = 1 << 17

UNKNOWN = None


@dataclass(frozen=True, slots=True)
class MState:
    bank: int | None
    ic: int | None
    dt: int | None

    def join(self, other: "MState") -> "MState":
        return MState(*(a if a == b else None for a, b in ((self.bank, other.bank), (self.ic, other.ic), (self.dt, other.dt))))

    def describe(self) -> str:
        def f(v):
            return "?" if v is None else str(v)
        return f"bank {f(self.bank)}, psr.ic={f(self.ic)}, psr.dt={f(self.dt)}"


VECTOR_ENTRY = MState(0, 0, 1)
NOTHING_KNOWN = MState(None, None, None)

_PV_STATE = {
    "BSW_0": {"bank": 0}, "BSW_1": {"bank": 1},
    "RSM_PSR_DT": {"dt": 0}, "SSM_PSR_DT_AND_SRLZ_I": {"dt": 1},
    "SSM_PSR_IC_AND_DEFAULT_BITS_AND_SRLZ_I": {"ic": 1}, "SSM_PSR_IC_AND_SRLZ_D": {"ic": 1},
    "RSM_PSR_IC": {"ic": 0}, "RSM_PSR_I_IC": {"ic": 0},
}


def step(state: MState, s) -> MState:
    """The state after statement `s` (an Instruction or PvCall)."""
    changes: dict[str, int | None] = {}
    predicated = False
    if isinstance(s, PvCall):
        changes = dict(_PV_STATE.get(s.name, {}))
    elif isinstance(s, Instruction):
        predicated = s.qp not in (None, "p0")
        m = s.mnemonic
        if m == "bsw.0":
            changes["bank"] = 0
        elif m == "bsw.1":
            changes["bank"] = 1
        elif s.op in ("rsm", "ssm"):
            mask = _mask(s)
            val = 0 if s.op == "rsm" else 1
            if mask is None:
                changes = {"ic": None, "dt": None}
            else:
                if mask & PSR_IC:
                    changes["ic"] = val
                if mask & PSR_DT:
                    changes["dt"] = val
        elif s.op == "mov" and s.dests and s.dests[0] in (Reg("psr.l"), Reg("psr")):
            changes = {"ic": None, "dt": None}
    if not changes:
        return state
    new = MState(changes.get("bank", state.bank), changes.get("ic", state.ic), changes.get("dt", state.dt))
    return state.join(new) if predicated else new


def _mask(s: Instruction) -> int | None:
    for op in s.srcs:
        if isinstance(op, Imm):
            return op.value
    return None


def track(cfg: CFG, nested_clears_dt: bool = True) -> list[MState | None]:
    """Machine state before each code position (None: not reached by the forward analysis)."""
    code = cfg.code
    g = cfg.graph
    entry: dict = {}
    for r in cfg.regions:
        if r.is_vector and r.name in cfg.entries:
            entry[cfg.entries[r.name]] = VECTOR_ENTRY
    # blocks with no predecessors that are not vector entries: nothing known
    for b in cfg.blocks:
        if b not in entry and g.in_degree(b) == 0:
            entry[b] = NOTHING_KNOWN
    state_in: dict = dict(entry)
    work = list(entry)
    before: list[MState | None] = [None] * len(code)
    while work:
        n = work.pop()
        st = state_in[n]
        if isinstance(n, int):
            for p in cfg.blocks[n].items:
                st = step(st, code[p])
        elif n[0] == "nested" and nested_clears_dt:
            st = MState(st.bank, st.ic, 0)
        elif n[0] in ("call", "unknown"):
            st = st if n[0] == "call" else NOTHING_KNOWN
        for succ in g.successors(n):
            old = state_in.get(succ)
            new = st if old is None else old.join(st)
            if new != old:
                state_in[succ] = new
                work.append(succ)
    for bid, b in cfg.blocks.items():
        st = state_in.get(bid)
        if st is None:
            continue
        for p in b.items:
            before[p] = st
            st = step(st, code[p])
    return before
