"""Convention files (ivtx/conventions.py): `extends = "default"`, the optional [unresolved_calls]
claim and its errors, and what the shipped C calling convention reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivtx.conventions import load_policy, parse_conventions
from ivtx.diag import IvtxError

ROOT = Path(__file__).resolve().parent.parent
CLAIM = 'extends = "default"\n\n[unresolved_calls]\nconvention = "c"\n'


def test_extends_default_keeps_the_default_and_overrides_by_table():
    p = parse_conventions(CLAIM + '\n[symbol.my_exit]\nlive_in = ["r1"]\n', "mine.toml")
    d = load_policy()
    assert p.context == d.context and p.rfi.live_in == d.rfi.live_in
    assert set(p.symbols) == set(d.symbols) | {"my_exit"}
    assert p.c_functions.keys() == d.c_functions.keys()
    assert p.unresolved_calls.live_in == d.c_functions["ia64_fault"].live_in
    sample = load_policy(str(ROOT / "samples" / "linux-syscalls.toml"))
    assert sample.unresolved_calls is not None and "ia64_trace_syscall" in sample.symbols


@pytest.mark.parametrize("text, message", [
    ('extends = "linux"\n', "only \"default\""),
    ('[unresolved_calls]\nconvention = "c"\n', "no [calling_convention.c]"),
    (CLAIM.replace('"c"', '"pascal"'), "no [calling_convention.pascal] (known: c)"),
    (CLAIM + 'why = "because"\n', "takes one key"),
])
def test_bad_claims_are_errors(text, message):
    with pytest.raises(IvtxError) as exc:
        parse_conventions(text, "bad.toml")
    assert message in str(exc.value.render() if hasattr(exc.value, "render") else exc.value)


# Linux's idiom: rp set first, then `br.call b6=f`; the C function returns through rp, so b0 must
# stay live from the `mov rp` to the call (a site in between may not use b0).
RP_PRESET = """\t.section .text..ivt,"ax"
\t.align 32768
\t.global ia64_ivt
ia64_ivt:
\t.org ia64_ivt+0x5000
fault:
\tbsw.1
\t;;
\tmovl r14=ia64_leave_kernel
\t;;
\tmov rp=r14
\tssm psr.i
\t;;
\tbr.call.sptk.many b6=ia64_fault
\t;;
"""


def test_a_c_function_reads_rp_so_b0_stays_live_up_to_a_call_through_b6(tmp_path):
    from ivtx.pipeline import Options, analyse

    src = tmp_path / "rp.S"
    src.write_text(RP_PRESET)
    a = analyse(str(src), Options(prelude=False))
    site = next(s for s in a.sites if s.op is not None and s.op.name == "SSM_PSR_I")
    assert "b0" not in site.free_br and "b6" in site.free_br  # b6 is written by the call itself
    assert "b0" in load_policy().c_functions["ia64_fault"].live_in
