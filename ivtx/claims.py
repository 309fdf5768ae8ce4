"""Registers a convention-file claim made free (design.md "Exits": unknown means live).

`[unresolved_calls] convention = "c"` in a convention file claims that every `br.call` whose
target ivtx cannot trace (Linux's `br.call b6=b6` through sys_call_table) follows the C software
conventions, so liveness uses that summary there instead of "everything live". ivtx cannot check
the claim; every register free at a site only because of it is named with it:

    r2, r3 free because the untraced call at ivt.S:860:7 follows the C conventions (your claim in FILE)

Found by solving liveness once more without the claim: a register free with it and live without it
owes its freedom to the claimed calls that paths from the site reach.
"""

from __future__ import annotations

from collections import deque

from .liveness import bank_names, solve


def claimed_calls(cfg, policy) -> list:
    """The CFG nodes of untraced `br.call`s the policy's claim covers."""
    if policy.unresolved_calls is None:
        return []
    out = []
    for n in cfg.graph.nodes:
        if isinstance(n, tuple) and n[0] == "call":
            callee = cfg.graph.nodes[n].get("callee")
            if callee is None:
                out.append(n)
    return out


def attribute_claims(a) -> None:
    """Fill `site.claims` (register -> why it is free) for every site of analysis `a` where the
    policy's claim made a register free that ivtx alone would report live."""
    nodes = claimed_calls(a.cfg, a.policy)
    if not nodes:
        return
    cfg, live = a.cfg, a.liveness
    alone = solve(cfg, a.policy.without_claims())
    claim = a.policy.unresolved_calls.claim
    for site in a.sites:
        last = site.pos + site.length - 1
        only_claimed = alone.live_after(last) & ~live.live_after(last)
        if not only_claimed:
            continue
        names = set(alone.names(only_claimed))
        bank = site.bank
        freed = [r for r in site.free_gr + site.free_pr + site.free_br
                 if any(n in names for n in bank_names(r, bank))]
        if not freed:
            continue
        calls = _reached(cfg, last, set(nodes))
        where = ", ".join(str(cfg.code[n[1]].loc.use_site) for n in calls) or "?"
        why = f"free because the untraced call at {where} {claim}"
        site.claims = {r: why for r in freed}


def _reached(cfg, pos: int, targets: set) -> list:
    """The target nodes paths from code position `pos` reach, nearest first."""
    start = cfg.block_of[pos]
    seen = {start}
    q = deque([start])
    out = []
    while q:
        n = q.popleft()
        if n in targets:
            out.append(n)
        for s in cfg.graph.successors(n):
            if s not in seen:
                seen.add(s)
                q.append(s)
    return out


def claim_notes(claims: dict[str, str]) -> list[str]:
    """`r2, r3 free because ...`: the claims of a site, one line per reason."""
    from .report import compact

    by_why: dict[str, list[str]] = {}
    for reg, why in claims.items():
        by_why.setdefault(why, []).append(reg)
    return [f"{compact(regs)} {why}" for why, regs in by_why.items()]
