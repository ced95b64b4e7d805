"""Check that two versions of gtmsim give the same numbers, to the last bit.

Runs seven scenario–seed pairs with each version, each in its own process: the monthly
table and the three event logs (leads, responses, deals). The pairs cover the shipped
presets, a timeline that hires and cuts, and the three network kinds. Prints what
differs, or IDENTICAL; exit 1 if anything differs.

Usage (from the repository root):
    python benchmarks/same_numbers.py --ref REV        # this checkout against commit REV
    python benchmarks/same_numbers.py --ref-tree DIR   # against another source tree

`--ref REV` extracts the commit with `git archive` into a temporary folder. Both sides
run with this interpreter, gtmsim imported from each tree through PYTHONPATH, so give a
commit whose dependencies this interpreter has. The compiled kernels, for instance, were
checked against 28623f0, the last commit before them.
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = [
    ("baseline", {}, 7, 24),
    ("aligned", {}, 3, 12),
    ("siloed", {"market.prospects": 5000}, 11, 12),
    ("founder_led", {}, 5, 12),
    ("hire_and_cut", {"market.prospects": 20000}, 2, 24),
    ("integrated", {"market.network.kind": "small_world"}, 9, 12),
    ("defined", {"market.network.kind": "clustered"}, 4, 12),
]
CHILD = """
import pickle, sys
from gtmsim import load_scenario, simulate
out = {}
for name, overrides, seed, months in pickle.loads(bytes.fromhex(sys.argv[2])):
    r = simulate(load_scenario(name, overrides), seed=seed, months=months)
    out[name] = (r.monthly, {k: r.model.log.frame(k) for k in ("leads", "responses", "deals")})
with open(sys.argv[1], "wb") as f:
    pickle.dump(out, f)
"""


def run(tree: Path, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run([sys.executable, "-c", CHILD, str(out), pickle.dumps(CASES).hex()],
                   env=env, cwd=tree, check=True)
    with open(out, "rb") as f:
        return pickle.load(f)


def differences(a: dict, b: dict) -> list[str]:
    import pandas as pd

    found = []
    for name in a:
        (ma, la), (mb, lb) = a[name], b[name]
        for what, x, y in [("monthly", ma, mb), *((k, la[k], lb[k]) for k in la)]:
            try:
                pd.testing.assert_frame_equal(x, y, check_exact=True)
            except AssertionError as exc:
                found.append(f"{name} {what}: {str(exc).splitlines()[0]}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--ref", metavar="REV", help="a commit of this repository")
    group.add_argument("--ref-tree", type=Path, metavar="DIR", help="another source tree")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ref = args.ref_tree
        if args.ref:
            ref = Path(tmp) / "ref"
            ref.mkdir()
            archive = subprocess.run(["git", "archive", args.ref], cwd=ROOT, check=True,
                                     capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(ref)], input=archive, check=True)
        old = run(ref, Path(tmp) / "ref.pkl")
        new = run(ROOT, Path(tmp) / "new.pkl")
    found = differences(old, new)
    for line in found:
        print(line)
    print(f"{len(CASES)} scenario-seed pairs: " + ("IDENTICAL" if not found else
                                                   f"{len(found)} tables differ"))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
