"""ivtx/synth.py: the synthetic IVTs of `ivtx bench` are deterministic, distinct per table, analyse
cleanly with the shapes the generator promises, and assemble with `ia64-linux-gnu-as -x`."""

from __future__ import annotations

import re

import pytest

from gas import assemble
from ivtx.effects import effects_of
from ivtx.ir import Instruction
from ivtx.layout import vector_of_offset
from ivtx.pipeline import Options, analyse
from ivtx.preprocess import preprocess
from ivtx.synth import generate

CONFIGS = {
    "default": [],
    "smp": ["CONFIG_SMP"],
    "hugetlb": ["CONFIG_HUGETLB_PAGE"],
    "no-vhpt": ["CONFIG_DISABLE_VHPT"],
    "all": ["CONFIG_SMP", "CONFIG_HUGETLB_PAGE", "CONFIG_DISABLE_VHPT"],
}
# What the nested DTLB handler may write (primer section 2; ivtx/data/conventions.toml [nested]).
NESTED_WRITES = {"b0", "r17", "r18", "r19", "r21", "r22", "p6", "p7"}


def _write(tmp_path, text: str, name: str = "synth.S") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _tables(text: str) -> list[str]:
    """The text of each table, from its section directive to the next."""
    starts = [m.start() for m in re.finditer(r'^\t\.section \.text\.\.ivt', text, re.M)]
    return [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])]


def test_same_scale_and_seed_same_text():
    assert generate(2, seed=3) == generate(2, seed=3)


def test_seeds_give_different_tables():
    assert generate(1, seed=0) != generate(1, seed=1)


def test_scale_is_the_number_of_full_tables():
    text = generate(3)
    assert len(_tables(text)) == 3
    for k, table in enumerate(_tables(text)):
        label = "ia64_ivt" + (f"_{k}" if k else "")
        offsets = {int(m, 16) for m in re.findall(rf"^\t\.org {label}\+(0x[0-9a-f]+)$", table, re.M)}
        # every entry but 0 (which starts at the table label) is placed with .org
        assert offsets == {o for o in range(0x400, 0x8000, 0x100) if vector_of_offset(o)}


def test_tables_are_not_one_text_repeated():
    t0, t1, t2 = _tables(generate(3))
    unsuffixed = [re.sub(r"_[12]\b", "", t) for t in (t1, t2)]
    assert t0 != unsuffixed[0] and t0 != unsuffixed[1] and unsuffixed[0] != unsuffixed[1]


def test_scale_must_be_positive():
    with pytest.raises(ValueError):
        generate(0)


@pytest.fixture(scope="module")
def two_tables(tmp_path_factory):
    return analyse(_write(tmp_path_factory.mktemp("synth"), generate(2, seed=5)), Options())


def test_two_tables_analyse_with_the_promised_shapes(two_tables):
    a = two_tables
    vectors = [r for r in a.cfg.regions if r.is_vector]
    assert len(vectors) == 2 * 68
    assert {r.table for r in vectors} == {"ia64_ivt", "ia64_ivt_1"}
    # every branch goes to an in-file label, a Linux symbol of the conventions, or back to
    # the nested-miss continuation: nothing the analysis has to call unknown
    assert a.cfg.unresolved == []
    # per table: the continuation loads of itlb, dtlb and the three bit updaters (their SMP
    # branch is #ifdef'd out here), and one nested-miss return (`mov b0=r30; br b0`)
    assert len(a.cfg.continuations) == 2 * 5
    assert len(a.cfg.nested_returns) == 2
    externals = {n[1] for n in a.cfg.graph.nodes if isinstance(n, tuple) and n[0] == "ext"}
    assert {"page_fault", "dispatch_to_fault_handler", "ia64_leave_kernel"} <= externals
    # state saves: cover, then bsw.1 at the end of SAVE_MIN; C calls with rp preset
    mnemonics = {s.mnemonic for s in a.cfg.code if isinstance(s, Instruction)}
    assert {"cover", "bsw.1", "br.call.sptk.many", "itc.i", "itc.d", "ptc.l", "thash", "rfi"} <= mnemonics
    assert any(s.op is not None for s in a.sites)


def test_the_nested_handler_keeps_its_contract(two_tables):
    a = two_tables
    nested = [r for r in a.cfg.regions if r.offset == 0x1400]
    assert len(nested) == 2
    for r in nested:
        written = set()
        for pos, s in enumerate(a.cfg.code):
            if isinstance(s, Instruction) and r.start <= a.cfg.stmt_index[pos] < r.end:
                e = effects_of(s)
                written |= {x for x in e.must_writes | e.may_writes if re.fullmatch(r"[rpb]\d+", x)}
        assert written and written <= NESTED_WRITES, sorted(written - NESTED_WRITES)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("config", CONFIGS, ids=list(CONFIGS))
def test_one_table_assembles_without_warnings(tmp_path, config, seed):
    path = _write(tmp_path, generate(1, seed))
    text = preprocess(path, defines=CONFIGS[config]).text
    _, stderr = assemble(text)
    assert stderr == "", f"seed {seed} [{config}]:\n{stderr}"
