#!/usr/bin/env python3
"""Writes src/reference/nist-strd.txt, sweep's built-in copy of the 11 NIST StRD linear-regression
datasets, from NIST's own .dat files. Run once; the test
`reference::built_in_nist_copy_equals_nists_files` checks the copy against the files when they are
at hand.

Usage: python3 scripts/nist_compact.py [DIR] > src/reference/nist-strd.txt
       (default DIR: ../shared/data/nist-strd)

Every number is kept as NIST's decimal text, verbatim: the double-double tests parse that text.
"""
import sys
from pathlib import Path

NAMES = ["Norris", "Pontius", "NoInt1", "NoInt2", "Filip", "Longley",
         "Wampler1", "Wampler2", "Wampler3", "Wampler4", "Wampler5"]

HEADER = """\
# The NIST StRD linear least-squares regression datasets, in sweep's own compact form.
# Source: Statistical Reference Datasets of the Statistical Engineering Division, Information
# Technology Laboratory, NIST (US government work, public domain). Certified values and data are
# NIST's decimal text, verbatim; written by scripts/nist_compact.py from NIST's .dat files.
# Per dataset: `dataset NAME`, one `coefficient Bk ESTIMATE SD_OF_ESTIMATE` line per certified
# coefficient, `residual_sd VALUE`, `r2 VALUE`, `columns y x...`, then one data row per line.
"""


def compact(name, text):
    lines = text.replace("\r", "").split("\n")
    start = max(i for i, line in enumerate(lines) if line.lstrip().startswith("Data:"))
    out = [f"dataset {name}"]
    sd = r2 = None
    for line in lines[:start]:
        t = line.split()
        if len(t) == 3 and t[0].startswith("B") and t[0][1:].isdigit():
            out.append(f"coefficient {t[0]} {t[1]} {t[2]}")
        elif len(t) == 3 and t[:2] == ["Standard", "Deviation"]:
            sd = t[2]
        elif len(t) == 2 and t[0] == "R-Squared":
            r2 = t[1]
    assert sd is not None and r2 is not None, name
    out.append(f"residual_sd {sd}")
    out.append(f"r2 {r2}")
    out.append("columns " + " ".join(lines[start].split()[1:]))
    out.extend(" ".join(line.split()) for line in lines[start + 1:] if line.split())
    return out


def main(folder):
    out = [HEADER.rstrip("\n")]
    for name in NAMES:
        out.append("")
        out.extend(compact(name, (folder / f"{name}.dat").read_text()))
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/nist-strd"))
