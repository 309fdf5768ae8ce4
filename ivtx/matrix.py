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
    reports: dict[str, dict] = field(default_factory=dict)

    @property
    def unresolved_count(self) -> int:
        return sum(r["summary"]["unresolved"] for r in self.reports.values())

    def to_dict(self, handler: str | None = None) -> dict:
        rows: dict[tuple, dict] = {}
        for c in self.configs:
            for s in self.reports[c]["sites"]:
                if handler is not None and s["handler"] != handler:
                    continue
                key = (s["file"], s["line"], s["instruction"])
                row = rows.setdefault(key, {"handler": s["handler"], "file": s["file"], "line": s["line"],
                                            "instruction": s["instruction"], "configs": {}})
                if s["status"] == "unresolved":
                    cell = f"UNRESOLVED: {s['reason']}"
                elif s["status"] == "uncatalogued":
                    cell = "sensitive, no pv op"
                elif s["kind"] == "pvcall":
                    cell = "written " + (", ".join(s["written"]) or "-")
                else:
                    cell = ", ".join(s["chosen"]) or "ok"
                row["configs"][c] = cell
        ordered = sorted(rows.values(), key=lambda r: (r["file"], r["line"], r["instruction"]))
        return {"file": self.file, "configs": self.configs, "sites": ordered,
                "summaries": {c: self.reports[c]["summary"] for c in self.configs}}


def load_matrix(path: str) -> dict[str, list[str]]:
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise IvtxError(f"cannot read config matrix: {exc.strerror}", Loc(path, 1)) from None
    except tomllib.TOMLDecodeError as exc:
        raise IvtxError(f"bad config matrix: {exc}", Loc(path, 1)) from None
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
    res = MatrixResult(path, list(configs))
    for name, defs in configs.items():
        a = analyse(path, replace(opts, defines=list(opts.defines) + defs))
        res.reports[name] = report_data(a)
    return res
