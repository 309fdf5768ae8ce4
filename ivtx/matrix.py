"""Configuration matrix: analyse a file under several -D sets and show each site per configuration.

Matrix file (TOML):
    [config.smp]
    defines = ["CONFIG_SMP"]
    [config.up-hugetlb]
    defines = ["CONFIG_HUGETLB_PAGE"]
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from .diag import IvtxError, Loc
from .pipeline import Options, analyse


@dataclass
class MatrixResult:
    file: str
    configs: list[str]
    reports: dict[str, dict] = field(default_factory=dict)  # config name -> report_data
    defines: dict[str, list[str]] = field(default_factory=dict)  # config name -> its -D set

    @property
    def unresolved_count(self) -> int:
        return sum(r["summary"]["unresolved"] for r in self.reports.values())

    def to_dict(self, handler: str | None = None) -> dict:
        """The matrix (schema ivtx-matrix/1, docs/report-schema.md): one row per site, keyed by
        where it is in the source, with what each configuration that has it gets there."""
        from . import __version__
        from .report import MATRIX_SCHEMA, display_path

        rows: dict[tuple, dict] = {}
        for c in self.configs:
            for s in self.reports[c]["sites"]:
                if handler is not None and s["handler"] != handler:
                    continue
                key = (s["file"], s["line"], s["col"], s.get("origin", ""), s["instruction"])
                row = rows.setdefault(key, {"handler": s["handler"], "file": s["file"], "line": s["line"],
                                            "col": s["col"], "instruction": s["instruction"], "op": s["op"],
                                            "configs": {}})
                if "origin" in s:
                    row["origin"] = s["origin"]
                row["configs"][c] = {"status": s["status"], "chosen": s["chosen"], "written": s["written"],
                                     "reason": s["reason"]}
        ordered = [rows[k] for k in sorted(rows)]
        return {"schema": MATRIX_SCHEMA, "tool": {"name": "ivtx", "version": __version__},
                "file": display_path(self.file), "configs": list(self.configs),
                "defines": {c: list(self.defines.get(c, [])) for c in self.configs}, "sites": ordered,
                "summaries": {c: self.reports[c]["summary"] for c in self.configs}}


def load_matrix(path: str) -> dict[str, list[str]]:
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise IvtxError(f"cannot read config matrix: {exc.strerror}", Loc(path, 1)) from None
    except tomllib.TOMLDecodeError as exc:
        raise IvtxError(f"bad config matrix: {exc}",
                        Loc(path, getattr(exc, "lineno", 1) or 1, getattr(exc, "colno", 1) or 1)) from None
    configs = data.get("config")
    if not isinstance(configs, dict) or not configs:
        raise IvtxError("config matrix needs [config.NAME] tables with defines = [...]", Loc(path, 1))
    out = {}
    for name, table in configs.items():
        defs = table.get("defines", [])
        if not isinstance(defs, list) or not all(isinstance(d, str) for d in defs):
            raise IvtxError(f"config '{name}': defines must be a list of strings", Loc(path, 1))
        out[name] = defs
    return out


def run_matrix(path: str, opts: Options, matrix_path: str) -> MatrixResult:
    from .report import report_data

    configs = load_matrix(matrix_path)
    res = MatrixResult(path, list(configs), defines={name: list(defs) for name, defs in configs.items()})
    for name, defs in configs.items():
        a = analyse(path, replace(opts, defines=list(opts.defines) + defs))
        res.reports[name] = report_data(a)
    return res
