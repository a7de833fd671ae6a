"""Ingest throughput: rows per second into a fresh store, on real UCDP rows repeated with new ids.

    python benchmarks/bench_ingest.py [--rows 500000] [--gzip]

Writes benchmarks/results/ingest.json. Target on the 2-core dev machine: >= 100,000 rows/s.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import platform
import resource
import tempfile
import time
from pathlib import Path

from culpa.events.store import Store

HERE = Path(__file__).resolve().parent
SYRIA = HERE.parents[1] / "shared" / "data" / "ucdp" / "ged_syria_2016_2018.csv"


def make_file(path: Path, rows: int, compress: bool) -> int:
    """Write `rows` real Syria rows, cycling through the file and renumbering their ids."""
    with open(SYRIA, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        body = list(reader)
    id_col = header.index("id")
    opener = gzip.open if compress else open
    with opener(path, "wt", encoding="utf-8", newline="") as out:
        w = csv.writer(out)
        w.writerow(header)
        for i in range(rows):
            row = body[i % len(body)]
            row = row[:id_col] + [str(10_000_000 + i)] + row[id_col + 1:]
            w.writerow(row)
    return path.stat().st_size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=500_000)
    ap.add_argument("--gzip", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / ("events.csv.gz" if args.gzip else "events.csv")
        size = make_file(src, args.rows, args.gzip)
        db = Path(tmp) / "bench.duckdb"
        t0 = time.perf_counter()
        with Store(db) as store:
            report = store.ingest([src])
        seconds = time.perf_counter() - t0
    assert report.added == args.rows, report.to_dict()
    result = {
        "benchmark": "ingest", "rows": args.rows, "gzip": args.gzip, "file_mb": size / 1e6,
        "seconds": round(seconds, 3), "rows_per_second": round(args.rows / seconds),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "target_rows_per_second": 100_000, "machine": f"{platform.machine()}, "
        f"{__import__('os').cpu_count()} cores", "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    out = HERE / "results" / ("ingest_gz.json" if args.gzip else "ingest.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
