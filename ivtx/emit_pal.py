"""The PAL-static convention (design.md "Conventions", primer section 8, docs/pal-static.md).

Each site calls its op like a PAL static-registers-only procedure: index in r28, the op's GR
argument in r29 (the kr number is part of the index), return address in b0, `br.cond` to
`ivtx_pal_static` (IP-relative: no data access, so the call is the same with psr.dt 0 or 1),
the result back in r29. The callee may clobber bank-0 r24-r31, r28-r30 of the bank in force
at the call (index, argument/result, scratch) and b0; everything else is preserved (docs/pal-static.md is the contract, and
tests/test_transform_pal.py checks the emitted code against its table). Values live across the
call in those registers are moved into free preserved registers first and moved back after:

        mov r20=r31                     // r31 (saved pr) is live across the call
        mov r21=b0                      // b0 is interrupted state
        mov r29=r18                     // the argument
        movl r28=Nf ;;                  // the return address ...
        mov b0=r28                      // ... in b0
        mov r28=13                      // ITC_D's index
    (p7) br.cond.sptk.many ivtx_pal_static ;;   // only the call is predicated
    N:  mov r31=r20
        mov b0=r21 ;;

A predicated op is called under its predicate (ITC_I_AND_D is ITC_I under pred_i, then ITC_D
under pred_d). The native support file dispatches on r28 using only r28, r30 and b0, and runs
the op's native instruction with r29 as its operand.
"""

from __future__ import annotations

from dataclasses import dataclass
from string import Template

from .emit_call import _site_text, in_explicit_bundle, local_label, place_sequence, starts_group
from .emit_macro import Unplaceable
from .bundling import check_groups
from .ir import Directive, Instruction, Reg
from .pal_saves import PalCall, PalSite, plan_site, reg_reads

ENTRY = "ivtx_pal_static"
SUPPORT = "ivtx/pal_static_native.S"
STRIDE = 64  # bytes per native entry (.org-checked)
ARG = "r29"
RESULT = "r29"


@dataclass(frozen=True)
class PalOp:
    index: int
    op: str  # catalog op name
    kr: int | None
    arg: str | None  # the catalog role passed in r29 (src)
    result: str | None  # the catalog role returned in r29 (dst)
    native: str  # the entry's instruction(s) with r29 as operand

    @property
    def name(self) -> str:
        return f"{self.op} ar.k{self.kr}" if self.kr is not None else self.op


def contract(catalog) -> list[PalOp]:
    """The index table: catalog order, MOV_TO_KR once per kernel register, ITC_I_AND_D none
    (it is ITC_I then ITC_D)."""
    out: list[PalOp] = []
    for op in catalog.ops.values():
        if op.name == "ITC_I_AND_D":
            continue
        krs = range(8) if "kr" in op.args else [None]
        for kr in krs:
            arg = next((r for r in op.args if op.role_kind(r) == "src"), None)
            res = next((r for r in op.args if op.role_kind(r) == "dst"), None)
            values = {r: "r0" for r in op.args}
            for r in op.args:
                kind = op.role_kind(r)
                if kind in ("src", "dst"):
                    values[r] = ARG
                elif kind == "pred":
                    values[r] = "p0"
                elif kind == "kr":
                    values[r] = str(kr)
            native = Template(op.native).substitute(values).replace("(p0) ", "").strip()
            out.append(PalOp(len(out), op.name, kr, arg, res, native))
    return out


def plan_pal(a, groups, files, res, catalog, out_of_line: frozenset = frozenset()):
    from .transform import Plan, Restructuring, UnresolvedSite, claim_text, region_name, site_name, unknown_note

    table = contract(catalog)
    plan = Plan()
    label = local_label(a.cfg.program)
    sites: list[PalSite] = []
    ool_code: list[str] = []
    chain = None  # (head PalSite, last SiteGroup) of the out-of-line sequence a next site may join
    for g in groups:
        name = ", ".join(site_name(a, u) for u in g.uses)
        text = _site_text(a, g)
        problem = g.problem
        if problem is None and in_explicit_bundle(a, g):
            problem = "the site is inside an explicit bundle { }: a call sequence does not fit in it"
        if problem:
            res.unresolved.append(UnresolvedSite(name, text, g.op.name, problem))
            chain = None
            continue
        ool = g.first.pos in out_of_line
        multi = len(g.uses) > 1
        # out of line at a macro body, a single call is a tail call (the callee returns straight to
        # the use, b0 set there); several calls need a register for the use's return address
        tail = False
        got = plan_site(a, g, table, 1 if ool and multi else 0, ool and multi)
        if isinstance(got, str) and ool and multi and g.op.name not in ("ITC_I_AND_D", "RFI"):
            tail = True  # no register for the return address: the callee returns to the use itself
            got = plan_site(a, g, table, 0, True)
        if isinstance(got, str) and ool:
            got = plan_site(a, g, table)  # inline, then (the vector may still overflow)
            ool = False
        if isinstance(got, str):
            res.unresolved.append(UnresolvedSite(name, text, g.op.name, got + unknown_note(g)))
            chain = None
            continue
        ps = got
        ps.index = len(sites)
        ps.uses = list(g.uses)
        ps.out_of_line = ool
        ps.tail = tail and ool
        sites.append(ps)
        tag = ("pal", ps.index)
        lead = [] if starts_group(a, g) else [";;"]
        if ps.tail:
            tb = next((t for r, t in ps.saves if r == "b0"), None)
            c = ps.calls[0]
            pred, arg = c.canonical[0], c.canonical[1]
            q = f"({pred}) " if pred not in ("p0", None) else ""
            items = lead + ([f"mov {tb}=b0"] if tb else []) + [f"movl r28={label}f", ";;", "mov b0=r28",
                                                             f"br.cond.sptk.many ivtx_pal_ool_{ps.index}", ";;",
                                                             f"{label}:"] + _restore_items(ps)
            ool_code += [f"ivtx_pal_ool_{ps.index}:"] + [f"mov {t}={r}" for r, t in ps.saves if r != "b0"] + \
                ([f"mov {ARG}={arg}"] if arg is not None and arg != ARG else []) + \
                [f"mov r28={c.pal.index}", f"{q}br.cond.sptk.many {ENTRY}", ";;", "br.cond.sptk.many b0", ";;"]
            res.restructurings.append(Restructuring(
                "out-of-line", name, f"the saves and the call move to ivtx_pal_ool_{ps.index} (a tail call: the "
                "callee returns to the use, which restores)", "the vector would overflow its slot with the call "
                "inline", region_name(a, g.first)))
        elif ool and multi:  # the code returns through b0 to the use that branched there
            body = _call_items(ps, label, canonical=True, keep_b0=True)
            tb = next((t for r, t in ps.saves if r == "b0"), None)
            items = lead + [f"movl {ps.ret}={label}f", f"br.cond.sptk.many ivtx_pal_ool_{ps.index}", ";;",
                            f"{label}:"] + ([f"mov b0={tb}", ";;"] if tb else [])
            ool_code += [f"ivtx_pal_ool_{ps.index}:"] + body + [f"mov b0={ps.ret}", ";;",
                                                               "br.cond.sptk.many b0", ";;"]
            res.restructurings.append(Restructuring(
                "out-of-line", name, f"the call sequence moves to ivtx_pal_ool_{ps.index}; each use branches there "
                f"with its return address in {ps.ret}", "the vector would overflow its slot with the call inline",
                region_name(a, g.first)))
        elif ool and chain is not None and _consecutive(a, chain[1], g):
            # the site follows the previous out-of-line site directly: its sequence joins that one
            # (one branch out and one back for both); its own text goes
            head = chain[0]
            head.chain.append(ps)
            back = ool_code[-2]  # the head's branch back stays last
            ool_code[-2:] = _call_items(ps, label, canonical=True) + [back, ";;"]
            items = None
            res.restructurings.append(Restructuring(
                "out-of-line", name, f"the call sequence joins ivtx_pal_ool_{head.index}, the out-of-line sequence "
                "of the site right before it (consecutive sites share one branch out and one back)",
                "the vector would overflow its slot with the call inline, and a branch of its own costs a bundle",
                region_name(a, g.first)))
        elif ool:
            body = _call_items(ps, label, canonical=True)
            back = f"ivtx_pal_ret_{ps.index}"
            items = [f"br.cond.sptk.many ivtx_pal_ool_{ps.index}", f"{back}:"]
            ool_code += [f"ivtx_pal_ool_{ps.index}:"] + body + [f"br.cond.sptk.many {back}", ";;"]
            res.restructurings.append(Restructuring(
                "out-of-line", name, f"the call sequence moves to ivtx_pal_ool_{ps.index}; the site branches there "
                "and back", "the vector would overflow its slot with the call inline", region_name(a, g.first)))
        else:
            items = lead + _call_items(ps, label)
        check_groups(_call_items(ps, label, canonical=True), f"the PAL-static call at {name}")
        if items is None:
            plan.edits.extend(_delete_site(g))
            plan.aliases[tag] = ("pal", chain[0].index)  # its calls are modelled where the head branches
            chain = (chain[0], g) if g.op.name != "RFI" else None  # nothing runs after an rfi
        else:
            try:
                plan.edits.extend(place_sequence(a, files, g, items, tag))
            except Unplaceable as exc:
                res.unresolved.append(UnresolvedSite(name, text, g.op.name, str(exc)))
                chain = None
                continue
            single = ool and not multi and not ps.tail
            chain = (ps, g) if single and g.op.name != "RFI" else None
        plan.checks[tag] = ("pal", ps, ps.clobbered + ps.temps, g)
        helped = {t: (text, what) for t, text, what in ps.helpers}
        for reg, text_, what in ps.reloads:
            via = [t for t in helped if t in reg_reads(text_)]
            if via:
                first = ", ".join(f"{helped[t][1]}" for t in via)
                held = ", ".join(via)
                res.restructurings.append(Restructuring(
                    "rematerialize", name, f"{reg} is recomputed after the call instead of saved, in two steps: "
                    f"{first}, then {what}",
                    f"{reg} is live across the call and the PAL-static callee may clobber it; {held} "
                    f"{'holds' if len(via) == 1 else 'hold'} a saved value during the call and is recomputed first "
                    "from registers that are back by then (restored or preserved), which gives it the value it had "
                    "at the site", region_name(a, g.first)))
                continue
            res.restructurings.append(Restructuring(
                "rematerialize", name, f"{reg} ({what}) is recomputed after the call instead of saved",
                f"{reg} is live across the call and the PAL-static callee may clobber it; its inputs are "
                "preserved by the contract", region_name(a, g.first)))
        for t, text_, what in ps.helpers:
            if t in ps.freed:
                held = next(r for r, tmp in ps.saves if tmp == t)
                res.restructurings.append(Restructuring(
                    "rematerialize", name, f"{t} ({what}) is recomputed after the call, so it can hold {held} "
                    "during it", f"{t} is read later but its value comes from registers the call preserves; "
                    "no preserved register is free for every value live across the call", region_name(a, g.first)))
        for reg, tmp in ps.saves:
            how = ("recomputed after the call (above)" if tmp in ps.freed else "free on both sides")
            res.restructurings.append(Restructuring(
                "save-restore", name, f"{reg} is moved to {tmp} before the call and back after it",
                f"{reg} is live across the call and the PAL-static callee may clobber it; {tmp} is preserved "
                f"by the contract and {how}", region_name(a, g.first)))
        from .transform import EditRecord

        sp = g.span
        old = files.line(sp.file, sp.line)[sp.start:sp.end]
        calls = "; ".join(f"r28={c.pal.index} ({c.pal.name})" for c in ps.calls)
        res.edits.append(EditRecord(name, f"{sp.file}:{sp.line}", g.op.name, old, f"br.cond {ENTRY} with {calls}",
                                    "PAL-static call; registers the callee may clobber are dead after it or "
                                    "saved around it (liveness)" + claim_text(g, ps.clobbered + ps.temps),
                                    calls=len(ps.calls)))
    plan.support[SUPPORT] = native_support(table, ool_code, a.path)
    check_groups(plan.support[SUPPORT].split("\n"), "the PAL-static support code")
    plan.append_main = f"#include <{SUPPORT}>\t/* ivtx: the PAL-static entry and its native ops */\n"
    plan.rewrite = lambda program: model_pal(program, sites)
    return plan


def _consecutive(a, prev, g) -> bool:
    """Whether site group `g` directly follows `prev` (both used once): the next code position in
    the same flow, with only stops between them (no label another branch could enter by, no
    directive). Their calls can then run in one out-of-line sequence: executing the two sites'
    code one after the other is what the input does (a stop between them changes no value read)."""
    if len(prev.uses) != 1 or len(g.uses) != 1:
        return False
    cfg = a.cfg
    p = prev.first.pos + prev.first.length
    if g.first.pos != p or not cfg.same_flow(p - 1, p):
        return False
    stmts = cfg.program.statements
    return all(type(x).__name__ == "Stop" for x in stmts[cfg.stmt_index[p - 1] + 1:cfg.stmt_index[p]])


def _delete_site(g) -> list:
    """The edits removing a site's text (its sequence runs elsewhere)."""
    from .emit_macro import delete_span

    return [delete_span(g.span)] + [delete_span(loc.span) for loc in g.located[1:]] + \
        [delete_span(sp) for sp in g.stops]


def _call_items(ps: PalSite, label: str, canonical: bool = False, keep_b0: bool = False) -> list[str]:
    """The statements of the call sequence (saves, one setup + branch per call, restores), with the
    operands as written, or as registers (`canonical`: out-of-line code, outside any macro).
    `keep_b0`: b0 is put back by the caller's code, not here."""
    def pick(c: PalCall, k: int) -> str | None:
        return c.canonical[k] if canonical else (c.pred, c.arg, c.result)[k]

    out: list[str] = [f"mov {tmp}={reg}" for reg, tmp in ps.saves]
    rfi = ps.calls[0].pal.op == "RFI"
    for c in ps.calls:
        # only the branch is predicated: r28, r29 and b0 are the callee's to clobber anyway
        pred, arg = pick(c, 0), pick(c, 1)
        q = f"({pred}) " if pred not in ("p0", None) else ""
        if arg is not None and arg != ARG:
            out.append(f"mov {ARG}={arg}")
        if not rfi:
            out.append(f"movl r28={label}f")
            out.append(";;")
            out.append("mov b0=r28")
        out.append(f"mov r28={c.pal.index}")
        out.append(f"{q}br.cond.sptk.many {ENTRY}")
        out.append(";;")
        if not rfi:
            out.append(f"{label}:")
    return out + _restore_items(ps, canonical, keep_b0)


def _restore_items(ps: PalSite, canonical: bool = False, keep_b0: bool = False) -> list[str]:
    """After the last call: restores and recomputations, the result copy, then r29's own restore;
    last the helpers (they read restored registers) and the recomputations that read them."""
    restores = [f"mov {reg}={tmp}" for reg, tmp in ps.saves if reg != RESULT and not (keep_b0 and reg == "b0")]
    restores += [text for reg, text, _ in ps.reloads if reg != RESULT and reg not in ps.late]
    c = ps.calls[-1]
    pred, result = (c.canonical[0], c.canonical[2]) if canonical else (c.pred, c.result)
    q = f"({pred}) " if pred not in ("p0", None) else ""
    copy = [f"{q}mov {result}={RESULT}"] if result is not None and result != RESULT else []
    out = restores + copy + ([";;"] if restores or copy else [])
    last = [f"mov {reg}={tmp}" for reg, tmp in ps.saves if reg == RESULT]
    last += [text for reg, text, _ in ps.reloads if reg == RESULT and reg not in ps.late]
    if last:
        out += last + [";;"]
    if ps.helpers:
        out += [text for _, text, _ in ps.helpers] + [";;"]
        late = [text for reg, text, _ in ps.reloads if reg in ps.late]
        out += late + [";;"] if late else []
    return out


def native_support(table: list[PalOp], ool: list[str], source: str) -> str:
    """The native PAL-static entry: dispatch on r28 (r28, r30, b0 only) to STRIDE-byte entries."""
    from .pvcatalog import native_statements

    out = ["/*",
           f" * Generated by ivtx for {source}: the native PAL-static entry (docs/pal-static.md).",
           " * In: r28 = index, r29 = argument, b0 = return address. Out: r29 = result.",
           " * Uses r28, r30 and b0 only; entry i is at ivtx_pal_entries + i*" + str(STRIDE) + ", starts by",
           " * putting the return address back in b0 (RFI: the caller's b0) and ends with br.cond b0.",
           " */",
           '\t.section .text..ivtx_pal, "ax"',
           "\t.align 32",
           f"\t.global {ENTRY}",
           f"{ENTRY}:",
           "\tmovl r30=ivtx_pal_entries",
           "\tshl r28=r28,6",
           "\t;;",
           "\tadd r30=r30,r28",
           "\tmov r28=b0",
           "\t;;",
           "\tmov b0=r30",
           "\tbr.cond.sptk.many b0",
           "\t;;",
           f"\t.align {STRIDE}",
           "ivtx_pal_entries:"]
    assert 1 << 6 == STRIDE
    for p in table:
        out.append(f"\t.org ivtx_pal_entries+{p.index * STRIDE}\t\t// {p.index}: {p.name}")
        body = native_statements(p.native)
        out.append("\tmov b0=r28")
        out.append("\t;;")
        if p.op == "RFI":
            out += ["\t" + x for x in body] + ["\t;;"]
            continue
        out += ["\t" + x for x in body]
        if body and body[-1] != ";;":
            out.append("\t;;")
        out += ["\tbr.cond.sptk.many b0", "\t;;"]
    out.append(f"\t.org ivtx_pal_entries+{len(table) * STRIDE}")
    if ool:
        out += ['\t.section .text..ivtx_pal_ool, "ax"', "\t.align 32"]
        for line in ool:
            out.append(line if line.endswith(":") else ("\t;;" if line == ";;" else "\t" + line))
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- the self-check model


def model_pal(program, sites: list[PalSite]) -> None:
    """Each `br.cond ivtx_pal_static` becomes what the callee does: the op's native instruction
    on r29 under the call's predicate (control falls through to the return label); a branch to
    out-of-line code becomes the calls and the result copy. The support code is dropped. The last
    statement of each replacement is remembered (program.ivtx_call_ends) for check_pal."""
    from .parse import parse_text

    stmts = program.statements
    cut = next((i for i, s in enumerate(stmts) if isinstance(s, Directive) and s.name == ".section"
                and s.args and ".text..ivtx_pal" in str(s.args[0])), None)
    if cut is not None:
        del stmts[cut:]
    by_ool = {f"ivtx_pal_ool_{ps.index}": ps for ps in sites if ps.out_of_line}
    table = {c.pal.index: c.pal for ps in sites for c in ps.calls}
    ends: dict[int, int | None] = {}  # id of a modelled call's last statement -> its site (None: inline)
    for i in range(len(stmts) - 1, -1, -1):
        s = stmts[i]
        if not (isinstance(s, Instruction) and s.mnemonic.startswith("br.cond") and s.srcs):
            continue
        target = str(getattr(s.srcs[-1], "expr", ""))
        if target in by_ool:
            body = []
            for ps in [by_ool[target]] + by_ool[target].chain:  # a chain: its sites one after the other
                body += _model_ool(ps, s.loc, parse_text)
                ends[id(body[-1])] = ps.index
        elif target == ENTRY:
            pal = table.get(_index_before(stmts, i))
            if pal is None:
                continue
            body = _model_call(pal, s.qp, s.loc, parse_text)
            ends[id(body[-1])] = None
        else:
            continue
        stmts[i:i + 1] = body
    program.ivtx_call_ends = ends


def _model_ool(ps: PalSite, loc, parse_text) -> list:
    """What the out-of-line code of one site does, as the self-check sees it."""
    # the out-of-line code saves what the use puts back after returning: b0 (macro body, return
    # address in a GR) or everything (tail call)
    body = [_mov(t, r, loc, None) for r, t in ps.saves if (r == "b0" and ps.ret) or (ps.tail and r != "b0")]
    for c, reg in zip(ps.calls, ps.arg_regs):
        if reg is not None and reg != ARG:  # the argument move happens out of line too
            body.append(_mov(ARG, reg, loc, None))
        body += _model_call(c.pal, c.pred, loc, parse_text)
    last = ps.calls[-1]
    if not ps.tail and ps.result_regs[0] is not None and ps.result_regs[0] != RESULT:
        body.append(_mov(ps.result_regs[0], RESULT, loc, last.pred))
    return body


def _index_before(stmts, i: int) -> int | None:
    for j in range(i - 1, max(i - 8, -1), -1):
        s = stmts[j]
        if isinstance(s, Instruction) and s.op == "mov" and s.dests == (Reg("r28"),) and s.srcs \
                and getattr(s.srcs[0], "value", None) is not None:
            return s.srcs[0].value
    return None


def _model_call(pal: PalOp, pred, loc, parse_text) -> list:
    q = f"({pred}) " if pred not in ("p0", None) else ""
    lines = [q + x.strip() for x in pal.native.replace(";;", "\n").replace(";", "\n").split("\n") if x.strip()]
    prog = parse_text("\n".join(lines) + "\n", path=str(loc))
    out = [x for x in prog.statements if isinstance(x, Instruction)]
    for x in out:
        x.loc = loc
    return out


def _mov(dst: str, src: str, loc, pred) -> Instruction:
    return Instruction("mov", (Reg(dst),), (Reg(src),), loc, qp=None if pred in (None, "p0") else pred)


def check_pal(b, tag, check, positions, dead_after, why_live) -> None:
    """At every expansion of the site, the registers the call may clobber (and the temporaries)
    are dead where the sequence ends: after its last call, its restores and its result copy."""
    from .transform import IvtxInternal

    _, ps, w, g = check
    code = b.cfg.code
    ends = getattr(b.program, "ivtx_call_ends", {})
    marks = [p for p in positions if id(code[p]) in ends and ends[id(code[p])] in (None, ps.index)]
    per_use = 1 if ps.out_of_line else len(ps.calls)
    if len(marks) != per_use * len(g.uses):
        raise IvtxInternal(f"self-check: PAL call {ps.index} found {len(marks)} call(s) in the output, "
                           f"expected {per_use * len(g.uses)}")
    for n, k in enumerate(range(per_use - 1, len(marks), per_use)):
        end = marks[k]
        inline = not ps.out_of_line or ps.tail  # where the restores are
        if inline:
            expect = [(reg, tmp) for reg, tmp in ps.saves]
        else:  # out of line the site itself only puts b0 back (macro body uses)
            expect = [(r, t) for r, t in ps.saves if r == "b0" and ps.ret]
        reloads = [reg for reg, _, _ in ps.reloads + ps.helpers] if inline else []
        dst = ps.result_regs[n]
        copy = dst if (dst is not None and dst != RESULT and inline) else None
        p = end + 1
        while p < len(code) and (expect or copy or reloads):
            s = code[p]
            hit = next(((r, t) for r, t in expect if _is_mov(s, r, t)), None)
            redo = next((r for r in reloads if isinstance(s, Instruction) and s.qp is None
                         and s.dests == (Reg(r),)), None)
            if hit is not None:
                expect.remove(hit)
            elif redo is not None:
                reloads.remove(redo)
            elif copy is not None and _is_mov(s, copy, RESULT):
                copy = None
            else:
                break
            end = p
            p += 1
        dead_after(b, end, w, f"PAL call {ps.index} ({g.op.name}) at {code[marks[k]].loc}", why_live)


def _is_mov(s, dst: str, src: str) -> bool:
    return isinstance(s, Instruction) and s.op == "mov" and s.dests == (Reg(dst),) and s.srcs == (Reg(src),)
