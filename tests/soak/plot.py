#!/usr/bin/python3
"""Plots a soak run's CSV (node tests/soak/soak.js --csv FILE): resident memory (RssAnon) and open files of each
process, and the namespace's /dev/shm use, over time. Usage: plot.py SOAK.csv OUT.png"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        rows = list(csv.DictReader(f))
    t = [float(r["t"]) for r in rows]
    names = [c[: -len(":rss_anon_kib")] for c in rows[0] if c.endswith(":rss_anon_kib")]
    fig, (mem, fds) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
    for n in names:
        mem.plot(t, [float(r[f"{n}:rss_anon_kib"] or "nan") / 1024 for r in rows], label=n, linewidth=1)
        fds.plot(t, [float(r[f"{n}:fds"] or "nan") for r in rows], label=n, linewidth=1)
    mem.plot(t, [float(r["shm_kib"]) / 1024 for r in rows], label="/dev/shm (segments)", color="black", linestyle="--")
    mem.set_ylabel("MiB (RssAnon; /dev/shm)")
    mem.set_title(f"soak: {t[-1]:.0f} s of mixed traffic")
    fds.set_ylabel("open file descriptors")
    fds.set_xlabel("seconds")
    mem.legend(fontsize=7, ncol=3)
    for ax in (mem, fds):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=80)


main()
