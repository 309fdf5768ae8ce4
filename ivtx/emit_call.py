"""The pvops *call* rendering (design.md "Conventions"): each site becomes an explicit call.

Where psr.dt=1 at every use of the site, the call goes through the pv_ops table (one 8-byte
entry per site, `ivtx_pv_ops`, which the hypervisor must keep pinned: with psr.ic=0 a TLB miss
on it would be fatal, design.md "Addressing and faults at the site"):

        mov r17=b6                      // b6 is interrupted state: saved (restructuring)
        movl r16=ivtx_pv_ops+8*K ;;     // the entry
        ld8 r16=[r16] ;;
        mov b6=r16
        movl r16=Nf                     // return address in a free GR
        br.cond.sptk.many b6 ;;         // no br.call: it would write ar.pfs (context)
    N:  mov b6=r17 ;;

Where psr.dt is 0 or unknown (after `rsm psr.dt`) no data access is allowed: the site branches
directly (`br.cond`, IP-relative, no register) to its stub, which returns with a direct branch
to a label after the site (a macro body used several times passes the return address in a GR
instead). Stubs are generated per site: the native instruction with the site's registers, then
the return; the table's entry K points to stub K. The callee may clobber the site's clobbers,
the return-address GR and the branch register; nothing else.

A vector that overflows its slot gets its table calls out of line: the site branches to code in
the stub section that makes the call and branches back (restructuring "out-of-line").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from string import Template

from .emit_macro import (SourceFiles, TextEdit, Unplaceable, _code_follows, _indent, _inline, _lines,
                         delete_span, replace_span)
from .bundling import check_groups
from .ir import Directive, Imm, Instruction, Label, Reg

TABLE = "ivtx_pv_ops"
STUBS = "ivtx/pv_call_native.S"
NON_BANKED = [f"r{n}" for n in range(1, 16)]


def native_text(op, roles: dict[str, str]) -> list[str]:
    """The op's native statements with the site's registers: ['(p7) itc.d r18'] / ['ssm psr.ic', ';;', ...]."""
    values = {r: roles.get(r, "r0") for r in op.args}
    from .pvcatalog import native_statements

    return native_statements(Template(op.native).substitute(values).replace("(p0) ", ""))


def local_label(program) -> str:
    """A numeric local label no statement of the program defines or names."""
    used = set()
    for s in program.statements:
        if isinstance(s, Label) and s.local:
            used.add(s.name)
        elif isinstance(s, Instruction):
            if s.tag:
                used.add(s.tag)
            for o in s.srcs:
                if isinstance(o, Imm) and hasattr(o.expr, "name") and o.expr.name[:-1].isdigit():
                    used.add(o.expr.name[:-1])
    n = 9001
    while str(n) in used:
        n += 1
    return str(n)


def canonical_roles(g) -> dict[str, str] | str:
    """Role -> register at every use (they must agree: a stub holds one set of registers)."""
    first = None
    for u in g.uses:
        roles = {r: v for r, v in u.args.items() if g.op.role_kind(r) not in ("clob", "pclob")}
        if first is None:
            first = roles
        elif roles != first:
            return (f"the macro body binds different registers at its uses ({first} and {roles}); "
                    "a stub holds one set")
    return first or {}


def starts_group(a, g) -> bool:
    """Whether the site is the first instruction of its group at every use: the statement before
    it (labels and directives do not end a group) is a stop, or there is none."""
    stmts = a.cfg.program.statements
    for u in g.uses:
        i = a.cfg.stmt_index[u.pos] - 1
        while i >= 0 and type(stmts[i]).__name__ in ("Label", "Directive"):
            i -= 1
        if i >= 0 and type(stmts[i]).__name__ != "Stop":
            return False
    return True


def in_explicit_bundle(a, g) -> bool:
    stmts = a.cfg.program.statements
    i = a.cfg.stmt_index[g.first.pos] - 1
    while i >= 0:
        name = type(stmts[i]).__name__
        if name == "BundleEnd":
            return False
        if name == "BundleBegin":
            return True
        i -= 1
    return False


def stop_written_after(a, g) -> bool:
    """Whether the statement right after the site is a stop, at every use."""
    stmts = a.cfg.program.statements
    for u in g.uses:
        i = a.cfg.stmt_index[u.pos + u.length - 1] + 1
        if i >= len(stmts) or type(stmts[i]).__name__ != "Stop":
            return False
    return True


def place_sequence(a, files: SourceFiles, g, items: list[str], tag, moved=None) -> list[TextEdit]:
    """The site's text becomes `items` (statements, ';;', 'N:' labels); the site's other
    instructions and the stops between them go. Leading stops go on lines of their own so that
    the first statement keeps the line (and its comment)."""
    edits: list[TextEdit] = []
    first = g.span
    line = files.line(first.file, first.line)
    landed = files.moved.get((first.file, first.line))
    if landed is not None and landed[0] <= first.start and first.end <= landed[1] and moved is None:
        # a moved site (ivtx.pal_move) written inline on another instruction's line: the
        # `;; SITE ;;` text goes, the sequence takes lines of its own next to that line, between
        # stops (it was in a group of its own)
        start, end, direction, comment = landed
        body = list(items)
        while body and body[0] == ";;":
            body.pop(0)
        # (the `;;` written next to the moved text in the input stay: no doubled stops)
        stmts = a.cfg.program.statements
        i = a.cfg.stmt_index[g.first.pos]
        stop = [type(stmts[k]).__name__ == "Stop" if 0 <= k < len(stmts) else False for k in (i - 2, i + 2)]
        body = ([] if stop[0] else [";;"]) + body
        if stop[1] and body and body[-1] == ";;":
            body.pop()
        elif not stop[1] and (not body or body[-1] != ";;"):
            body.append(";;")
        e = TextEdit(first.file, first.line, start, end, "", tag=tag)
        lines = _lines(body, _indent(line), comment)
        if direction < 0:
            e.before = lines
        else:
            e.after = lines
        return [e]
    if moved is None and items and items[-1] == ";;" and stop_written_after(a, g):
        items = items[:-1]  # the stop written after the site ends the sequence's last group
    lead = []
    while items and items[0] == ";;":
        lead.append(items.pop(0))
    if moved is not None:
        from .transform import _insert_at

        edits.append(delete_span(first))
        pos, direction = moved
        edits.append(_insert_at(a, files, pos, direction, lead + items, tag))
    elif g.in_macro or _code_follows(line, first.end):
        text = _inline(lead + items).strip()
        if "," in text and line[first.end:].lstrip()[:1] in (",", ")"):
            raise Unplaceable("the site is a macro argument and its call sequence has commas")
        edits.append(TextEdit(first.file, first.line, first.start, first.end, text, tag=tag))
    else:
        e = replace_span(line, first, items[0], tag=tag)
        indent = line[:len(line) - len(line.lstrip(" \t"))] or "\t"
        if line[:1] == "(":
            indent = "\t"
        e.before = _lines(lead, indent, None)
        e.after = _lines(items[1:], indent, None)
        edits.append(e)
    for loc in g.located[1:]:
        edits.append(delete_span(loc.span))
    for sp in g.stops:
        edits.append(delete_span(sp))
    return edits


@dataclass
class CallSite:
    """What the call rendering decided for one site group."""

    index: int
    path: str  # table | direct
    roles: dict[str, str]  # role -> canonical register (pred/src/dst/kr) plus chosen clobbers
    clobbers: list[str]
    link: str | None = None  # GR with the return address
    save: str | None = None  # GR the branch register is saved in
    breg: str | None = None
    entry: str | None = None  # out of line at a macro-body site: the GR the table entry is loaded into
    out_of_line: bool = False
    uses: list = field(default_factory=list)
    native: list = field(default_factory=list)  # the native statements the stub executes
    model_ends: list = field(default_factory=list)

    @property
    def stub(self) -> str:
        return f"ivtx_pv_stub_{self.index}"

    @property
    def returns(self) -> bool:
        return self.roles.get("@op") != "RFI"


def _alloc(g, need_gr: int, need_pr: int, free_gr: list[str], free_pr: list[str], path: str, single: bool,
           bank_switch: bool, rfi: bool, ool: bool) -> tuple | str:
    """(clobbers, link, save, breg, entry) or a reason. `entry` is the extra GR a macro-body site
    needs out of line (the out-of-line code loads the table entry into it; the return address
    stays in `link`)."""
    gr = list(free_gr)
    clobs = gr[:need_gr]
    rest = gr[need_gr:]
    if len(clobs) < need_gr or len(free_pr) < need_pr:
        return "too few registers for the op's clobbers"
    link = save = breg = entry = None
    needs_link = path == "table" or (not single and not rfi)
    if needs_link:
        if not rest:
            return "no free GR for the return address (and table entry)"
        link = rest.pop(0)
    if ool and not single and path == "table":
        if not rest:
            return "no second free GR for the table entry out of line"
        entry = rest.pop(0)
    if needs_link:
        free_br = [b for b in g.free_br if b != "b0"] + (["b0"] if "b0" in g.free_br else [])
        if free_br and not rfi:
            breg = free_br[0]
        else:
            breg = "b6"
            pool = [r for r in rest if r in NON_BANKED] if bank_switch else rest
            if not pool:
                return ("every branch register holds interrupted state and no GR is free to save one in"
                        + (" (outside r16-r31: the op switches banks)" if bank_switch else ""))
            save = pool[0]
    return clobs + free_pr[:need_pr], link, save, breg, entry


def plan_calls(a, groups, files: SourceFiles, res, catalog, out_of_line: frozenset = frozenset()):
    from .restructure import create_clobbers
    from .transform import Plan, Restructuring, UnresolvedSite, region_name, site_name, unknown_note

    plan = Plan()
    label = local_label(a.cfg.program)
    calls: list[CallSite] = []
    stub_text: list[str] = []
    for g in groups:
        name = ", ".join(site_name(a, u) for u in g.uses)
        text = _site_text(a, g)
        roles = canonical_roles(g) if not g.problem else None
        problem = g.problem or (roles if isinstance(roles, str) else None)
        if problem is None and in_explicit_bundle(a, g):
            problem = "the site is inside an explicit bundle { }: a call sequence does not fit in it"
        if problem:
            res.unresolved.append(UnresolvedSite(name, text, g.op.name, problem))
            continue
        states = [a.liveness.states[u.pos] for u in g.uses]
        path = "table" if all(st is not None and st.dt == 1 for st in states) else "direct"
        single = len(g.uses) == 1
        rfi = g.op.name == "RFI"
        bank_switch = g.op.name in ("BSW_0", "BSW_1")
        need_gr, need_pr = g.first.needs_gr, g.first.needs_pr
        free_gr, free_pr, extra, moved = g.free_gr, g.free_pr, [], None
        ool = path == "table" and g.first.pos in out_of_line
        got = _alloc(g, need_gr, need_pr, free_gr, free_pr, path, single, bank_switch, rfi, ool)
        if isinstance(got, str):
            want = need_gr + (2 if path == "table" or not single else 0) + (1 if ool and not single else 0)
            fix = create_clobbers(a, g, files, want, need_pr, catalog, "call")
            if fix.reason is None:
                got2 = _alloc(g, need_gr, need_pr, fix.free_gr, fix.free_pr, path, single, bank_switch, rfi, ool)
                if not isinstance(got2, str):
                    got = got2
                    res.restructurings.extend(fix.records)
                    extra = fix.edits
                    plan.checks.update(fix.checks)
                    if fix.moved_to is not None:
                        moved = (fix.moved_to, fix.moved_dir)
            if isinstance(got, str):
                res.unresolved.append(UnresolvedSite(name, text, g.op.name, got + ("; " + fix.reason if fix.reason else "")
                                                     + unknown_note(g)))
                continue
        clobs, link, save, breg, entry = got
        cs = CallSite(len(calls), path, dict(roles), clobs, link, save, breg, uses=list(g.uses), entry=entry)
        cs.roles["@op"] = g.op.name
        cs.out_of_line = ool
        calls.append(cs)
        tag = ("call", cs.index)
        items, stub = _sequence(a, g, cs, label, catalog)
        check_groups(items, f"the call at {name}")
        check_groups(stub, f"the stub of {name}")
        try:
            plan.edits.extend(place_sequence(a, files, g, items, tag, moved))
        except Unplaceable as exc:
            res.unresolved.append(UnresolvedSite(name, text, g.op.name, str(exc)))
            continue
        plan.edits.extend(extra)
        stub_text.extend(stub)
        plan.checks[tag] = _check_entry(g, cs)
        if save:
            res.restructurings.append(Restructuring(
                "save-restore", name, f"{breg} is saved in {save} around the call",
                f"the call needs a branch register and all of b0-b7 hold interrupted state; {save} is free on "
                "both sides", region_name(a, g.first)))
        if ool:
            res.restructurings.append(Restructuring(
                "out-of-line", name, f"the call sequence moves to {cs.stub}_ool; the site branches there and back",
                "the vector would overflow its slot with the call inline", region_name(a, g.first)))
        how = ("through the pv_ops table" if path == "table" else
               "by a direct branch to its stub (psr.dt is not 1: no data access)")
        res.edits.append(_record(a, g, files, cs, how, name))
    plan.support[STUBS] = _stub_file(a, calls, stub_text)
    plan.append_main = f"#include <{STUBS}>\t/* ivtx: the pv_ops table and its native stubs */\n"
    plan.rewrite = lambda program: model_calls(program, calls, catalog)
    res.call_table = {cs.index: cs.stub for cs in calls}
    return plan


def _site_text(a, g) -> str:
    from .printer import statement_text

    return statement_text(a.cfg.code[g.first.pos]) + ("; ..." if g.first.length > 1 else "")


def _record(a, g, files, cs: CallSite, how: str, name: str):
    from .transform import EditRecord, claim_text

    sp = g.span
    old = files.line(sp.file, sp.line)[sp.start:sp.end]
    clobbers = [x for x in [*cs.clobbers, cs.link, cs.save, cs.entry] if x]
    regs = ", ".join(clobbers)
    why = f"called {how}; " + (f"clobbers {regs} dead after the site (liveness)" if regs else "no register needed")
    why += claim_text(g, [x for x in [*cs.clobbers, cs.link, cs.save, cs.entry, cs.breg] if x])
    return EditRecord(name, f"{sp.file}:{sp.line}", g.op.name, old, f"call {cs.stub}", why, clobbers)


def _sequence(a, g, cs: CallSite, label: str, catalog) -> tuple[list[str], list[str]]:
    """(site items, stub lines) for one call."""
    lead = [] if starts_group(a, g) else [";;"]
    native = native_text(g.op, cs.roles)
    cs.native = native
    op_text = g.op.name + "(" + ", ".join(f"{r}={cs.roles.get(r, '?')}" for r in g.op.args
                                         if g.op.role_kind(r) not in ("clob", "pclob")) + ")"
    head = [f"{cs.stub}:\t\t// {op_text} at {a.cfg.code[g.first.pos].loc.use_site}; "
            f"may clobber {', '.join(cs.clobbers) or 'nothing'}" + (f", {cs.link}, {cs.breg}" if cs.link else "")]
    ret = f"{label}f"
    if cs.path == "table" and not cs.out_of_line:
        call = _table_call(cs, ret)
        items = lead + call + ([";;", f"{label}:"] + ([f"mov {cs.breg}={cs.save}", ";;"] if cs.save else [])
                                 if cs.returns else [";;"])
        stub = head + _stub_body(cs, native)
        return items, stub
    if cs.path == "table" and cs.entry:  # out of line, macro body: the callee returns to the site
        items = lead + ([f"mov {cs.save}={cs.breg}"] if cs.save else []) + \
            [f"movl {cs.link}={ret}", f"br.cond.sptk.many {cs.stub}_ool", ";;", f"{label}:"] + \
            ([f"mov {cs.breg}={cs.save}", ";;"] if cs.save else [])
        ool = [f"{cs.stub}_ool:", f"movl {cs.entry}={TABLE}+8*{cs.index}", ";;", ".serialize.data",
               f"ld8 {cs.entry}=[{cs.entry}]", ";;", f"mov {cs.breg}={cs.entry}", ";;",
               f"br.cond.sptk.many {cs.breg}", ";;"]
        return items, head + _stub_body(cs, native) + ool
    if cs.path == "table":  # out of line: the site branches to the call sequence and back
        back = f"ivtx_pv_ret_{cs.index}"
        items = [f"br.cond.sptk.many {cs.stub}_ool", f"{back}:"]  # a taken branch ends the group
        inner = f"ivtx_pv_oret_{cs.index}"
        ool = [f"{cs.stub}_ool:"] + _table_call(cs, inner) + [";;"]
        if cs.returns:
            ool += [f"{inner}:"] + ([f"mov {cs.breg}={cs.save}", ";;"] if cs.save else []) + \
                   [f"br.cond.sptk.many {back}", ";;"]
        return items, head + _stub_body(cs, native) + ool
    # direct: no data access
    # (a lone branch needs no stop around it: taken, it ends the instruction group)
    if not cs.returns:
        return [f"br.cond.sptk.many {cs.stub}"], head + native + [";;"]
    if cs.link is None:  # one use: the stub branches back to a label after the site
        back = f"ivtx_pv_ret_{cs.index}"
        return ([f"br.cond.sptk.many {cs.stub}", f"{back}:"],
                head + native + [";;", f"br.cond.sptk.many {back}", ";;"])
    items = lead + ([f"mov {cs.save}={cs.breg}"] if cs.save else []) + \
        [f"movl {cs.link}={ret}", f"br.cond.sptk.many {cs.stub}", ";;", f"{label}:"] + \
        ([f"mov {cs.breg}={cs.save}", ";;"] if cs.save else [])
    return items, head + _stub_body(cs, native)


def _table_call(cs: CallSite, ret: str) -> list[str]:
    out = [f"mov {cs.save}={cs.breg}"] if cs.save else []
    out += [f"movl {cs.link}={TABLE}+8*{cs.index}", ";;", ".serialize.data", f"ld8 {cs.link}=[{cs.link}]", ";;",
            f"mov {cs.breg}={cs.link}"]
    if cs.returns:
        out.append(f"movl {cs.link}={ret}")
    out.append(f"br.cond.sptk.many {cs.breg}")
    return out


def _stub_body(cs: CallSite, native: list[str]) -> list[str]:
    """Native instruction(s), then back through the branch register (the return address came in
    the link GR); RFI first puts the saved branch register back."""
    if not cs.returns:
        return ([f"mov {cs.breg}={cs.save}", ";;"] if cs.save else []) + native + [";;"]
    return [f"mov {cs.breg}={cs.link}", ";;"] + native + [";;", f"br.cond.sptk.many {cs.breg}", ";;"]


def _stub_file(a, calls: list[CallSite], stub_lines: list[str]) -> str:
    out = ["/*",
           f" * Generated by ivtx for {a.path}: the pv_ops call table and its native stubs",
           " * (pvops convention, call rendering). Entry K of ivtx_pv_ops is the address of the",
           " * code for site K; natively that is stub K, which executes the original instruction",
           " * and returns. The table must stay pinned (a TLB miss on it with psr.ic=0 is fatal);",
           " * the stubs live in kernel text, which Linux maps with a translation register.",
           " */",
           '\t.section .data..ivtx_pv_ops, "aw"',
           "\t.align 8",
           f"\t.global {TABLE}",
           f"{TABLE}:"]
    for cs in calls:
        out.append(f"\tdata8 {cs.stub}\t\t// {cs.index}: {cs.roles['@op']}")
    out += ['\t.section .text..ivtx_pv_stubs, "ax"', "\t.align 32"]
    for line in stub_lines:
        if line == ";;":
            out.append("\t;;")
        elif line.split("\t")[0].endswith(":"):
            out.append(line)
        else:
            out.append("\t" + line)
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- the self-check model


def _check_entry(g, cs: CallSite) -> tuple:
    w = list(cs.clobbers) + [r for r in (cs.link, cs.save, cs.entry) if r]
    if cs.breg and not cs.save:
        w.append(cs.breg)
    return ("call", cs, w, g)


def model_calls(program, calls: list[CallSite], catalog) -> None:
    """Rewrite the output's IR for the self-check: each call's branch (to the table entry or the
    stub) becomes what the callee does: the native instruction(s) with the site's registers, then
    a write of every clobber (the hypervisor's code may overwrite them). Control then falls
    through to the return point; the table and the stubs are dropped."""
    by_target: dict[str, CallSite] = {}
    for cs in calls:
        cs.model_ends = []
        by_target[cs.stub] = cs
        by_target[cs.stub + "_ool"] = cs
    stmts = program.statements
    cut = next((i for i, s in enumerate(stmts) if isinstance(s, Directive) and s.name == ".section"
                and s.args and ".data..ivtx_pv_ops" in str(s.args[0])), None)
    if cut is not None:
        del stmts[cut:]  # the table and the stubs: the model never enters them
    for i in range(len(stmts) - 1, -1, -1):
        s = stmts[i]
        if not isinstance(s, Instruction) or not s.mnemonic.startswith("br.cond") or not s.srcs:
            continue
        t = s.srcs[-1]
        cs = None
        if isinstance(t, Imm) and hasattr(t.expr, "name"):
            cs = by_target.get(t.expr.name)
        elif isinstance(t, Reg):
            cs = _table_call_before(stmts, i, calls)
        if cs is None:
            continue
        model = model_statements(cs, s.loc)
        stmts[i:i + 1] = model
        cs.model_ends.append(model[-1])


def model_statements(cs, loc) -> list:
    """The callee of call `cs` as straight-line code: native instruction(s), then clobber writes."""
    from .parse import parse_text

    native = [x for x in native_text_for(cs) if x != ";;"]
    prog = parse_text("\n".join(native) + "\n", path=str(loc))
    out = [x for x in prog.statements if isinstance(x, Instruction)]
    if not cs.returns and cs.save and not cs.out_of_line:
        # the stub puts the branch register back before rfi (out of line, the site's own code
        # saved it there: the model sees neither, the value is unchanged)
        out.insert(0, Instruction("mov", (Reg(cs.breg),), (Reg(cs.save),), loc))
    for c in cs.clobbers:
        if c[0] == "p":
            out.append(Instruction("cmp.eq", (Reg(c), Reg("p0")), (Reg("r0"), Reg("r0")), loc))
        else:
            out.append(Instruction("mov", (Reg(c),), (Reg("r0"),), loc))
    for x in out:
        x.loc = loc
    return out


def native_text_for(cs) -> list[str]:
    return cs.native


def _table_call_before(stmts, i: int, calls) -> "CallSite | None":
    """The call whose `movl rL=ivtx_pv_ops+8*K` precedes the indirect branch at i."""
    for j in range(i - 1, max(i - 12, -1), -1):
        s = stmts[j]
        if isinstance(s, Instruction) and s.op == "movl" and s.srcs and TABLE in str(s.srcs[0]):
            text = str(s.srcs[0].expr)
            k = text.rsplit("*", 1)[-1].strip(" ()")
            if k.isdigit() and int(k) < len(calls):
                return calls[int(k)]
    return None


def check_sequence(b, tag, check, positions, dead_after, why_live) -> None:
    """Self-check of one call: at every expansion, the registers the call may clobber are dead
    where the emitted sequence ends (after the branch register is restored)."""
    from .transform import IvtxInternal

    _, cs, w, g = check
    code = b.cfg.code
    index = {id(s): p for p, s in enumerate(code)}
    calls = [index[id(s)] for s in cs.model_ends if id(s) in index]
    if len(calls) != len(g.uses):
        raise IvtxInternal(f"self-check: call {cs.index} ({cs.roles['@op']}) found {len(calls)} times in the output, "
                           f"the input had {len(g.uses)} uses")
    for p in calls:
        end = p
        if cs.returns:
            nxt = p + 1
            while nxt < len(code) and _is_restore(code[nxt], cs):
                end = nxt
                nxt += 1
        what = f"call {cs.index} ({cs.roles['@op']}) at {code[p].loc}"
        dead_after(b, end, w if cs.returns else [r for r in w if r != cs.breg], what, why_live)


def _is_restore(s, cs: CallSite) -> bool:
    return (isinstance(s, Instruction) and s.op == "mov" and cs.save is not None
            and s.dests == (Reg(cs.breg),) and s.srcs == (Reg(cs.save),))
