"""Times PyJWT's ES256 verification (with `cryptography`) the way `verify-bench verify` times ours.

usage: verify_pyjwt.py TOKEN_FILE COUNT WARMUP PARAMS_JSON
PARAMS_JSON is `verify-bench params`: {"jwks", "issuer", "audience"}. Each token is verified as
PyJWKClient does it, from a key set: the key picked by the header's `kid`, ES256 only, `typ`
at+jwt, issuer and audience, `exp nbf iss aud sub` required, 5 s leeway.
Prints one JSON line: {"impl", "count", "seconds", "ns_per_op", "ops_per_sec", "cpu_ns_per_op"}
(CPU time of this thread, which does not grow while other processes have the core).
"""

import json
import sys
import time

import cryptography
import jwt


def main() -> int:
    token_file, count, warmup, params = sys.argv[1:5]
    count, warmup, params = int(count), int(warmup), json.loads(params)
    with open(token_file, encoding="ascii") as f:
        tokens = [line.strip() for line in f if line.strip()]
    keys = {key.key_id: key for key in jwt.PyJWKSet.from_dict(params["jwks"]).keys}
    options = {"require": ["exp", "nbf", "iss", "aud", "sub"]}

    def verify(token: str) -> dict:
        header = jwt.get_unverified_header(token)
        if header.get("typ") != "at+jwt":
            raise jwt.InvalidTokenError("typ is not at+jwt")
        return jwt.decode(token, keys[header["kid"]], algorithms=["ES256"], audience=params["audience"],
                          issuer=params["issuer"], leeway=5, options=options)

    def run(n: int) -> int:
        return sum(1 for i in range(n) if verify(tokens[i % len(tokens)])["sub"])

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
        "impl": f"PyJWT {jwt.__version__} + cryptography {cryptography.__version__} (Python {sys.version.split()[0]})",
        "count": count,
        "seconds": seconds,
        "ns_per_op": seconds * 1e9 / count,
        "ops_per_sec": count / seconds,
        "cpu_ns_per_op": cpu_ns / count,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
