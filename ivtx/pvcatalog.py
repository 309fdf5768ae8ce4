"""The privileged-op catalog (data in ivtx/data/pvops.toml): pv op names, operand roles, native text."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from .diag import IvtxError, Loc

ROLES = ("pred", "pclob", "dst", "src", "clob", "kr")


@dataclass(frozen=True, slots=True)
class PvOp:
    name: str
    args: tuple[str, ...]  # role names in call order: "pred", "clob0", "pred_i" ...
    native: str  # native instruction text with ${role} placeholders
    parens: bool = True
    alias: frozenset = frozenset()  # frozensets of two roles that may name one register

    def may_alias(self, a: str, b: str) -> bool:
        return frozenset((a, b)) in self.alias

    @property
    def arity(self) -> int:
        return len(self.args)

    def role_kind(self, arg: str) -> str:
        """The role class of an argument name: 'clob1' -> 'clob', 'pred_i' -> 'pred'."""
        for kind in ROLES:
            if arg == kind or arg.startswith(kind) and (arg[len(kind):].isdigit() or arg[len(kind)] == "_"):
                return kind
        raise ValueError(arg)


@dataclass(frozen=True, eq=False)  # hashed by identity (lru_cache keys)
class Catalog:
    ops: dict[str, PvOp]
    source: str
    switched: dict[str, str] = None  # macro name -> why its expansion is hypervisor-specific

    def get(self, name: str) -> PvOp | None:
        return self.ops.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self.ops


def parse_catalog(text: str, source: str) -> Catalog:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise IvtxError(f"bad catalog: {exc}", Loc(source, getattr(exc, "lineno", 1) or 1, getattr(exc, "colno", 1) or 1)) from None
    ops: dict[str, PvOp] = {}
    for i, row in enumerate(data.get("op", []), 1):
        name = row.get("name")
        where = Loc(source, 1)
        if not isinstance(name, str) or not name:
            raise IvtxError(f"catalog op #{i} has no name", where)
        if name in ops:
            raise IvtxError(f"catalog op '{name}' is defined twice", where)
        args = tuple(row.get("args", ()))
        alias = frozenset(frozenset(pair) for pair in row.get("alias", []))
        for pair in alias:
            if len(pair) != 2 or not pair <= set(args):
                raise IvtxError(f"catalog op '{name}': alias {sorted(pair)} must name two of its roles", where)
        op = PvOp(name, args, str(row.get("native", "")), bool(row.get("parens", True)), alias)
        for a in args:
            try:
                op.role_kind(a)
            except ValueError:
                raise IvtxError(f"catalog op '{name}': unknown operand role '{a}' (known: {', '.join(ROLES)})", where) from None
        if len(set(args)) != len(args):
            raise IvtxError(f"catalog op '{name}': duplicate operand role", where)
        ops[name] = op
    switched = {}
    for row in data.get("switched", []):
        if not isinstance(row.get("name"), str):
            raise IvtxError("catalog [[switched]] entry has no name", Loc(source, 1))
        switched[row["name"]] = str(row.get("why", ""))
    return Catalog(ops, source, switched)


@lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    text = resources.files("ivtx.data").joinpath("pvops.toml").read_text()
    return parse_catalog(text, "pvops.toml")


def native_statements(text: str) -> list[str]:
    """The statements of a native form, stops kept: `ssm psr.dt;;srlz.i` -> ['ssm psr.dt', ';;',
    'srlz.i'] (`;` separates statements, `;;` is a stop as well)."""
    out: list[str] = []
    for k, chunk in enumerate(text.split(";;")):
        if k:
            out.append(";;")
        out += [part.strip() for part in chunk.split(";") if part.strip()]
    return out
