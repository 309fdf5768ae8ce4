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
