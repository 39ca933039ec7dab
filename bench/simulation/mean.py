"""Reads concatenated `peerway simulate --json` reports on stdin; prints their means on one line."""
import json
import sys

text = sys.stdin.read()
decoder = json.JSONDecoder()
i, reports = 0, []
while i < len(text):
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text):
        break
    report, i = decoder.raw_decode(text, i)
    reports.append(report)


def mean(key):
    return sum(r[key] for r in reports) / len(reports)


print(f"{sys.argv[1]:32} {sys.argv[2]:14} success {100 * mean('successRate'):5.1f} %  "
      f"latency p50/p90/p99 {mean('latencyP50Ms') / 1000:5.2f}/{mean('latencyP90Ms') / 1000:5.2f}/{mean('latencyP99Ms') / 1000:5.2f} s  "
      f"msgs {mean('messagesMean'):5.1f}  rounds p50 {mean('roundsP50'):.1f}  ({len(reports)} seeds)")
