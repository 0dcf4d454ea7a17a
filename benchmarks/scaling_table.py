"""Render scaling JSON files (benchmarks/scaling.py --out) as the markdown table of README.md.

    python benchmarks/scaling_table.py benchmarks/scaling_*.json
"""
import json
import sys


def rows(paths):
    for p in paths:
        with open(p) as f:
            data = json.load(f)
        for r in data["results"]:
            if "failed" not in r:
                yield r


def main(paths):
    print("| N (rec) | synapses | delay = D | ranks | exchange | build s | sim s / bio-s | update | deliver | "
          "e-prop | communicate | peak RSS / rank (MiB) | B / synapse | B / neuron |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in sorted(rows(paths), key=lambda r: (r["N"], r["delay"], r["ranks"], r["exchange"])):
        ph = r["phases_max"]
        scale = 1000.0 / r["t_bio_ms"]          # phases per biological second
        print(f"| {r['N']:,} | {r['synapses']:,} | {r['delay']} | {r['ranks']} | {r['exchange']} | "
              f"{r['build_s']:.1f} | {r['sim_s_per_bio_s']:.0f} | {ph['update'] * scale:.0f} | "
              f"{ph['deliver'] * scale:.0f} | {ph['eprop'] * scale:.0f} | {ph['communicate'] * scale:.0f} | "
              f"{max(r['peak_rss_MiB_per_rank']):.0f} | {r['bytes_per_synapse']:.0f} | {r['bytes_per_neuron']:.0f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
