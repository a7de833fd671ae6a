"""Every reproducer of issue 13 (sections 1-6) through the real command line, each checked
against what it must do: exit 2 with a message naming the file and line/field (or key path) and
the store unchanged, or exit 0 where the input is valid. Prints a table; --out writes it as JSON.

    PYTHONPATH=src python benchmarks/issue13_reproducers.py --out benchmarks/results/issue13.json

A store in a read-only directory is tried with the permission checks of an ordinary user: as
root, the command runs under ``setpriv`` without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH (root
then obeys file modes like any user; the interpreter lives under /root, which other users
cannot enter).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
ENV = {**os.environ, "PYTHONPATH": str(REPO / "src")}
sys.path.insert(0, str(REPO / "tests"))
from helpers import store_fingerprint  # noqa: E402
RESULTS: list[dict] = []


def culpa(*args, prefix=(), timeout=600, stdin=None):
    return subprocess.run([*prefix, sys.executable, "-m", "culpa", *map(str, args)],
                          capture_output=True, text=True, env=ENV, timeout=timeout, stdin=stdin)


def events(db: Path):
    return store_fingerprint(db) if db.exists() else None


def check(section, label, args, rc=(2,), names=(), db=None, json_out=False, prefix=(),
          stdout_json=False, max_s=None):
    """Run ``culpa *args``; it must exit in ``rc``, its message must hold every string of
    ``names``, a store ``db`` must be unchanged, and (``stdout_json``) stdout must be the JSON
    error."""
    before = events(db) if db else None
    t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    p = culpa(*args, prefix=prefix)
    took = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    msg = (p.stderr.strip().splitlines() or [""])[-1] if p.returncode else ""
    ok = p.returncode in rc and "Traceback" not in p.stderr and "internal error" not in p.stderr
    ok = ok and all(str(n) in p.stderr + p.stdout for n in names)
    if db is not None and p.returncode != 0:
        ok = ok and events(db) == before
    if stdout_json:
        try:
            doc = json.loads(p.stdout)
            ok = ok and doc.get("exit_code") == p.returncode
        except ValueError:
            ok = False
    if max_s is not None:  # CPU seconds: wall time on a shared machine says little
        ok = ok and cpu < max_s
    RESULTS.append({"section": section, "reproducer": label, "exit": p.returncode,
                    "expected": list(rc), "ok": ok, "seconds": round(took, 2),
                    "cpu_seconds": round(cpu, 2), "message": msg[:240]})
    print(f"{'ok ' if ok else 'BAD'} [{section}] {label}: exit {p.returncode} "
          f"({took:.1f} s) {msg[:160]}", flush=True)
    return p


def rows_of(path: Path, n=None):
    text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else \
        path.read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return rows if n is None else rows[: n + 1]


def write(path: Path, rows, enc="utf-8") -> Path:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode(enc))
    return path


def with_cell(rows, col, value, row=1):
    out = [list(r) for r in rows]
    out[row][out[0].index(col)] = value
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path)
    ap.add_argument("--skip-case", action="store_true", help="skip section 3 (fits a model)")
    a = ap.parse_args()
    w = Path(tempfile.mkdtemp(prefix="culpa-issue13-"))
    syria = rows_of(DATA / "ucdp_ged_syria_2016_2018.csv.gz", 20)
    acled = rows_of(DATA / "acled_iraq_kirkuk_2019_2020.csv")
    gtd_bytes = (DATA / "gtd_iraq_kirkuk_2019_2020_cp1252.csv").read_bytes()
    gtd = list(csv.reader(io.StringIO(gtd_bytes.decode("cp1252"), newline="")))
    field = [r for r in csv.reader(io.StringIO((DATA / "fieldlog_kirkuk_2020.csv").read_text(),
                                               newline=""))]
    S = w / "S.duckdb"
    assert culpa("ingest", write(w / "base.csv", syria), "--db", S).returncode == 0
    sy = write(w / "syria.csv", syria)

    # -- 1. reader crashes -------------------------------------------------------------------
    one = "1"
    cr = w / "cr.csv"
    cr.write_bytes(sy.read_bytes().replace(b"\n", b"\r"))
    check(one, "CR-only line endings", ["ingest", cr, "--db", S], (0, 2), [cr], S)
    gz2 = w / "gz2.csv.gz"
    gz2.write_bytes(gzip.compress(gzip.compress(sy.read_bytes())))
    check(one, "gzip inside gzip", ["ingest", gz2, "--db", S], names=[gz2, "gzip inside gzip"],
          db=S)
    u16 = w / "u16.csv"
    u16.write_bytes(sy.read_text().encode("utf-16"))
    check(one, "UTF-16", ["ingest", u16, "--db", S], names=[u16, "UTF-16"], db=S)
    dup = write(w / "dupcol.csv", [r + [r[syria[0].index("latitude")]] for r in syria])
    dup.write_text(dup.read_text().replace("latitude\n", "latitude\n", 1))
    rows = [r + [r[syria[0].index("latitude")]] for r in syria]
    rows[0][-1] = "latitude"
    dup = write(w / "dupcol.csv", rows)
    check(one, "a repeated column (second latitude)", ["ingest", dup, "--db", S],
          names=[f"{dup}:1", "latitude"], db=S)
    bad_head = w / "badhead.csv"
    bad_head.write_bytes(sy.read_bytes().replace(b"latitude", b"latit\xffude", 1))
    check(one, "invalid UTF-8 in the header line", ["ingest", bad_head, "--db", S],
          names=[f"{bad_head}:1"], db=S)
    tz = write(w / "tz.csv", with_cell(syria, "date_start", "2018-01-01T10:00:00+03:00", 3))
    check(one, "a date with a time zone in one row", ["ingest", tz, "--db", S],
          names=[f"{tz}:4", "date_start"], db=S)
    z = gzip.compress(sy.read_bytes())
    trunc = w / "trunc.csv.gz"
    trunc.write_bytes(z[: len(z) // 2])
    check(one, "a truncated small gzip", ["ingest", trunc, "--db", S], names=[trunc], db=S)
    crc = w / "crc.csv.gz"
    crc.write_bytes(z[:-8] + bytes([z[-8] ^ 0xFF]) + z[-7:])
    check(one, "a bad-CRC small gzip", ["ingest", crc, "--db", S], names=[crc], db=S)
    big = write(w / "bigfield.csv", with_cell(syria, "source_article", "x" * 140_000, 1))
    check(one, "a first-row field over 131,072 characters", ["ingest", big, "--db", w / "b.duckdb"],
          (0,))
    bom = w / "gtd_bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + gtd_bytes)
    check(one, "a GTD cp1252 file with a UTF-8 BOM", ["ingest", bom, "--db", w / "bom.duckdb"],
          (0, 2), [bom])
    fl = DATA / "fieldlog_kirkuk_2020.csv"
    base_map = (DATA / "fieldlog_mapping.yaml").read_text()
    for fmt in ("%Q", "%", "%s"):
        m = w / f"map_{fmt.strip('%') or 'pct'}.yaml"
        m.write_text(base_map.replace('"%d/%m/%Y"', f'"{fmt}"'))
        check(one, f"mapping date_format {fmt!r}", ["ingest", fl, "--format", "csv", "--mapping",
                                                     m, "--db", S], names=["date_format"], db=S)
    m = w / "map_sep.yaml"
    m.write_text(base_map + 'actor_separator: ""\n')
    check(one, "mapping actor_separator ''", ["ingest", fl, "--format", "csv", "--mapping", m,
                                              "--db", S], names=["actor_separator"], db=S)
    pmap = ["--format", "csv", "--map", "id=incident_no", "--map", "time=when", "--map",
            "latitude=lat", "--map", "longitude=lon", "--map", "actor=perpetrator"]
    base_t = {"incident_no": ["a", "b"], "lat": [35.4, 35.5], "lon": [44.3, 44.4],
              "perpetrator": ["IS", None]}
    p1 = w / "date32.parquet"
    pq.write_table(pa.table({**base_t, "when": pa.array([0, 2**31 - 1], pa.int32())
                             .cast(pa.date32())}), p1)
    check(one, "Parquet date32 2^31-1", ["ingest", p1, *pmap, "--db", S], names=[p1, "when"], db=S)
    p2 = w / "ts.parquet"
    pq.write_table(pa.table({**base_t, "when": pa.array([0, -(2**62)], pa.timestamp("us"))}), p2)
    check(one, "Parquet timestamp[us] -2^62", ["ingest", p2, *pmap, "--db", S], names=[p2, "when"],
          db=S)
    bad_row = w / "badrow.csv"
    lines = sy.read_bytes().split(b"\n")
    lines[5] = lines[5].replace(b",", b",\xff", 1)
    bad_row.write_bytes(b"\n".join(lines))
    check(one, "invalid UTF-8 in a data row (line named)", ["ingest", bad_row, "--db", S],
          names=[f"{bad_row}:6"], db=S)
    nine = write(w / "ninemb.csv", with_cell(syria, "source_article", "y" * 9_000_000, 4))
    check(one, "a valid file with a 9 MB field", ["ingest", nine, "--db", w / "nine.duckdb"], (0,))

    # -- 2. silently wrong data ------------------------------------------------------------------
    two = "2"
    for reader, rows, col, enc in (("ucdp", syria, "best", "utf-8"),
                                   ("acled", acled, "fatalities", "utf-8"),
                                   ("gtd", gtd, "nkill", "cp1252")):
        for v in ("1e19", "inf", "1e300"):
            f = write(w / f"{reader}_{v}.csv", with_cell(rows, col, v, 2), enc)
            check(two, f"{reader} {col}={v}", ["ingest", f, "--db", S], names=[f"{f}:3", col], db=S)
    for v in ("1e19", "inf", "1e300"):
        f = write(w / f"field_{v}.csv", with_cell(field, "killed", v, 2))
        check(two, f"mapped CSV killed={v}", ["ingest", f, "--format", "csv", "--mapping",
                                              DATA / "fieldlog_mapping.yaml", "--db", S],
              names=[f"{f}:3", "killed"], db=S)
    for v in ("-7", "1.5"):
        f = write(w / f"best_{v}.csv", with_cell(syria, "best", v, 2))
        check(two, f"UCDP best={v}", ["ingest", f, "--db", S], names=[f"{f}:3", "best"], db=S)
    f = write(w / "feb30.csv", with_cell(syria, "date_start", "2018-02-30", 2))
    check(two, "UCDP date_start 2018-02-30", ["ingest", f, "--db", S], names=[f"{f}:3"], db=S)
    f = write(w / "yearm1.csv", with_cell(with_cell(syria, "date_start", "-1-01-01", 2),
                                          "date_end", "-1-01-02", 2))
    check(two, "UCDP year -1", ["ingest", f, "--db", S], names=[f"{f}:3"], db=S)
    g = [list(r) for r in gtd]
    g[0].append("région")
    for r in g[1:]:
        r.append("")
    g[1][-1] = "007"
    f = write(w / "gtd_nonascii.csv", g, "cp1252")
    db = w / "gtd_na.duckdb"
    p = check(two, "cp1252 non-ASCII header column keeps '007' and ''", ["ingest", f, "--db", db],
              (0,))
    if p.returncode == 0:
        con = duckdb.connect(str(db), read_only=True)
        recs = [json.loads(r) for (r,) in con.execute("SELECT record FROM events").fetchall()]
        con.close()
        vals = {r[-1] for r in recs}
        RESULTS[-1]["ok"] = vals == {"007", ""}
        RESULTS[-1]["message"] = f"stored values of the column: {sorted(vals)}"
        print(f"    values kept: {sorted(vals)} -> {'ok' if RESULTS[-1]['ok'] else 'BAD'}")
    reuse = [list(r) for r in syria] + [list(syria[3])]
    reuse[-1][syria[0].index("best")] = "999"
    f = write(w / "reuse.csv", reuse)
    check(two, "a later row reusing an id with different content (both lines)",
          ["ingest", f, "--db", S], names=[f"{f}:", "line 4", "22"], db=S)
    # across ingests: the store keeps its version and the ingest says which events differ
    rev = write(w / "revised.csv", with_cell(syria, "best", "999", 3))
    before = events(S)
    p = check(two, "an id the store holds, read again with different content (reported)",
              ["ingest", rev, "--db", S, "--json"], (0,))
    if p.returncode == 0:
        doc = json.loads(p.stdout)
        ex = (doc.get("differing_examples") or [{}])[0]
        RESULTS[-1]["ok"] &= (doc.get("differing_from_store") == 1 and ex.get("line") == 4
                              and ex.get("stored_line") == 4 and "fatalities" in ex["fields"]
                              and events(S) == before)
        RESULTS[-1]["message"] = json.dumps({k: doc.get(k) for k in ("differing_from_store",
                                                                     "differing_examples")})[:240]

    # -- 3. case with unattributed events nearby ------------------------------------------------
    if not a.skip_case:
        K = w / "K.duckdb"
        culpa("ingest", REPO / "src/culpa/data/ucdp_ged_iraq_1989_2018.csv.gz",
              DATA / "gtd_iraq_kirkuk_2019_2020_cp1252.csv", "--db", K)
        case = REPO / "examples" / "k1_airbase.yaml"
        p = check("3", "culpa case k1_airbase.yaml --json with Unknown events near Kirkuk",
                  ["case", case, "--db", K, "--json"], (0,))
        if p.returncode == 0:
            json.loads(p.stdout)
        check("3", "culpa case k1_airbase.yaml --html", ["case", case, "--db", K, "--html",
                                                          w / "k1.html"], (0,))

    # -- 4. data loss ----------------------------------------------------------------------------
    demo_case = REPO / "examples" / "k1_airbase.yaml"
    cs = w / "case_copy.yaml"
    shutil.copy(demo_case, cs)
    check("4", "--html the store itself", ["case", cs, "--db", S, "--html", S], names=[S], db=S)
    check("4", "--html the case file", ["case", cs, "--db", S, "--html", cs], names=[cs], db=S)
    RESULTS[-1]["ok"] &= cs.read_bytes() == demo_case.read_bytes()
    other = w / "notes.txt"
    other.write_text("keep me")
    check("4", "--html an existing non-HTML file", ["case", cs, "--db", S, "--html", other],
          names=[other])
    RESULTS[-1]["ok"] &= other.read_text() == "keep me"

    # -- 5. case and sites files -----------------------------------------------------------------
    five = "5"
    k1 = demo_case.read_text()
    huge = "9" * 400

    def edit(old, new):
        """The example with one value changed in place (the value itself must be there)."""
        assert old in k1, f"{old!r} is not in {demo_case}: update this reproducer"
        return k1.replace(old, new, 1)

    docs = {  # label: (document, what the message must name besides the file)
        "billion laughs (560 bytes)": ("a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")),
            ":1:"),
        "5,000 nested [": ("[" * 5000, ":1:"),
        "notes: &a [*a]": (k1 + "\nnotes: &a [*a]\n", "notes"),
        "unquoted time: 2018-02-30": (edit("  time: 2019-12-27", "  time: 2018-02-30"),
                                      "incident.time"),
        "unquoted time: 2018-13-01": (edit("  time: 2019-12-27", "  time: 2018-13-01"),
                                      "incident.time"),
        "unquoted time: 25:00:00": (edit("  time: 2019-12-27", "  time: 25:00:00"),
                                    "incident.time"),
        "400-digit lat": (edit("  lat: 35.52", "  lat: " + huge), "incident.lat"),
        "400-digit window_days": (edit("window_days: 730", "window_days: " + huge),
                                  "window_days"),
        "400-digit radius_km": (k1 + "\nradius_km: " + huge + "\n", "radius_km"),
        "400-digit likelihood": (edit("likelihood: {IS: 0.7,", f"likelihood: {{IS: {huge},"),
                                 "evidence[0].likelihood"),
        "reliability: [A]": (edit("reliability: B", "reliability: [A]"),
                             "evidence[0].reliability"),
        "window_days: 1.0e+300": (edit("window_days: 730", "window_days: 1.0e+300"),
                                  "window_days"),
        "duplicate key (both lines)": (k1 + "\ntitle: again\n", "line 12"),
    }
    for label, (text, names) in docs.items():
        f = w / f"case_{len(RESULTS)}.yaml"
        f.write_text(text)
        check(five, label, ["case", f, "--json"], names=[f, names], max_s=10)

    # -- 6. the command line ---------------------------------------------------------------------
    six = "6"
    att = ["attribute", "--lon", "37", "--time", "2018-01-01", "--db", S, "--json"]
    check(six, "--json --lat 91", [*att, "--lat", "91"], stdout_json=True)
    check(six, "--json --lat nan", [*att, "--lat", "nan"], stdout_json=True)
    check(six, "--json --top -1", [*att, "--lat", "36", "--top", "-1"], stdout_json=True)
    check(six, "--json missing --time", ["attribute", "--lat", "36", "--lon", "37", "--db", S,
                                         "--json"], stdout_json=True)
    check(six, "--json unknown option", [*att, "--lat", "36", "--bogus"], stdout_json=True)
    for flag in ("nan", ""):
        check(six, f"fit --since {flag!r}", ["fit", "--db", S, "--since", flag], names=["--since"])
    check(six, "warn --at nan", ["warn", REPO / "examples/sites_syria.yaml", "--db", S, "--at",
                                 "nan"], names=["--at"])
    check(six, "a directory as --mapping", ["ingest", fl, "--format", "csv", "--mapping", w,
                                            "--db", S], names=[w], db=S)
    t0 = time.perf_counter()
    check(six, "fit --out no/dir/x (checked before fitting)", ["fit", "--db", S, "--out",
                                                               w / "no/dir/x"],
          names=["no/dir"], max_s=8)
    check(six, "an unwritable --html", ["case", cs, "--db", S, "--html", "/proc/x.html"],
          names=["x.html"])
    check(six, "demo --workdir FILE", ["demo", "--workdir", other], names=[other])
    al = w / "aliases.yaml"
    al.write_bytes(b"IS: [\xff\xfe]\n")
    check(six, "a non-UTF-8 aliases file", ["ingest", sy, "--db", S, "--aliases", al],
          names=[al], db=S)
    ro = w / "ro"
    ro.mkdir()
    shutil.copy(S, ro / "S.duckdb")
    os.chmod(ro, 0o555)
    prefix = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--inh-caps",
              "-all") if os.geteuid() == 0 else ()
    check(six, "a store in a read-only directory: ingest (as a user without DAC override)",
          ["ingest", write(w / "more.csv", [acled[0], *acled[1:]]), "--db", ro / "S.duckdb"],
          names=["cannot write"], db=ro / "S.duckdb", prefix=prefix)
    check(six, "a store in a read-only directory: stats reads it",
          ["stats", "--db", ro / "S.duckdb", "--json"], (0,), prefix=prefix)
    os.chmod(ro, 0o755)
    old = w / "old.duckdb"
    shutil.copy(S, old)
    con = duckdb.connect(str(old))
    cols = [r[0] for r in con.execute("DESCRIBE events").fetchall()]
    con.execute(f"ALTER TABLE events DROP COLUMN {cols[-1]}")
    con.close()
    check(six, f"an older store missing a column ({cols[-1]})", ["stats", "--db", old],
          names=[old])
    foreign = w / "foreign.duckdb"
    duckdb.connect(str(foreign)).execute("CREATE TABLE t(x INT)").close()
    check(six, "a foreign DuckDB file", ["stats", "--db", foreign], names=[foreign])
    lite = w / "lite.db"
    sqlite3.connect(lite).execute("CREATE TABLE t(x)").connection.commit()
    # (named as SQLite by its first bytes, so refused before DuckDB saw it; the time limit is
    # loose because timings on a shared machine are; a download attempt would hang far longer)
    check(six, "a SQLite file as --db (refused before DuckDB touches it)",
          ["stats", "--db", lite], names=[lite, "SQLite"], max_s=30)
    RESULTS[-1]["ok"] &= lite.read_bytes().startswith(b"SQLite format 3")
    v99 = w / "v99.duckdb"
    shutil.copy(S, v99)
    con = duckdb.connect(str(v99))
    tables = [r[0] for r in con.execute("SHOW TABLES").fetchall()]
    meta = next((t for t in tables if "meta" in t or "schema" in t), None)
    if meta:
        cols = [r[0] for r in con.execute(f"DESCRIBE {meta}").fetchall()]
        vcol = next((c for c in cols if "version" in c), None)
        if vcol:
            con.execute(f"UPDATE {meta} SET {vcol} = 99")
        else:
            con.execute(f"UPDATE {meta} SET {cols[1]} = '99' WHERE {cols[0]} LIKE '%version%'")
    con.close()
    check(six, "a store marked with schema v99 (refused, not re-marked)",
          ["ingest", sy, "--db", v99], names=["99"])
    for label, target in (("a directory as input", w), ("/dev/null as input", Path("/dev/null"))):
        check(six, label, ["ingest", target, "--db", S], names=[target], db=S)
    fifo = w / "fifo"
    os.mkfifo(fifo)
    check(six, "a FIFO as input", ["ingest", fifo, "--db", S], names=[fifo], db=S)
    # SIGINT during an ingest: exit 130 saying nothing was stored, or saying the events were
    # kept when the interrupt came during or after the commit, or exit 0 with the data: what it
    # says must match the store.
    big = w / "big.csv"
    allrows = rows_of(DATA / "ucdp_ged_syria_2016_2018.csv.gz")
    with open(big, "w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(allrows[0])
        for k in range(6):
            wr.writerows([r[0] + f"{k:02d}"] + r[1:] for r in allrows[1:])
    t0 = time.perf_counter()
    whole = w / "whole.duckdb"
    shutil.copy(S, whole)
    culpa("ingest", big, "--db", whole)
    took = time.perf_counter() - t0  # the interrupts below land from loading to the commit
    for delay in [round(took * f, 2) for f in (0.05, 0.3, 0.6, 0.8, 0.9, 0.95)]:
        si = w / f"sigint{delay}.duckdb"
        shutil.copy(S, si)
        before = events(si)[0]
        proc = subprocess.Popen([sys.executable, "-m", "culpa", "ingest", big, "--db", si],
                                env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)
        after = events(si)[0]
        kept = "committed" in err and "are in the store" in err
        truthful = (proc.returncode == 0 and after > before) or (
            proc.returncode == 130 and (after > before) == kept
            and (kept or "nothing" in err.lower()))
        ok = truthful and "Traceback" not in err and "internal error" not in err
        RESULTS.append({"section": six, "reproducer": f"SIGINT after {delay} s of an ingest",
                        "exit": proc.returncode, "expected": [0, 130], "ok": ok,
                        "message": (err.strip().splitlines() or [""])[-1][:240],
                        "events_before_after": [before, after]})
        print(f"{'ok ' if ok else 'BAD'} [6] SIGINT after {delay} s: exit {proc.returncode}, "
              f"{before}->{after} events; {(err.strip().splitlines() or [''])[-1][:120]}")
    bad = [r for r in RESULTS if not r["ok"]]
    print(f"\n{len(RESULTS)} reproducers, {len(RESULTS) - len(bad)} as promised, {len(bad)} not")
    if a.out:
        a.out.write_text(json.dumps({"command": "PYTHONPATH=src python "
                                     "benchmarks/issue13_reproducers.py", "checked": len(RESULTS),
                                     "as_promised": len(RESULTS) - len(bad),
                                     "results": RESULTS}, indent=2) + "\n")
    shutil.rmtree(w, ignore_errors=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
