"""ES256 verification side by side: our verifier, ring's bare P-256 verify (the floor), PyJWT and
node's jose.

All four verify the same token file (minted by our issuer), the same number of times after the
same warm-up, each timing only its loop with its own monotonic clock. Rounds are interleaved
(rotating the order each round) so machine noise hits all four alike; each implementation's median
over the rounds is reported, with ours as a multiple of the floor and the others as multiples of
ours.

usage: verify_compare.py --verify-bench BIN --python PY --node-modules DIR --out FILE
                         [--tokens 1000] [--count 5000] [--warmup 500] [--rounds 7]

Count and warm-up default to $VERIFY_COUNT and $VERIFY_WARMUP (5000, 500): at about 50-150 µs a
verification here, a few seconds a round for all four.
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
    parser.add_argument("--count", type=int, default=int(os.environ.get("VERIFY_COUNT", 5_000)))
    parser.add_argument("--warmup", type=int, default=int(os.environ.get("VERIFY_WARMUP", 500)))
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    out = Path(args.out)
    token_file = out.with_name("tokens.txt")
    tokens = subprocess.run([args.verify_bench, "mint", str(args.tokens)], check=True,
                            capture_output=True, text=True).stdout
    token_file.write_text(tokens, encoding="ascii")
    params = subprocess.run([args.verify_bench, "params"], check=True, capture_output=True,
                            text=True).stdout.strip()
    shape = [str(token_file), str(args.count), str(args.warmup)]
    commands = {
        "rust": [args.verify_bench, "verify", *shape],
        "floor": [args.verify_bench, "bare", *shape],
        "pyjwt": [args.python, str(HERE / "verify_pyjwt.py"), *shape, params],
        "jose": [args.node, str(HERE / "verify_jose.mjs"), *shape, params, args.node_modules],
    }

    results = {name: [] for name in commands}
    names = list(commands)
    for r in range(args.rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            done = subprocess.run(commands[name], check=True, capture_output=True, text=True)
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
    # The budgets use wall time; CPU time is reported beside it because on a shared machine wall
    # time also counts the moments another process had the core.
    report["ratio_to_floor"] = rust_ns / report["floor"]["ns_per_op_median"]
    report["cpu_ratio_to_floor"] = rust_cpu / report["floor"]["cpu_ns_per_op_median"]
    for other in ["pyjwt", "jose"]:
        report[f"speedup_vs_{other}"] = report[other]["ns_per_op_median"] / rust_ns
        report[f"cpu_speedup_vs_{other}"] = report[other]["cpu_ns_per_op_median"] / rust_cpu
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")

    print(f"{'verifier':<62} {'ops/s':>8} {'µs/op':>7} {'÷ ours':>7} {'CPU µs/op':>9} {'÷ ours':>7}")
    for name in names:
        row = report[name]
        print(f"{row['impl']:<62} {row['ops_per_sec_median']:>8,.0f} {row['ns_per_op_median'] / 1e3:>7.1f} "
              f"{row['ns_per_op_median'] / rust_ns:>6.2f}x {row['cpu_ns_per_op_median'] / 1e3:>9.1f} "
              f"{row['cpu_ns_per_op_median'] / rust_cpu:>6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
