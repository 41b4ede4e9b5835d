"""Profile the API process under the benchmark load with py-spy.

Starts ``geo-service serve`` against one bench database, drives it with the same wrk
script as ``bench_nearest.py`` (16 clients) and samples the server with ``py-spy record``
at the same time. Writes the collapsed stacks to ``bench/out/`` and
prints the top functions by inclusive and by self time, counting only samples where a
thread holds the GIL (``--gil``: Python CPU time; idle and I/O waits drop out).

py-spy is not a project dependency: ``.venv/bin/pip install py-spy`` first.

Usage::

    .venv/bin/python bench/profile_api.py [--size 1000000] [--seconds 20] [--variant filtered]
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import bench_nearest as bn  # noqa: E402
import make_data  # noqa: E402


def summarise(collapsed: Path, top: int = 35) -> str:
    """Inclusive and self share of each frame in py-spy's collapsed stacks."""
    inclusive: collections.Counter[str] = collections.Counter()
    self_: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_s)
        frames = [f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].split("/")[-1] + ")"
                  if " (" in f else f for f in stack.split(";")]
        total += count
        for f in set(frames):
            inclusive[f] += count
        self_[frames[-1]] += count
    lines = [f"{total} busy samples"]
    lines.append("\n== inclusive ==")
    for f, c in inclusive.most_common(top):
        lines.append(f"{100 * c / total:6.1f}%  {f}")
    lines.append("\n== self ==")
    for f, c in self_.most_common(top):
        lines.append(f"{100 * c / total:6.1f}%  {f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="1000000")
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--variant", default="filtered", choices=sorted(bn.VARIANTS))
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    args = ap.parse_args(argv)

    pyspy = shutil.which("py-spy") or str(bn.VENV_BIN / "py-spy")
    if not Path(pyspy).exists():
        raise SystemExit("py-spy not found: .venv/bin/pip install py-spy")
    wrk = bn.ensure_wrk()
    if not wrk:
        raise SystemExit("wrk not found")
    n = make_data.parse_sizes(args.size)[0]
    dbname, url = make_data.db_name(n), make_data.db_url(n)
    work = bn.OUT / dbname
    work.mkdir(parents=True, exist_ok=True)
    variant = bn.VARIANTS[args.variant]
    lua = work / f"nearest_{variant.name}.lua"
    lua.write_text(bn.wrk_script(variant))
    collapsed = bn.OUT / f"profile_{dbname}_{variant.name}.txt"

    with bn.ApiServer(url, work, None, None) as server:
        bn.smoke_check(server, variant)
        bn.run_wrk(wrk, server, lua, 5, args.clients, args.threads, dbname)  # warm-up
        assert server.proc is not None
        pid = str(server.proc.pid)
        spy = subprocess.Popen([pyspy, "record", "--pid", pid, "--rate", str(args.rate),
                                "--duration", str(args.seconds + 2), "--format", "raw", "--gil",
                                "--output", str(collapsed), "--nonblocking"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1)
        res = bn.run_wrk(wrk, server, lua, args.seconds, args.clients, args.threads, dbname)
        spy.wait(timeout=args.seconds + 60)
    print(f"under py-spy: {res['rps']:.0f} req/s, p50 {res['p50_ms']:.2f} ms, "
          f"p99 {res['p99_ms']:.2f} ms, server CPU {res['server_cpu_pct']:.0f}%, "
          f"postgres CPU {res['postgres_cpu_pct']:.0f}%")
    if not collapsed.exists():
        err = spy.stderr.read().decode() if spy.stderr else ""
        raise SystemExit(f"py-spy wrote nothing: {err}")
    report = summarise(collapsed)
    (bn.OUT / f"profile_{dbname}_{variant.name}.summary.txt").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
