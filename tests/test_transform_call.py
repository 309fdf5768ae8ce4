"""pvops call rendering (ivtx/emit_call.py): table calls where psr.dt=1, direct branches where it is
not, branch registers saved through free GRs, native stubs, out-of-line calls when a slot would
overflow, and the self-check."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivtx.pipeline import Options, analyse
from ivtx.transform import IvtxInternal, transform

HEAD = """\t.section .text..ivt,"ax"
\t.align 32768
\t.global ia64_ivt
ia64_ivt:
"""

# 0x0400: cr.ifa is read with psr.dt=1 (vector entry), cr.isr after `rsm psr.dt` (dt=0).
TWO_MODES = HEAD + """\t.org ia64_ivt+0x0400
one:
\tmov r31=pr
\tmov r16=cr.ifa\t\t\t// data translation on
\t;;
\trsm psr.dt
\t;;
\tsrlz.d
\t;;
\tmov r17=cr.isr\t\t\t// physical data accesses
\t;;
\tmov pr=r31,-1
\t;;
\trfi
\t;;
"""


def run(tmp_path: Path, text: str, **kw):
    src = tmp_path / "t.S"
    src.write_text(text)
    opts = Options(include_dirs=[str(tmp_path)], prelude=False)
    a = analyse(str(src), opts)
    return a, transform(a, "pvops", "call", options=opts, sizes=kw.get("sizes", "estimate"))


def lines_after(text: str, start: str, n: int) -> list[str]:
    lines = text.split("\n")
    i = next(k for k, ln in enumerate(lines) if ln.startswith(start))
    return [ln.split("//")[0].rstrip() for ln in lines[i:i + n]]


def test_dt_on_site_calls_through_the_table_saving_a_branch_register(tmp_path):
    a, res = run(tmp_path, TWO_MODES)
    assert res.ok
    site = next(s for s in a.sites if s.op is not None and s.op.name == "MOV_FROM_IFA")
    assert site.free_br == []  # every branch register is interrupted state at vector entry
    # r16 is the site's own operand; r17-r19 are the first free bank-0 registers: r17 carries the
    # table entry and then the return address, r18 holds b6 meanwhile
    assert lines_after(res.text, "\tmov r18=b6", 12) == [
        "\tmov r18=b6", "\tmovl r17=ivtx_pv_ops+8*0", "\t;;", "\t.serialize.data", "\tld8 r17=[r17]", "\t;;",
        "\tmov b6=r17", "\tmovl r17=9001f", "\tbr.cond.sptk.many b6", "\t;;", "9001:", "\tmov b6=r18"]
    kinds = [(r.kind, r.moved) for r in res.restructurings]
    assert ("save-restore", "b6 is saved in r18 around the call") in kinds
    stub = res.support["ivtx/pv_call_native.S"]
    assert "\tdata8 ivtx_pv_stub_0\t\t// 0: MOV_FROM_IFA" in stub
    body = stub.split("ivtx_pv_stub_0:", 1)[1].split("ivtx_pv_stub_1:", 1)[0].split("\n")[1:]
    assert [b for b in body if b] == ["\tmov b6=r17", "\t;;", "\tmov r16=cr.ifa", "\t;;", "\tbr.cond.sptk.many b6",
                                      "\t;;"]
    assert res.call_table == {0: "ivtx_pv_stub_0", 1: "ivtx_pv_stub_1", 2: "ivtx_pv_stub_2", 3: "ivtx_pv_stub_3"}


def test_dt_off_site_branches_directly_with_no_data_access(tmp_path):
    a, res = run(tmp_path, TWO_MODES)
    states = {s.op.name: a.liveness.states[s.pos].dt for s in a.sites if s.op is not None}
    assert states["MOV_FROM_ISR"] == 0
    assert lines_after(res.text, "\tbr.cond.sptk.many ivtx_pv_stub_2", 2) == [
        "\tbr.cond.sptk.many ivtx_pv_stub_2", "ivtx_pv_ret_2:"]
    stub = res.support["ivtx/pv_call_native.S"].split("ivtx_pv_stub_2:", 1)[1].split("ivtx_pv_stub_3:", 1)[0]
    assert "ld" not in stub and "mov r17=cr.isr" in stub and "br.cond.sptk.many ivtx_pv_ret_2" in stub
    # rfi (dt=0 too): a branch to a stub that does not come back
    rfi = res.support["ivtx/pv_call_native.S"].split("ivtx_pv_stub_3:", 1)[1].split("\n")[1:3]
    assert rfi == ["\trfi", "\t;;"]


def test_table_calls_of_an_overflowing_vector_go_out_of_line(tmp_path):
    # 0x5000 has 16 bundles; four table calls inline (about 7 bundles each) cannot fit
    body = "".join(f"\tmov r{16 + k}=cr.{cr}\n" for k, cr in enumerate(["ifa", "isr", "iim", "itir"]))
    text = HEAD + "\t.org ia64_ivt+0x5000\none:\n" + body + "\t;;\n" + \
        "".join(f"\tst8 [r1]=r{16 + k}\n" for k in range(4)) + "\t;;\n\trfi\n\t;;\n"
    _, res = run(tmp_path, text)
    assert res.ok
    ool = [r for r in res.restructurings if r.kind == "out-of-line"]
    assert len(ool) == 5 and {r.region for r in ool} == {"one"}  # the four CR reads and rfi
    assert "\tbr.cond.sptk.many ivtx_pv_stub_0_ool" in res.text
    assert "ivtx_pv_stub_0_ool:" in res.support["ivtx/pv_call_native.S"]
    [v] = [v for v in res.vectors if v.name == "one"]
    assert v.after <= v.slot < 4 * 7 * 16


def test_call_self_check_fails_loudly_on_a_live_register(tmp_path):
    src = tmp_path / "t.S"
    src.write_text(TWO_MODES)
    opts = Options(include_dirs=[str(tmp_path)], prelude=False)
    a = analyse(str(src), opts)
    site = next(s for s in a.sites if s.op is not None and s.op.name == "MOV_FROM_IFA")
    site.free_gr = ["r31"] + site.free_gr  # r31 holds the saved predicates until the end
    with pytest.raises(IvtxInternal, match="r31 is live in the output"):
        transform(a, "pvops", "call", options=opts, sizes="estimate")


@pytest.mark.parametrize("convention", ["pvops", "pal-static"])
def test_a_stop_written_after_the_site_ends_the_call_sequence_once(tmp_path, convention):
    # every site of TWO_MODES is followed by a written `;;`: the sequence adds no second one
    src = tmp_path / "t.S"
    src.write_text(TWO_MODES)
    opts = Options(include_dirs=[str(tmp_path)], prelude=False)
    res = transform(analyse(str(src), opts), convention, "call", options=opts, sizes="estimate")
    assert res.ok and len(res.edits) == 4  # cr.ifa, rsm psr.dt, cr.isr, rfi
    lines = [x.strip() for x in res.text.split("\n") if x.strip()]
    assert not [i for i in range(len(lines) - 1) if lines[i] == lines[i + 1] == ";;"], res.text
