#!/usr/bin/env python3
"""Side-by-side Markdown table of Swift (blend-bench --json) and PyTorch
(bench/engine_bench.py) engine timings.

Each input is JSON lines: {"name": str, "seconds": float, "runs": int} with
an optional "gflops". Ops are listed in the order they first appear (Swift
file first); an op missing on one side shows "—". The ratio is Swift time
over PyTorch time, so lower is better for Swift.

Uses only the standard library.
"""

import argparse
import json
import sys

DASH = "—"


def load(path):
    """Returns an ordered dict name -> record from a JSON-lines file."""
    records = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line or not line.startswith("{"):
                continue  # tolerate blank or stray non-JSON lines
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{lineno}: invalid JSON: {e}")
            if "name" not in record or "seconds" not in record:
                sys.exit(f"{path}:{lineno}: missing 'name' or 'seconds'")
            records[record["name"]] = record
    return records


def fmt_seconds(record):
    return DASH if record is None else f"{record['seconds']:.4f}"


def fmt_ratio(swift, torch):
    if swift is None or torch is None or torch["seconds"] <= 0:
        return DASH
    return f"{swift['seconds'] / torch['seconds']:.2f}"


def fmt_notes(columns):
    parts = []
    for label, record in columns:
        if record is not None and record.get("gflops") is not None:
            parts.append(f"{label} {record['gflops']:.1f} GFLOP/s")
    for label, record in columns:
        if record is not None and record.get("peak_rss_gib") is not None and ("unet" in record["name"] or record["name"].startswith("sd15_")):
            parts.append(f"{label} peak RSS {record['peak_rss_gib']:.2f} GiB")
    return "; ".join(parts)


def table(swift, torch, swift_alt=None, alt_label="Swift, alt"):
    names = list(swift) + [n for n in torch if n not in swift]
    header = "| op | Swift (s) | PyTorch (s) | Swift/PyTorch (lower is better) |"
    rule = "|---|---:|---:|---:|"
    if swift_alt is not None:
        header += f" {alt_label} (s) | {alt_label}/PyTorch |"
        rule += "---:|---:|"
    lines = [header + " notes |", rule + "---|"]
    for name in names:
        s, t = swift.get(name), torch.get(name)
        row = f"| {name} | {fmt_seconds(s)} | {fmt_seconds(t)} | {fmt_ratio(s, t)} |"
        columns = [("Swift", s), ("PyTorch", t)]
        if swift_alt is not None:
            a = swift_alt.get(name)
            row += f" {fmt_seconds(a)} | {fmt_ratio(a, t)} |"
            columns.insert(1, (alt_label, a))
        lines.append(row + f" {fmt_notes(columns)} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Compare Swift and PyTorch engine benchmark results.")
    parser.add_argument("swift", help="JSON lines from blend-bench --json")
    parser.add_argument("torch", help="JSON lines from bench/engine_bench.py")
    parser.add_argument("--swift-alt", metavar="FILE",
                        help="a second Swift run (e.g. with other BLAS kernels) shown as extra columns")
    parser.add_argument("--alt-label", default="Swift, alt",
                        help="column label for --swift-alt")
    parser.add_argument("--markdown-out", metavar="FILE",
                        help="also write the table to FILE")
    args = parser.parse_args(argv)

    text = table(load(args.swift), load(args.torch),
                 load(args.swift_alt) if args.swift_alt else None, args.alt_label)
    sys.stdout.write(text)
    if args.markdown_out:
        with open(args.markdown_out, "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
