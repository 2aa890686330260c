"""Times PyJWT's HS256 verification the way `verify-bench verify` times ours.

usage: verify_pyjwt.py TOKEN_FILE COUNT WARMUP SECRET ISSUER AUDIENCE
Prints one JSON line: {"impl", "count", "seconds", "ns_per_op", "ops_per_sec", "cpu_ns_per_op"}
(CPU time of this thread, which does not grow while other processes have the core).
"""

import json
import sys
import time

import jwt


def main() -> int:
    token_file, count, warmup, secret, issuer, audience = sys.argv[1:7]
    count, warmup = int(count), int(warmup)
    with open(token_file, encoding="ascii") as f:
        tokens = [line.strip() for line in f if line.strip()]
    options = {"require": ["exp", "nbf", "iss", "aud", "sub"]}

    def run(n: int) -> int:
        ok = 0
        for i in range(n):
            claims = jwt.decode(
                tokens[i % len(tokens)],
                secret,
                algorithms=["HS256"],
                audience=audience,
                issuer=issuer,
                leeway=5,
                options=options,
            )
            if claims["sub"]:
                ok += 1
        return ok

    run(warmup)
    cpu_start = time.thread_time_ns()
    start = time.perf_counter_ns()
    ok = run(count)
    seconds = (time.perf_counter_ns() - start) / 1e9
    cpu_ns = time.thread_time_ns() - cpu_start
    if ok != count:
        print(f"{count - ok} of {count} tokens failed to verify", file=sys.stderr)
        return 1
    print(json.dumps({
        "impl": f"PyJWT {jwt.__version__} (Python {sys.version.split()[0]})",
        "count": count,
        "seconds": seconds,
        "ns_per_op": seconds * 1e9 / count,
        "ops_per_sec": count / seconds,
        "cpu_ns_per_op": cpu_ns / count,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
