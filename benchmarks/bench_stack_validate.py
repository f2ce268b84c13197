"""`mcpadmin stack validate` of the shipped template: whole-process wall time (target ≤ 3 s),
side by side with plain `cfn-lint` on the same file and with `mcpadmin --help` (which must not
pay for cfn-lint or boto3).

    python benchmarks/bench_stack_validate.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import machine, summary, time_process

from finops_mcp_admin.aws.cloudformation import shipped_template


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    bindir = Path(sys.executable).parent
    template = Path(tempfile.mkdtemp()) / "mcp-server.yaml"
    template.write_text(shipped_template())
    cases = {
        "mcpadmin stack validate": [str(bindir / "mcpadmin"), "stack", "validate"],
        "cfn-lint (plain, no custom rules)": [str(bindir / "cfn-lint"), str(template)],
        "mcpadmin --help": [str(bindir / "mcpadmin"), "--help"],
    }
    print(f"machine: {machine()}\nruns: {args.runs} each (first discarded)\n")
    medians = {}
    for label, cmd in cases.items():
        times = time_process(cmd, args.runs)
        medians[label] = statistics.median(times)
        print(f"{label:36s} {summary(times)}")
    v = medians["mcpadmin stack validate"]
    print(f"\nvalidate vs plain cfn-lint: {v / medians['cfn-lint (plain, no custom rules)']:.2f}x; "
          f"{'OK' if v <= 3.0 else 'OVER'} target ≤ 3 s")


if __name__ == "__main__":
    main()
