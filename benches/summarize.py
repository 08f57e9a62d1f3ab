#!/usr/bin/env python3
"""Turns the benchmark's raw rows (scenario, contender, round, seconds, max RSS KiB, bytes,
requests) into a Markdown table of medians with each contender's ratio to the best peer.

usage: summarize.py RESULTS_TSV MACHINE_DESCRIPTION [REPORTS [LEDGER_ROWS]] > latest.md

After the table comes each target of the benchmark issue with the figure that meets it or
misses it, for the scenarios that ran.
"""
import statistics
import sys
from collections import OrderedDict


def main() -> None:
    rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
    machine = sys.argv[2]
    groups: "OrderedDict[tuple, list]" = OrderedDict()
    for scenario, contender, _round, secs, rss, nbytes, requests in rows:
        groups.setdefault((scenario, contender), []).append(
            (float(secs), int(rss), int(nbytes), requests)
        )
    print("# report-archiver benchmark\n")
    print(f"Machine: {machine}\n")
    print("| scenario | contender | rounds | median s | MB/s | peak RSS MiB | requests | vs best peer |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    by_scenario: "OrderedDict[str, dict]" = OrderedDict()
    for (scenario, contender), runs in groups.items():
        med = statistics.median(r[0] for r in runs)
        by_scenario.setdefault(scenario, {})[contender] = (med, runs)
    for scenario, contenders in by_scenario.items():
        peers = {c: v for c, v in contenders.items() if not c.startswith("report-archiver")}
        best = min((v[0] for v in peers.values()), default=None)
        for contender, (med, runs) in contenders.items():
            nbytes = runs[0][2]
            mbps = f"{nbytes / med / 1e6:.0f}" if nbytes and med > 0 else "-"
            rss = max(r[1] for r in runs) / 1024
            reqs = runs[-1][3]
            ratio = "-"
            if best and med > 0:
                # > 1 means faster than the best peer (throughput ratio = time ratio inverted).
                ratio = f"{best / med:.2f}x"
            print(
                f"| {scenario} | {contender} | {len(runs)} | {med:.3f} | {mbps} | {rss:.1f} | {reqs} | {ratio} |"
            )
    print("\n`vs best peer` = best peer's median time / this contender's median time (above 1: faster).")
    reports = int(sys.argv[3]) if len(sys.argv) > 3 else 500
    ledger_rows = int(sys.argv[4]) if len(sys.argv) > 4 else 1_000_000
    print_targets(by_scenario, reports, ledger_rows)


def print_targets(by_scenario: dict, reports: int, ledger_rows: int) -> None:
    def med(scenario: str, contender: str):
        v = by_scenario.get(scenario, {}).get(contender)
        return v[0] if v else None

    def rss(scenario: str, contender: str):
        v = by_scenario.get(scenario, {}).get(contender)
        return max(r[1] for r in v[1]) / 1024 if v else None

    def requests(scenario: str, contender: str):
        v = by_scenario.get(scenario, {}).get(contender)
        return int(v[1][-1][3]) if v and v[1][-1][3].isdigit() else None

    ours = "report-archiver once"
    checks = []

    def check(name: str, value, ok) -> None:
        if value is not None:
            checks.append((name, value, "met" if ok else "**missed**"))

    big = med("big", ours)
    peers = [m for m in (med("big", c) for c in ("curl -o", "wget -O", "rclone copyurl")) if m]
    if big and peers:
        r = min(peers) / big
        check("big: throughput >= 0.9x the best of curl/wget/rclone", f"{r:.2f}x", r >= 0.9)
    gz, curl_gz = med("big-gz", ours), med("big-gz", "curl --compressed -o")
    if gz and curl_gz:
        r = curl_gz / gz
        check("big-gz: throughput >= 1.0x curl --compressed", f"{r:.2f}x", r >= 1.0)
    for scenario in ("big", "big-gz"):
        m = rss(scenario, ours)
        if m is not None:
            check(f"{scenario}: peak RSS <= 32 MiB", f"{m:.1f} MiB", m <= 32)
    small, large = rss("big-10MiB", ours), rss("big", ours)
    if small is not None and large is not None:
        d = large - small
        check("big: peak RSS within 4 MiB of the 10 MiB case", f"{large:.1f} - {small:.1f} = {d:.1f} MiB", d <= 4)
    many, py, xargs = med("many", ours), med("many", "python requests (sequential)"), med("many", "xargs -P8 curl")
    if many and py:
        check("many: wall time <= 1/6 of sequential Python", f"{many / py:.3f} (1/6 = 0.167)", many <= py / 6)
    if many and xargs:
        check("many: wall time <= 1.0x xargs -P8 curl", f"{many / xargs:.2f}x", many <= xargs)
    synced = med("many", "xargs -P8 curl + sync")
    if many and synced:
        check("many: faster than xargs -P8 curl + sync", f"{many / synced:.2f}x", many < synced)
    m = rss("many", ours)
    if m is not None:
        check("many: peak RSS <= 32 MiB", f"{m:.1f} MiB", m <= 32)
    for label, contender, limit in (
        ("report ids", f"{ours} (report ids)", reports + 1),
        ("discovery", f"{ours} (discovery)", 2 * reports + 2),
    ):
        n = med("noop", contender)
        if n and many:
            check(f"noop ({label}): wall time <= 1/4 of many", f"{n / many:.3f}", n <= many / 4)
        q = requests("noop", contender)
        if q is not None:
            check(f"noop ({label}): requests <= {limit}", str(q), q <= limit)
        big_ledger = med("noop-big-ledger", contender)
        if n and big_ledger:
            r = big_ledger / n
            check(f"noop ({label}) with {ledger_rows:,} more ledger rows: <= 1.5x the plain no-op", f"{r:.2f}x", r <= 1.5)
    idle = by_scenario.get("idle", {}).get("report-archiver run (after the start-up pass)")
    if idle:
        cpu, kib = idle[0], max(r[1] for r in idle[1])
        check("idle: CPU <= 0.1 s over the minute (after the start-up pass)", f"{cpu:.2f} s", cpu <= 0.1)
        whole = by_scenario.get("idle", {}).get(
            "report-archiver run (whole first minute, start-up no-op pass included)"
        )
        if whole:
            check("idle: CPU <= 0.1 s over the first minute, its no-op pass included", f"{whole[0]:.2f} s", whole[0] <= 0.1)
        check("idle: RSS <= 20 MiB", f"{kib / 1024:.1f} MiB", kib / 1024 <= 20)
    if checks:
        print("\n## Targets\n")
        print("| target | measured | |")
        print("| --- | --- | --- |")
        for name, value, verdict in checks:
            print(f"| {name} | {value} | {verdict} |")


if __name__ == "__main__":
    main()
