"""One test per CFG edge kind, each of which fails if that edge goes missing."""

from ivtsrc import Analysed, ivt, vector


def kinds_from(a, needle):
    b = a.cfg.block_of[a.pos(needle)]
    return {(d["kind"], succ if isinstance(succ, tuple) else "block") for _, succ, d in a.cfg.graph.out_edges(b, data=True)}


def target_block_label(a, needle, kind):
    b = a.cfg.block_of[a.pos(needle)]
    for _, succ, d in a.cfg.graph.out_edges(b, data=True):
        if d["kind"] == kind and isinstance(succ, int):
            return a.cfg.blocks[succ].labels, succ
    raise AssertionError(f"no {kind} edge from {needle}")


def test_fall_through_into_a_label():
    a = Analysed(ivt(vector(0, "v", "\tmov r16=r0\n\t;;\nnext:\n\tmov r17=r0\n\t;;\n\trfi\n\t;;")))
    labels, _ = target_block_label(a, "mov r16=r0", "fall")
    assert labels == ["next"]


def test_unconditional_branch_has_no_fall_through():
    a = Analysed(ivt(vector(0, "v", "\tbr.sptk.many there\n\t;;\n\tmov r16=r0\n\t;;\nthere:\n\trfi\n\t;;")))
    assert kinds_from(a, "br.sptk.many there") == {("branch", "block")}
    labels, _ = target_block_label(a, "br.sptk.many there", "branch")
    assert labels == ["there"]


def test_predicated_branch_is_conditional_and_falls_through():
    a = Analysed(ivt(vector(0, "v", "(p6)\tbr.cond.spnt there\n\t;;\n\tmov r16=r0\n\t;;\nthere:\n\trfi\n\t;;")))
    assert kinds_from(a, "br.cond.spnt there") == {("cond", "block"), ("fall", "block")}


def test_indirect_branch_resolved_through_movl_and_mov_b():
    body = "\tmovl r22=there\n\t;;\n\tmov b6=r22\n\t;;\n\tbr.sptk.many b6\n\t;;\n\tmov r16=r0\n\t;;\nthere:\n\trfi\n\t;;"
    a = Analysed(ivt(vector(0, "v", body)))
    labels, _ = target_block_label(a, "br.sptk.many b6", "indirect")
    assert labels == ["there"]
    assert not a.cfg.unresolved


def test_unresolved_indirect_branch_is_listed_with_reason():
    a = Analysed(ivt(vector(0, "v", "\tbr.sptk.many b6\n\t;;")))
    assert ("unknown", ("unknown", a.pos("br.sptk.many b6"))) in kinds_from(a, "br.sptk.many b6")
    assert "b6" in a.cfg.unresolved[0].reason


def test_call_has_a_summary_node_and_returns():
    body = "\tbr.call.sptk.many rp=some_c_function\n\t;;\nback:\n\trfi\n\t;;"
    a = Analysed(ivt(vector(0, "v", body)))
    pos = a.pos("br.call")
    node = ("call", pos)
    assert a.cfg.graph.nodes[node]["callee"] == "some_c_function"
    assert ("call", node) in kinds_from(a, "br.call")
    ret = [s for s in a.cfg.graph.successors(node)]
    assert len(ret) == 1 and a.cfg.blocks[ret[0]].labels == ["back"]


def test_rfi_is_an_exit():
    a = Analysed(ivt(vector(0, "v", "\tmov r16=r0\n\t;;\n\trfi\n\t;;")))
    assert kinds_from(a, "rfi") == {("exit", ("rfi",))}


def test_branch_to_symbol_outside_the_file_is_external():
    a = Analysed(ivt(vector(0, "v", "(p6)\tbr.cond.spnt page_fault\n\t;;\n\trfi\n\t;;")))
    assert ("external", ("ext", "page_fault")) in kinds_from(a, "page_fault")


def test_branch_into_another_handler_of_the_file():
    a = Analysed(ivt(vector(0x400, "itlb_miss", "itlb_fault:\n\trfi\n\t;;"),
                     vector(0xC00, "alt_itlb_miss", "\tbr.sptk.many itlb_fault\n\t;;")))
    labels, succ = target_block_label(a, "br.sptk.many itlb_fault", "branch")
    assert a.cfg.blocks[succ].region.name == "itlb_miss"


NESTED = """\
	movl r30=1f
	;;
1:	ld8 r18=[r17]
	;;
	rfi
	;;
"""
NESTED_VECTOR = "\tmov r17=r0\n\t;;\n\tmov b0=r30\n\t;;\n\tbr.sptk.many b0\n\t;;"


def test_implicit_nested_tlb_edge_from_continuation_load():
    a = Analysed(ivt(vector(0x800, "dtlb_miss", NESTED)))
    load = a.pos("ld8")
    node = ("nested", load)
    assert a.cfg.graph.has_node(node)
    assert list(a.cfg.graph.successors(node)) == [a.cfg.block_of[load]]
    assert any(d["kind"] == "nested" for _, _, d in a.cfg.graph.in_edges(node, data=True))


def test_nested_vector_returns_to_every_continuation():
    a = Analysed(ivt(vector(0x800, "dtlb_miss", NESTED), vector(0x1400, "nested_dtlb_miss", NESTED_VECTOR)))
    load_block = a.cfg.block_of[a.pos("ld8")]
    ret = a.cfg.block_of[a.pos("br.sptk.many b0")]
    assert a.cfg.graph.edges[ret, load_block]["kind"] == "nested-return"


def test_numeric_local_labels_resolve_forward_and_backward():
    body = "1:\tmov r16=r0\n\t;;\n(p6)\tbr.cond.spnt 1f\n\t;;\n1:\tmov r17=r0\n\t;;\n(p7)\tbr.cond.spnt 1b\n\t;;\n\trfi\n\t;;"
    a = Analysed(ivt(vector(0, "v", body)))
    _, fwd = target_block_label(a, "1f", "cond")
    _, back = target_block_label(a, "1b", "cond")
    assert a.cfg.blocks[fwd].first == a.pos("mov r17=r0")
    assert a.cfg.blocks[back].first == a.pos("mov r17=r0")


def test_tag_defines_a_numeric_label():
    body = "[1:]\tmov r16=r0\n\t;;\n(p6)\tbr.cond.spnt 1b\n\t;;\n\trfi\n\t;;"
    a = Analysed(ivt(vector(0, "v", body)))
    _, back = target_block_label(a, "1b", "cond")
    assert a.cfg.blocks[back].first == a.pos("mov r16=r0")


def test_vector_layout_slots():
    a = Analysed(ivt(vector(0x1400, "nested", "\trfi\n\t;;"), vector(0x5400, "general", "\trfi\n\t;;")))
    regs = {r.name: r for r in a.cfg.regions}
    assert (regs["nested"].vector, regs["nested"].slot) == (5, 0x400)
    assert (regs["general"].vector, regs["general"].slot) == (24, 0x100)  # 0x5000 + (24-20)*0x100


def test_falling_off_a_vector_is_unresolved():
    a = Analysed(ivt(vector(0, "v", "\tmov r16=r0\n\t;;"), vector(0x400, "w", "\trfi\n\t;;")))
    assert any("falls off" in u.reason for u in a.cfg.unresolved)


def test_call_to_a_function_in_the_file_enters_it_and_returns_from_its_br_ret():
    body = ("\tbr.call.sptk.many b7=helper\n\t;;\nback:\n\trfi\n\t;;\n"
            "helper:\n\tmov r16=r0\n\t;;\n\tbr.ret.sptk.many b7\n\t;;")
    a = Analysed(ivt(vector(0, "v", body)))
    node = ("call", a.pos("br.call"))
    (target,) = list(a.cfg.graph.successors(node))
    assert a.cfg.blocks[target].labels == ["helper"]
    ret_block = a.cfg.block_of[a.pos("br.ret")]
    (succ,) = list(a.cfg.graph.successors(ret_block))
    assert a.cfg.blocks[succ].labels == ["back"]


def test_call_with_other_link_returns_where_rp_points():
    # Linux's "ignore return address" idiom: rp preset to the exit path, br.call b6=f
    body = ("\tmovl r14=ia64_leave_kernel\n\t;;\n\tmov rp=r14\n\t;;\n"
            "\tbr.call.sptk.many b6=ia64_do_page_fault\n\t;;\n\tmov r16=r0\n\t;;")
    a = Analysed(ivt(vector(0, "v", body)))
    node = ("call", a.pos("br.call"))
    assert list(a.cfg.graph.successors(node)) == [("ext", "ia64_leave_kernel")]


def test_callee_that_calls_on_still_returns_to_its_caller():
    body = ("\tbr.call.sptk.many b7=outer\n\t;;\nback:\n\trfi\n\t;;\n"
            "outer:\n\tbr.call.sptk.many rp=inner\n\t;;\n\tbr.ret.sptk.many b7\n\t;;\n"
            "inner:\n\tbr.ret.sptk.many rp\n\t;;")
    a = Analysed(ivt(vector(0, "v", body)))
    ret_block = a.cfg.block_of[a.pos("br.ret.sptk.many b7")]
    succs = list(a.cfg.graph.successors(ret_block))
    assert [a.cfg.blocks[s].labels for s in succs] == [["back"]]
