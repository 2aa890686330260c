"""HS256 verification side by side: our verifier, PyJWT and node's jsonwebtoken.

All three verify the same token file (minted by our issuer), the same number of times after the
same warm-up, each timing only its loop with its own monotonic clock. Rounds are interleaved
(rust, python, node, then rotated) so machine noise hits all three alike; each implementation's
median over the rounds is reported, with the speed-up of ours over the others.

usage: verify_compare.py --verify-bench BIN --python PY --node-modules DIR --out FILE
                         [--tokens 1000] [--count 5000] [--warmup 1000] [--rounds 5]

Count and warm-up default to $VERIFY_COUNT and $VERIFY_WARMUP (5000, 1000): small enough that
all three finish in about a minute on a loaded 2-core machine; raise them on a quiet one.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--verify-bench", required=True)
    parser.add_argument("--python", required=True)
    parser.add_argument("--node", default="node")
    parser.add_argument("--node-modules", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--count", type=int, default=int(os.environ.get("VERIFY_COUNT", 20_000)))
    parser.add_argument("--warmup", type=int, default=int(os.environ.get("VERIFY_WARMUP", 1_000)))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    out = Path(args.out)
    token_file = out.with_name("tokens.txt")
    tokens = subprocess.run([args.verify_bench, "mint", str(args.tokens)], check=True,
                            capture_output=True, text=True).stdout
    token_file.write_text(tokens, encoding="ascii")
    params = json.loads(subprocess.run([args.verify_bench, "params"], check=True,
                                       capture_output=True, text=True).stdout)
    shape = [str(token_file), str(args.count), str(args.warmup)]
    keys = [params["secret"], params["issuer"], params["audience"]]
    commands = {
        "rust": ([args.verify_bench, "verify", *shape], None),
        "pyjwt": ([args.python, str(HERE / "verify_pyjwt.py"), *shape, *keys], None),
        "node": ([args.node, str(HERE / "verify_node.js"), *shape, *keys],
                 {**os.environ, "NODE_PATH": args.node_modules}),
    }

    results = {name: [] for name in commands}
    names = list(commands)
    for r in range(args.rounds):
        for name in names[r % 3:] + names[:r % 3]:
            cmd, env = commands[name]
            done = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
            results[name].append(json.loads(done.stdout))
        print(f"\rverify: round {r + 1}/{args.rounds}", end="", file=sys.stderr)
    print(file=sys.stderr)

    report = {"tokens": args.tokens, "count": args.count, "warmup": args.warmup, "rounds": args.rounds}
    for name, runs in results.items():
        report[name] = {
            "impl": runs[0]["impl"],
            "ns_per_op_median": statistics.median(r["ns_per_op"] for r in runs),
            "ops_per_sec_median": statistics.median(r["ops_per_sec"] for r in runs),
            "ns_per_op_all": [round(r["ns_per_op"], 1) for r in runs],
            "cpu_ns_per_op_median": statistics.median(r.get("cpu_ns_per_op") or float("nan") for r in runs),
        }
    rust_ns = report["rust"]["ns_per_op_median"]
    rust_cpu = report["rust"]["cpu_ns_per_op_median"]
    # The budgets use wall time, as asked; CPU time is reported beside it because on a shared
    # machine wall time also counts the moments another process had the core.
    for other in ["pyjwt", "node"]:
        report[f"speedup_vs_{other}"] = report[other]["ns_per_op_median"] / rust_ns
        report[f"cpu_speedup_vs_{other}"] = report[other]["cpu_ns_per_op_median"] / rust_cpu
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")

    print(f"{'verifier':<44} {'ops/s':>10} {'ns/op':>10} {'ours is':>8} {'CPU ns/op':>10} {'ours is':>8}")
    for name in names:
        row = report[name]
        print(f"{row['impl']:<44} {row['ops_per_sec_median']:>10,.0f} {row['ns_per_op_median']:>10,.0f} "
              f"{row['ns_per_op_median'] / rust_ns:>7.1f}x {row['cpu_ns_per_op_median']:>10,.0f} "
              f"{row['cpu_ns_per_op_median'] / rust_cpu:>7.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
