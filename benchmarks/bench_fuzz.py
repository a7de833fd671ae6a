"""The large fuzz run of issue 13, split between processes, with its figures in a JSON file.

Runs exactly the checks of tests/test_fuzz_inputs.py (the same mutations, oracles and
tallies, in-process through the library call the CLI makes, one input in four through the
store), each input with its own seeded generator so that the run splits into chunks, plus a
sample through the real command line. Usage::

    PYTHONPATH=src:tests python benchmarks/bench_fuzz.py --count 5000 --yaml 3000 --jobs 2 \\
        --out benchmarks/results/fuzz.json

Any input can be made again alone: ``mutate_csv(src, input_rng(seed, src.name, i))``
(``parquet_input(input_rng(seed, "parquet", i))``, ``mutate_yaml(..., input_rng(seed, "yaml", i))``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "src")]


def _job(job: tuple) -> tuple[str, dict]:
    import test_fuzz_inputs as F

    kind, name, lo, hi, seed = job
    with tempfile.TemporaryDirectory(prefix="culpa-fuzz-") as tmp:
        tmp = Path(tmp)
        if kind == "csv":
            src = next(s for s in F.SOURCES if s.name == name)
            t = F.fuzz_csv(src, range(lo, hi), seed, tmp)
        elif kind == "parquet":
            t = F.fuzz_parquet(range(lo, hi), seed, tmp)
        elif kind == "yaml":
            t = F.fuzz_yaml(range(lo, hi), seed)
        else:
            t = F.cli_sample(range(lo, hi), seed, tmp)
    return name, {"inputs": t.inputs, "accepted": t.read, "refused": t.refused,
                  "through_store": t.stored, "seconds": t.seconds,
                  "problems": [list(map(str, p)) for p in t.problems]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=5000, help="inputs per reader")
    ap.add_argument("--yaml", type=int, default=3000, help="case and sites files")
    ap.add_argument("--cli", type=int, default=40, help="inputs through the real CLI")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=500)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    import test_fuzz_inputs as F

    jobs = []
    for name, kind, n in ([(s.name, "csv", a.count) for s in F.SOURCES]
                          + [("parquet", "parquet", a.count), ("case/sites yaml", "yaml", a.yaml),
                             ("command line sample", "cli", a.cli)]):
        jobs += [(kind, name, lo, min(lo + a.chunk, n), a.seed) for lo in range(0, n, a.chunk)]
    jobs.sort(key=lambda j: j[2])  # every input kind advances together
    start = time.perf_counter()
    rows: dict[str, dict] = {}
    with Pool(a.jobs) as pool:
        for name, r in pool.imap_unordered(_job, jobs):
            acc = rows.setdefault(name, {"inputs": 0, "accepted": 0, "refused": 0,
                                         "through_store": 0, "seconds": 0.0, "problems": []})
            for k in ("inputs", "accepted", "refused", "through_store", "seconds"):
                acc[k] += r[k]
            acc["problems"] += r["problems"]
            print(f"{name}: {acc['inputs']} inputs, {len(acc['problems'])} findings", flush=True)
            for p in r["problems"]:
                print("  FINDING", p, flush=True)
    wall = time.perf_counter() - start
    table = []
    for name, r in rows.items():
        kinds: dict[str, int] = {}
        for p in r["problems"]:
            kinds[p[0]] = kinds.get(p[0], 0) + 1
        table.append({"input": name, "inputs": r["inputs"], "accepted": r["accepted"],
                      "refused": r["refused"], "through_store": r["through_store"],
                      "findings": len(r["problems"]), "findings_by_kind": kinds,
                      "seconds": round(r["seconds"], 1),
                      "seconds_per_input": round(r["seconds"] / max(r["inputs"], 1), 4),
                      "first_findings": r["problems"][:20]})
    doc = {"command": "PYTHONPATH=src:tests python benchmarks/bench_fuzz.py " + " ".join(
               sys.argv[1:]),
           "seed": a.seed, "jobs": a.jobs, "wall_seconds": round(wall, 1),
           "load_average_after": os.getloadavg(), "cpus": os.cpu_count(),
           "total_findings": sum(t["findings"] for t in table), "table": table}
    text = json.dumps(doc, indent=2)
    if a.out:
        a.out.write_text(text + "\n")
    for t in table:
        print(f"{t['input']:22} {t['inputs']:6} inputs {t['accepted']:6} accepted "
              f"{t['refused']:6} refused {t['findings']:4} findings {t['seconds']:8.1f} s "
              f"{t['findings_by_kind']}")
    print(f"wall {wall:.1f} s, load {os.getloadavg()}")


if __name__ == "__main__":
    main()
