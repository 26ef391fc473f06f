#!/usr/bin/env python3
"""Instructions per record of libmq's hot paths and the raw ring's, counted by callgrind (deterministic, unlike time
on a noisy VM): each bench/micro benchmark named below runs a fixed number of iterations under
`valgrind --tool=callgrind`, collecting only inside the benchmark's function, and the count is divided by the records
it moved (set-up inside the function, such as creating the topic, is spread over them: a few instructions a record at
the default 200000 iterations).

usage: bench/instructions.py MICRO [--iterations N] [--json FILE]
  MICRO          the bench/micro binary (build/release/bench/micro)
  --iterations   iterations per benchmark (default 200000; the smoke test uses 2000)
  --json FILE    also write {"tool": "instructions", "instructions": [{name, per_record, records}]} for report.py
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

# The benchmarks counted, in the order of the micro table: the floor first, then libmq's paths.
CASES = ["BM_RawRingPushPop64", "BM_Publish64", "BM_PublishExclusive64", "BM_ClaimCommit64", "BM_PublishPollAck64",
         "BM_PublishPollAckExclusive64",
         "BM_PublishPollAckTwoProducersTwoMembers64", "BM_EmptyPoll",
         "BM_Batch32PublishPollAck64", "BM_PublishBatchPollBatchAck64/32",
         "BM_RawRingPop64", "BM_PollAckLone64", "BM_PollAckCompeting64",
         "BM_PublishPollAckKeyed64/0", "BM_PublishPollAckKeyed64/1"]
# Benchmarks whose function also refills (untimed): only the calls named here are counted, not the loop around them.
COLLECT = {"BM_RawRingPop64": ["*SpscRing::Pop::receive*"],
           "BM_PollAckLone64": ["mq::Consumer::poll*", "mq::Consumer::ack*"],
           "BM_PollAckCompeting64": ["mq::Consumer::poll*", "mq::Consumer::ack*"]}


def count(micro, name, iterations, tmp):
    """-> (instructions collected inside the benchmark's function, records it moved)."""
    out = os.path.join(tmp, "callgrind.out")
    report = os.path.join(tmp, "micro.json")
    function = name.split("/")[0]
    collect = [f"--toggle-collect={f}" for f in COLLECT.get(function, [f"*{function}*"])]
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *collect,
           micro, f"--benchmark_filter=^{re.escape(name)}/iterations:{iterations}$", f"--benchmark_out={report}",
           "--benchmark_out_format=json"]
    env = dict(os.environ, MQ_MICRO_ITERATIONS=str(iterations))
    run = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=600)
    if run.returncode != 0:
        raise RuntimeError(f"{name}: valgrind exited {run.returncode}: {run.stderr[-2000:]}")
    with open(report) as f:
        bench = [b for b in json.load(f)["benchmarks"] if b.get("run_type", "iteration") == "iteration"]
    if len(bench) != 1 or bench[0]["iterations"] != iterations:
        raise RuntimeError(f"{name}: expected one run of {iterations} iterations, got {bench}")
    b = bench[0]
    if b.get("error_occurred"):
        raise RuntimeError(f"{name}: {b.get('error_message')}")
    # Records per iteration: items_per_second x seconds per iteration (1 for single records, the batch otherwise).
    per_iteration = round(b["items_per_second"] * b["cpu_time"] * {"ns": 1e-9, "us": 1e-6, "ms": 1e-3}[b["time_unit"]])
    instructions = None
    with open(out) as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                instructions = int(line.split()[1])
    if instructions is None:
        raise RuntimeError(f"{name}: no totals in {out}")
    return instructions, iterations * max(per_iteration, 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("micro")
    ap.add_argument("--iterations", type=int, default=200000)
    ap.add_argument("--json")
    a = ap.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("instructions.py: valgrind not found (scripts/setup.sh installs it)")
    if not os.access(a.micro, os.X_OK):
        sys.exit(f"instructions.py: {a.micro} is not an executable (build bench/micro first)")
    if a.iterations < 1:
        sys.exit(f"instructions.py: --iterations wants a whole number >= 1, got {a.iterations}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="mq-instructions.") as tmp:
        for name in CASES:
            instructions, records = count(a.micro, name, a.iterations, tmp)
            rows.append({"name": name, "per_record": instructions / records, "records": records})
            print(f"{name:40} {instructions / records:8.1f} instructions per record ({records} records)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"tool": "instructions", "instructions": rows}, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
