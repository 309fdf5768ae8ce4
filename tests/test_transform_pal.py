"""The PAL-static convention against its written contract (docs/pal-static.md): for every op of the
index table, a one-site handler's output sets r28 to the op's index, passes the argument and
takes the result in r29, predicates only the branch, and the native support code runs the table's
native instruction at entry index*64 using no register the contract does not give it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ivtx.ir import Instruction, Stop
from ivtx.pipeline import Options, analyse
from ivtx.transform import transform

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "pal-static.md"

HEAD = """\t.section .text..ivt,"ax"
\t.align 32768
\t.global ia64_ivt
ia64_ivt:
\t.org ia64_ivt+0x5000
one:
"""


def doc_table() -> dict[int, tuple[str, str, str, str]]:
    """index -> (op, argument, result, native) from the op index table of the doc."""
    text = DOC.read_text()
    section = text.split("## Op indexes", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 5 and cells[0].isdigit():
            rows[int(cells[0])] = (cells[1].strip("`"), cells[2], cells[3], cells[4].strip("`").replace("\\|", "|"))
    return rows


TABLE = doc_table()
BY_NAME = {op: i for i, (op, *_rest) in TABLE.items()}


def test_doc_table_is_dense_and_names_the_kernel_registers():
    assert sorted(TABLE) == list(range(len(TABLE)))
    assert [BY_NAME[f"MOV_TO_KR ar.k{k}"] for k in range(8)] == list(range(BY_NAME["MOV_TO_KR ar.k0"],
                                                                             BY_NAME["MOV_TO_KR ar.k0"] + 8))
    assert "ITC_I_AND_D" not in BY_NAME


# One native site per row, written with r17 as argument, r16 as result and p6 as predicate where
# the op has them. The handler keeps r9 in memory around the site so that b0, live at rfi, has a
# register outside bank 0 to wait in even when the op switches banks.
def fixture(row: tuple[str, str, str, str]) -> str:
    op, arg, res, native = row
    text = native.replace("r29=r29", "r16=r17")
    if arg == "r29":
        text = text.replace("r29", "r17")
    if res == "r29":
        text = text.replace("r29", "r16")
    lines = [x.strip() for x in text.replace(";;", "\n;;\n").split("\n") if x.strip()]
    predicated = {"MOV_FROM_IPSR", "MOV_FROM_PSR", "MOV_FROM_ITC", "MOV_TO_ITIR", "MOV_TO_IHA", "MOV_TO_IPSR",
                  "MOV_TO_IFS", "ITC_I", "ITC_D", "THASH", "SSM_PSR_I", "RSM_PSR_I"}
    if op in predicated:
        lines[0] = "(p6) " + lines[0]
    body = ["mov r17=r0", "mov r18=r0", "cmp.eq p6,p0=r0,r0", "st8 [r18]=r9", ";;"] + lines + [";;"]
    if op == "BSW_1":  # in bank 1 the handler leaves through the kernel exit path (no b0 there)
        body += ["br.sptk.many ia64_leave_kernel", ";;"]
    else:
        body += ["ld8 r9=[r18]", ";;", "rfi", ";;"]
    return HEAD + "".join(f"\t{x}\n" for x in body)


def run(tmp_path: Path, text: str):
    src = tmp_path / "one.S"
    src.write_text(text)
    opts = Options(include_dirs=[str(tmp_path)], prelude=False)
    a = analyse(str(src), opts)
    return a, transform(a, "pal-static", options=opts, sizes="estimate")


def calls(program) -> list[tuple[int, list]]:
    """(r28 value, the instructions of its setup group and branch) for each call of the output."""
    stmts = program.statements
    out = []
    for i, s in enumerate(stmts):
        if isinstance(s, Instruction) and s.mnemonic == "br.cond.sptk.many" and \
                str(getattr(s.srcs[-1], "expr", "")) == "ivtx_pal_static":
            j = i
            while j > 0 and not isinstance(stmts[j - 1], Stop):
                j -= 1
            group = [x for x in stmts[j:i + 1] if isinstance(x, Instruction)]
            r28 = [x.srcs[0].value for x in group if x.dests and str(x.dests[0]) == "r28"]
            out.append((r28[-1] if r28 else None, group, i))
    return out


@pytest.mark.parametrize("index", sorted(i for i in TABLE if TABLE[i][0] not in ("RFI", "BSW_0")),
                         ids=[TABLE[i][0] for i in sorted(TABLE) if TABLE[i][0] not in ("RFI", "BSW_0")])
def test_every_call_follows_the_contract(index, tmp_path):
    op, arg, result, native = TABLE[index]
    a, res = run(tmp_path, fixture(TABLE[index]))
    assert res.ok, [u.reason for u in res.unresolved]
    got = calls(res.program)
    # the site's call, then rfi's
    assert got[0][0] == index
    assert got[-1][0] == (index if op == "BSW_1" else BY_NAME["RFI"])
    stmts = res.program.statements
    _, group, at = got[0]
    branch = group[-1]
    assert branch.qp == ("p6" if op.split()[0] in {"MOV_FROM_IPSR", "MOV_FROM_PSR", "MOV_FROM_ITC", "MOV_TO_ITIR",
                                                  "MOV_TO_IHA", "MOV_TO_IPSR", "MOV_TO_IFS", "ITC_I", "ITC_D",
                                                  "THASH", "SSM_PSR_I", "RSM_PSR_I"} else None)
    assert all(x.qp is None for x in group[:-1])  # only the branch is predicated
    before = [x for x in stmts[:at] if isinstance(x, Instruction)]
    sets = [(str(x.dests[0]), str(x.srcs[0])) for x in before if x.op == "mov" and x.dests]
    if arg == "r29":
        assert ("r29", "r17") in sets
    after = [x for x in stmts[at:] if isinstance(x, Instruction)][:8]
    copies = [(str(x.dests[0]), str(x.srcs[0]), x.qp) for x in after if x.op == "mov" and x.dests]
    if result == "r29":
        assert ("r16", "r29", branch.qp) in copies
    # b0 holds the return address: `movl r28=Nf ;; mov b0=r28`, and b0 (live at rfi) is saved first
    assert any(x.op == "mov" and str(x.dests[0]) == "b0" and str(x.srcs[0]) == "r28" for x in group)
    if op != "BSW_1":
        assert any(r.kind == "save-restore" and r.moved.startswith("b0 is moved to") for r in res.restructurings)


def test_itc_i_and_d_is_two_calls_under_their_predicates(tmp_path):
    text = HEAD + "".join(f"\t{x}\n" for x in ["mov r18=r0", "cmp.eq p6,p7=r0,r0", ";;", "(p6) itc.i r18",
                                                   "(p7) itc.d r18", ";;", "rfi", ";;"])
    _, res = run(tmp_path, text)
    assert res.ok
    got = calls(res.program)
    assert [(c[0], c[1][-1].qp) for c in got] == [(BY_NAME["ITC_I"], "p6"), (BY_NAME["ITC_D"], "p7"),
                                                  (BY_NAME["RFI"], None)]


def test_native_entries_run_the_table_and_touch_only_the_contract_registers(tmp_path):
    from ivtx.effects import effects_of
    from ivtx.parse import parse_text

    _, res = run(tmp_path, fixture(TABLE[BY_NAME["ITC_D"]]))
    support = res.support["ivtx/pal_static_native.S"]
    prog = parse_text(support, "pal.S")
    entries: dict[int, list[Instruction]] = {}
    dispatcher: list[Instruction] = []
    current = None
    for s in prog.statements:
        if type(s).__name__ == "Directive" and s.name == ".org":
            current = int(str(s.args[0]).split("+")[1].strip()) // 64 if "+" in str(s.args[0]) else None
            if current is not None and current < len(TABLE):
                entries[current] = []
        elif isinstance(s, Instruction):
            (entries[current] if current in entries else dispatcher).append(s)
    assert sorted(entries) == sorted(TABLE)
    allowed = {"r28", "r30", "b0"}
    for s in dispatcher:
        assert effects_of(s).must_writes <= allowed, s
    for i, insns in entries.items():
        op, arg, result, native = TABLE[i]
        assert str(insns[0].dests[0]) == "b0" and str(insns[0].srcs[0]) == "r28"  # the return address back
        body = [x for x in insns[1:] if not x.mnemonic.startswith("br")]
        want = [x for x in parse_text(native.replace(";;", "\n") + "\n", "n").statements if isinstance(x, Instruction)]
        assert [(x.mnemonic, x.dests, x.srcs) for x in body] == [(x.mnemonic, x.dests, x.srcs) for x in want], op
        if op != "RFI":
            assert insns[-1].mnemonic == "br.cond.sptk.many" and str(insns[-1].srcs[0]) == "b0"
        for x in body:  # the op writes only its result register among the GRs
            assert {w for w in effects_of(x).must_writes if w[0] == "r"} <= {"r29"}


def test_values_live_across_the_call_move_to_preserved_registers():
    """ivt_tlb.S: r31 holds the saved predicates across every TLB insert; the callee may clobber
    bank-0 r24-r31, so r31 is moved into a free register of r16-r23 (preserved) and back."""
    src = ROOT / "samples" / "ivt_tlb.S"
    opts = Options(include_dirs=[str(ROOT / "samples")])
    res = transform(analyse(str(src), opts), "pal-static", options=opts, sizes="estimate")
    assert res.ok
    moves = [r for r in res.restructurings if r.kind == "save-restore" and r.moved.startswith("r31 is moved to ")]
    assert moves
    for r in moves:
        tmp = r.moved.split("moved to ")[1].split()[0]
        assert tmp in {f"r{n}" for n in range(16, 24)}, r.moved


# ---------------------------------------------------------------- restructurings under PAL-static


def transform_sample(name: str, defines=(), **kw):
    src = ROOT / "samples" / name
    opts = Options(include_dirs=[str(ROOT / "samples")], defines=list(defines))
    return transform(analyse(str(src), opts), "pal-static", options=opts, sizes="estimate", **kw)


def ool_block(support: str, label: str) -> list[str]:
    """The statements of one out-of-line sequence of the support file, up to the next label."""
    lines = [x.strip() for x in support.split("\n")]
    i = lines.index(f"{label}:")
    out = []
    for x in lines[i + 1:]:
        if x.startswith("ivtx_pal_ool_") and x.endswith(":"):
            break
        out.append(x)
    return out


def test_consecutive_out_of_line_calls_share_one_branch(monkeypatch):
    """ivt_save.S, dispatch_to_fault_handler: after SAVE_MIN its four CR reads (lines 146-149, one
    instruction group) go out of line; with a branch and a return label each they need 1040 bytes
    of the 1024-byte slot, chained they take one branch out and one back."""
    import ivtx.emit_pal as pal

    res = transform_sample("ivt_save.S")
    assert res.ok
    size = next(v for v in res.vectors if v.name == "dispatch_to_fault_handler")
    assert size.after <= size.slot == 0x400
    lines = res.text.split("\n")
    start = lines.index("\talloc r14=ar.pfs,0,0,5,0")
    assert lines[start + 1].startswith("\tbr.cond.sptk.many ivtx_pal_ool_")
    head = lines[start + 1].split()[1]
    assert lines[start + 2] == f"ivtx_pal_ret_{head.rsplit('_', 1)[1]}:" and lines[start + 3] == "\t;;"
    assert "\tssm psr.ic | PSR_DEFAULT_BITS" == lines[start + 4]  # the other three reads are gone
    joined = [r for r in res.restructurings if r.kind == "out-of-line" and f"joins {head}" in r.moved]
    assert [r.site.split(":")[1] for r in joined] == ["147", "148", "149"]
    body = ool_block(res.support[pal.SUPPORT], head)
    indexes = [int(x.split("=")[1]) for x in body if x.startswith("mov r28=") and x.split("=")[1].isdigit()]
    assert indexes == [BY_NAME[op] for op in ("MOV_FROM_ISR", "MOV_FROM_IFA", "MOV_FROM_IIM", "MOV_FROM_ITIR")]
    # alloc 0,0,5: out0-out4 are r32-r36, so out1-out4 take the results
    assert [x for x in body if x.startswith("mov r3") and x.endswith("=r29")] == \
        ["mov r33=r29", "mov r34=r29", "mov r35=r29", "mov r36=r29"]
    assert [x for x in body if x.startswith("br.")][-1] == f"br.cond.sptk.many ivtx_pal_ret_{head.rsplit('_', 1)[1]}"
    monkeypatch.setattr(pal, "_consecutive", lambda *args: False)
    res = transform_sample("ivt_save.S")
    assert [u.site for u in res.unresolved] == ["dispatch_to_fault_handler"]
    assert "even with its calls out of line" in res.unresolved[0].reason


def test_a_temporary_input_is_recomputed_first_in_two_steps(monkeypatch):
    """ivt_tlb.S with CONFIG_SMP, vhpt_miss: across the inserts (line 114) b0, r26 (pmd entry),
    r28 (&pmd) and r31 (saved pr) sit in registers the callee may clobber, and r24 (the page-table
    page's PTE, read by the itc.d at line 122) too. r24 = adds r24=PTE_BITS,r23 with r23 =
    dep r23=0,r26,0,PAGE_SHIFT (lines 104, 107): recomputable, but only through r23, which is one of
    the four free preserved registers (r17, r19, r22, r23) the four saves need. r23 is dead after the
    site, so it holds a saved value during the call and is recomputed from the restored r26 first."""
    import ivtx.emit_pal as pal
    import ivtx.pal_saves as saves_mod

    res = transform_sample("ivt_tlb.S", ["CONFIG_SMP"])
    assert res.ok, [u.reason for u in res.unresolved]
    at = [r for r in res.restructurings if ":114:" in r.site]
    saves = {r.moved.split()[0]: r.moved.split("moved to ")[1].split()[0] for r in at if r.kind == "save-restore"}
    assert sorted(saves) == ["b0", "r26", "r28", "r31"] and sorted(saves.values()) == ["r17", "r19", "r22", "r23"]
    remat = [r for r in at if r.kind == "rematerialize"]
    assert len(remat) == 1 and remat[0].moved.startswith("r24 is recomputed after the call instead of saved, in "
                                                        "two steps: 'dep r23=0,r26,0,14', then 'adds r24=")
    labels = [x[:-1] for x in res.support[pal.SUPPORT].split("\n") if x.startswith("ivtx_pal_ool_")]
    block = next(b for b in (ool_block(res.support[pal.SUPPORT], lab) for lab in labels)
                 if "mov r28=24" in b and "mov r28=25" in b)
    after = block[block.index("mov r28=25"):]
    restore = after.index(f"mov r26={saves['r26']}")
    dep = after.index("dep r23 = 0, r26, 0, 14")
    adds = next(i for i, x in enumerate(after) if x.startswith("adds r24 =") and x.endswith(", r23"))
    assert restore < dep < adds and ";;" in after[restore:dep] and ";;" in after[dep:adds]
    monkeypatch.setattr(saves_mod, "_helper", lambda *args: None)
    res = transform_sample("ivt_tlb.S", ["CONFIG_SMP"])
    assert any("4 register(s) live across the call (b0, r26, r28, r31) but only 3 preserved" in u.reason
               for u in res.unresolved)


LEND = HEAD.replace("one:", "lend:") + "".join(f"\t{x}\n" for x in [
    "ld8 r16=[r13]", "ld8 r17=[r13]", "ld8 r18=[r13]", "ld8 r19=[r13]", "ld8 r20=[r13]", "ld8 r21=[r13]",
    "mov r22=r12", "ld8 r23=[r13]", ";;", "itc.d r16", ";;",
    "st8 [r13]=r17", "st8 [r13]=r18", ";;", "st8 [r13]=r19", "st8 [r13]=r20", ";;",
    "st8 [r13]=r21", "st8 [r13]=r22", ";;", "st8 [r13]=r23", ";;", "rfi", ";;"])


def test_a_live_preserved_register_that_can_be_recomputed_holds_a_saved_value(tmp_path, monkeypatch):
    """Every preserved bank-0 register is read after the itc.d and b0 (live at rfi) needs one: r22
    is a copy of r12, which the call preserves, so r22 holds b0 during the call and is read again
    from r12 after it."""
    import ivtx.pal_saves as saves_mod

    a, res = run(tmp_path, LEND)
    assert res.ok, [u.reason for u in res.unresolved]
    kinds = [(r.kind, r.moved.split(" (")[0].split(" is ")[0]) for r in res.restructurings]
    assert ("rematerialize", "r22") in kinds and ("save-restore", "b0") in kinds
    body = [x.strip() for x in res.text.split("\n")]
    save, call = body.index("mov r22=b0"), body.index("mov r28=25")
    back, again = body.index("mov b0=r22"), body.index("mov r22 = r12")
    assert save < call < back < again and ";;" in body[back:again]
    assert body.index("st8 [r13]=r22") > again
    monkeypatch.setattr(saves_mod, "_helper", lambda *args: None)
    _, res = run(tmp_path, LEND)
    assert res.unresolved and "1 register(s) live across the call (b0) but only 0 preserved" in res.unresolved[0].reason


def test_tight_sample_stays_unresolved_and_says_why(tmp_path, capsys):
    """ivt_tight.S under PAL-static. At the itc.d every bank-0 register and b0 is live. Four of the
    values in registers the callee may clobber are recomputed after the call (r24 from r23, r25 from
    r1, r26 a constant, r29 from r13); five cannot be: b0 (interrupted state), r27 (head index, from
    a load), r28 and r30 (loaded), r31 (the saved predicates). A preserved register can hold one of
    them only if its own value is recomputed after the call: r16-r20 hold interruption CRs, and
    reading one again is a PAL call of its own (clobbering the same registers); r21 is the operand;
    r23 comes from the loaded head index; only r22 (= r12) qualifies. One holder for five values.
    Moving does not help either: below the site a dv_serialize_data and the record stores stop it,
    above it the loads of r28/r30 (TLB write against memory access); at each place above, the same
    five values are live (the reason lists the places tried)."""
    from ivtx.cli import main

    res = transform_sample("ivt_tight.S")
    assert not res.ok and res.text is None
    [u] = res.unresolved
    assert u.op == "ITC_D" and u.site.endswith("ivt_tight.S:87:2 in alt_dtlb_miss")
    r = u.reason
    assert r.startswith("5 register(s) live across the call (b0, r27, r28, r30, r31) but only 0 preserved register(s) "
                        "free to hold them: b0 interrupted state; r27 written by 'and r27=15,r27'")
    assert "r28 written by 'ld8 r28=[r24]'" in r and "r30 written by 'ld8 r30=[r29]'" in r
    assert "r31 written by 'mov r31=pr'" in r
    for k, cr in zip(range(16, 21), ("ifa", "isr", "ipsr", "itir", "iip")):
        assert f"r{k}: holds cr.{cr}: reading it again is a PAL call of its own" in r
    assert "r21: operands of the site" in r
    assert "recomputable after the call, so each can hold one value: r22 ('mov r22 = r12' after the call)" in r
    # ivtx tries the moves too: up to four places above it, each with the same five values
    moving = r.split("; moving the site: ", 1)[1]
    assert moving.startswith("above 'adds r24=8,r23' (") and "ivt_tight.S:85:2): 5 register(s) live across" in moving
    assert moving.count("above '") == 4 and "below '" not in moving
    out = tmp_path / "out.S"
    status = main(["transform", "-I", str(ROOT / "samples"), "--convention", "pal-static", "--sizes", "estimate",
                   str(ROOT / "samples" / "ivt_tight.S"), "-o", str(out)])
    assert status == 3 and not out.exists()
    assert "5 register(s) live across the call" in capsys.readouterr().err


def test_partial_output_of_an_overflowing_vector_keeps_the_program_and_names_the_vector(monkeypatch):
    """As above without chaining (each call out of line with its own branch and return label):
    dispatch_to_fault_handler needs more than its 1024 bytes; `partial` still gives the output
    (text and program) and lists the vector as unresolved with the bytes it needs."""
    import ivtx.emit_pal as pal

    monkeypatch.setattr(pal, "_consecutive", lambda *args: False)
    res = transform_sample("ivt_save.S", partial=True)
    assert not res.ok and res.text is not None and res.program is not None
    assert [u.site for u in res.unresolved] == ["dispatch_to_fault_handler"]
    [v] = [v for v in res.vectors if v.name == "dispatch_to_fault_handler"]
    assert v.slot == 0x400 < v.after
    assert res.unresolved[0].reason == f"needs {v.after} bytes of its 0x400-byte slot even with its calls out of line"


# A VHPT-style walk where the cr.iha read has too few free preserved registers where it is written
# (b0 and r31 live across its call, and only r20 free: r16-r19, r21 and r23 hold loaded values read
# later, which cannot be recomputed after the call). One instruction up, above `ld8 r21=[r16]`,
# r21 is not yet written: two holders. The move frees r21 the way the Linux vhpt_miss (CONFIG_SMP)
# needs it.
MOVE = """\t.section .text..ivt,"ax"
\t.align 32768
\t.global ia64_ivt
ia64_ivt:
\t.org ia64_ivt+0x0000
vhpt_miss:
\tmov r16=cr.ifa\t\t\t// the address
\t;;
\tand r16=-8,r16
\tmov r31=pr\t\t\t// the predicates, back before rfi
\t;;
\tadds r17=8,r16
\tadds r18=16,r16
\tadds r19=24,r16
\tadds r21=32,r16
\t;;
\tld8 r17=[r17]\t\t\t// four words of the entry
\tld8 r18=[r18]
\tld8 r19=[r19]
\tld8 r23=[r21]
\t;;
\tld8 r21=[r16]
\t;;
\tmov r22=cr.iha\t\t\t// the hash address
\t;;
\ttbit.nz p10,p11=r19,3
\t;;
(p10)\tadd r18=r18,r17
(p11)\tadd r18=r18,r21
\t;;
\tadd r18=r18,r23
\tadd r17=r22,r16
\t;;
\tadd r18=r18,r17
\t;;
\titc.d r18
\t;;
\tmov pr=r31,-1
\t;;
\trfi
\t;;
\t.org ia64_ivt+0x0400
"""


def test_a_site_short_of_preserved_registers_moves_where_its_call_fits(tmp_path):
    from ivtx.verify import scribbling_model, verify

    src = tmp_path / "move.S"
    src.write_text(MOVE)
    opts = Options(prelude=False)
    a = analyse(str(src), opts)
    res = transform(a, "pal-static", options=opts, sizes="estimate")
    assert res.ok, [u.reason for u in res.unresolved]
    [mv] = [r for r in res.restructurings if r.kind == "move"]
    assert mv.site == f"{src}:24:2 in vhpt_miss"
    assert mv.moved == f"the site moves above 'ld8 r21=[r16]' ({src}:22:2)"
    # the call sequence stands on lines of its own before the ld8, the old line keeps its comment,
    # and every other line keeps its number (reports name sites by line)
    lines = res.text.split("\n")
    k = next(i for i, ln in enumerate(lines) if "moved here from line 24" in ln)
    assert lines[k].strip().startswith("mov ") and lines[k - 1].strip() == ";;"
    after = lines[k:].index("\tld8 r21=[r16]")
    assert "br.cond.sptk.many ivtx_pal_static" in "\n".join(lines[k:k + after])
    assert lines[k + after + 2].strip() == "// the hash address"
    assert res.source_text == MOVE  # the patch is made from the input as written
    # where it was written, the site is unresolved: that is what the move fixed
    kept = transform(a, "pal-static", options=opts, sizes="estimate", _moves=False)
    assert not kept.ok and "2 register(s) live across the call (b0, r31) but only 1" in kept.unresolved[0].reason
    result = verify(a.program, res.program, trials=60, pv_model=scribbling_model, policy=a.policy)
    assert result.handlers and result.ok, [h.mismatch.describe() for h in result.mismatches]


def test_the_moved_output_assembles_silently(tmp_path):
    from gas import assemble

    from ivtx.cli import main

    src = tmp_path / "move.S"
    src.write_text(MOVE)
    out, sup = tmp_path / "out" / "move.S", tmp_path / "sup"
    out.parent.mkdir()
    assert main(["transform", "--no-prelude", "--convention", "pal-static", "--sizes", "estimate", str(src),
                 "-o", str(out), "--support-dir", str(sup)]) == 0
    pp = tmp_path / "move.s"
    assert main(["pp", "--no-prelude", "-I", str(sup), "-I", str(out.parent), str(out), "-o", str(pp)]) == 0
    _, err = assemble(pp.read_text())
    assert err == ""


def test_a_move_blocked_by_a_dependence_is_reported_with_the_site(tmp_path):
    """The same walk where the instructions on both sides read r22 (the site's result): the ld8
    above it, the tbit below it. The site stays unresolved and says why it could not move."""
    src = tmp_path / "blocked.S"
    text = MOVE.replace("\tld8 r21=[r16]\n", "\tld8 r21=[r22]\n").replace("tbit.nz p10,p11=r19,3", "tbit.nz p10,p11=r22,3")
    src.write_text(text.replace("\tadd r18=r18,r23\n", "\tadd r18=r18,r23\n\tadd r19=r19,r16\n"))
    opts = Options(prelude=False)
    a = analyse(str(src), opts)
    res = transform(a, "pal-static", options=opts, sizes="estimate")
    assert not res.ok
    [u] = res.unresolved
    assert u.reason.endswith("moving the site: an operand, a CR, memory/TLB, a stop-sensitive instruction, a label "
                             "or a directive next to it blocks it")


def test_diff_shows_the_moved_site_like_transform(tmp_path, capsys):
    """`ivtx diff` plans the same way as transform (the move included): nothing unresolved, the
    move listed under the handler, and the unified patch reproduces the transform output."""
    from ivtx.cli import main

    src = tmp_path / "move.S"
    src.write_text(MOVE)
    assert main(["diff", "--no-prelude", "--convention", "pal-static", "--color", "never", "--sizes", "estimate",
                 "--width", "400", str(src)]) == 0
    shown = capsys.readouterr().out
    assert "0 unresolved" in shown and "move: " in shown and "the site moves above 'ld8 r21=[r16]'" in shown
    assert main(["diff", "--no-prelude", "--convention", "pal-static", "--unified", "--sizes", "estimate",
                 str(src)]) == 0
    patch = capsys.readouterr().out
    opts = Options(prelude=False)
    res = transform(analyse(str(src), opts), "pal-static", options=opts, sizes="estimate")
    from ivtx.transform import unified_patch

    assert patch == unified_patch(str(src), MOVE, res.text)
