#!/usr/bin/env python3
"""Turns the benchmark's raw rows (scenario, contender, round, seconds, max RSS KiB, bytes,
requests) into a Markdown table of medians with each contender's ratio to the best peer.

usage: summarize.py RESULTS_TSV MACHINE_DESCRIPTION > latest.md
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


if __name__ == "__main__":
    main()
