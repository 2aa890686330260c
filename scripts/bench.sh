#!/usr/bin/env bash
# Benchmarks, one command: builds in release, installs PyJWT (+ cryptography), locust and node's
# jose into git-ignored folders under .dev/, runs the criterion benches, the ES256 verifier
# comparison (ours, ring's bare P-256 verify, PyJWT, jose), the cold-start benchmark and the load
# test (./dev load: the store's per-request costs, locust through the local API, a slowed
# DynamoDB) and the arm64 cross-build (./dev arm64), then prints PASS or FAIL for each budget,
# the latency and cost model of BENCHMARKS.md, and draws its charts into docs/ (bench-*.svg).
# Not part of the tests or CI. Takes about 25 minutes on 2 cores after the first build, 4 to 7
# minutes when the release and arm64 builds are warm.
#
#   ./scripts/bench.sh               everything
#   ./scripts/bench.sh --profiles    also the release-profile study (scripts/bench/profiles.py; long)
#
# Settings: COLDSTART_RUNS (30), VERIFY_ROUNDS (7), VERIFY_COUNT (5000), LOGIN_PAIRS (30),
# BENCH_OUT_DIR (target/bench); ./dev load's LOAD_REQUESTS (1000), LOAD_USERS (4), LOAD_DELAY_MS
# (2500), STORE_PAIRS (100), FUNCTION_CONCURRENCY (4).
# Every network call goes to 127.0.0.1; every loop is bounded; it stops only processes it started.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${BENCH_OUT_DIR:-$ROOT/target/bench}
TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
VENV=$ROOT/.dev/bench-venv
NODE_DIR=$ROOT/.dev/bench-node
mkdir -p "$OUT"
# Nothing of an earlier run may stand in for this one's.
rm -f "$OUT"/{coldstart,verify,login-ratio,store-ratio,load,summary,arm64}.json

say() { printf '\n==> %s\n' "$*" >&2; }

say "tools: PyJWT in $VENV (scripts/bench/requirements.txt), jose in $NODE_DIR (scripts/interop/package-lock.json)"
if [[ ! -x $VENV/bin/python ]]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r scripts/bench/requirements.txt
mkdir -p "$NODE_DIR"
if ! cmp -s scripts/interop/package-lock.json "$NODE_DIR/package-lock.json" || [[ ! -d $NODE_DIR/node_modules/jose ]]; then
  cp scripts/interop/package.json scripts/interop/package-lock.json "$NODE_DIR/"
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error)
fi

say "the authorizer's dependency tree holds no AWS SDK; rsa only where passkeys verify RS256"
if cargo tree -p authorizer -e normal --prefix none | grep -E '^aws-(config|sdk-|smithy|runtime|sigv4|types)'; then
  echo "FAIL: the authorizer depends on the AWS SDK" >&2
  exit 1
fi
# RUSTSEC-2023-0071 (Marvin) is a timing side channel of the rsa crate's private-key operations
# (decryption, signing). jsonwebtoken's rust_crypto feature would sign and verify our tokens with
# it; shared::keys supplies ES256 over ring instead (BENCHMARKS.md, "Why ring"). The one path that
# may bring rsa is the token function's WebAuthn (webauthn-rs-core, through crypto-glue), which
# verifies RS256 passkey signatures with public keys only, which the advisory does not concern.
if cargo tree --workspace --target all -e features -i jsonwebtoken | grep -q 'jsonwebtoken feature "rust_crypto"'; then
  echo "FAIL: jsonwebtoken's rust_crypto feature (and its rsa) is on" >&2
  exit 1
fi
for function in authorizer jwks protected users; do
  if cargo tree -p "$function" -e normal --target all -i rsa >/dev/null 2>&1; then
    echo "FAIL: $function depends on rsa:" >&2
    cargo tree -p "$function" -e normal --target all -i rsa >&2
    exit 1
  fi
done
if unexpected=$(cargo tree -p token -e normal --target all -i rsa --prefix none 2>/dev/null | cut -d' ' -f1 | sort -u |
  grep -vxE 'rsa|crypto-glue|webauthn-attestation-ca|webauthn-rs-core|webauthn-rs|shared|token'); then
  echo "FAIL: rsa reaches the token function through $unexpected, not only WebAuthn" >&2
  exit 1
fi

# Criterion first: `cargo bench` also rebuilds this package's binaries with the benches' features,
# so the binaries the cold-start run uses are built after it.
# The criterion benches, the login/argon2 comparison and the verifier comparison run pinned to
# one core: a Lambda function below 1769 MB has at most one vCPU, and on this 2-vCPU machine work
# that moves between cores (the login's argon2 runs on a tokio blocking thread, the bare verify on
# the main thread) measured 10-50 % apart from run to run, while pinned pairs agreed within 4 %.
# Unpinned, the authorizer's decision and the bare verify it is budgeted against (criterion
# medians taken minutes apart) came out 0.99x and 1.30x in two runs of the same tree.
PIN=()
if command -v taskset >/dev/null; then
  PIN=(taskset -c 0)
fi
say "criterion: token issue/verify, authorizer, protected (cargo bench --bench requests, ${PIN[*]:-not pinned})"
cargo bench -p benchmarks --bench requests --no-run
"${PIN[@]}" cargo bench -p benchmarks --bench requests
say "criterion: argon2 hash/verify, login vs bare argon2 (cargo bench --bench passwords, ${PIN[*]:-not pinned})"
cargo bench -p benchmarks --bench passwords --no-run
BENCH_OUT_DIR=$OUT LOGIN_PAIRS=${LOGIN_PAIRS:-30} "${PIN[@]}" cargo bench -p benchmarks --bench passwords

# Before the release builds below: ./dev load builds each function as cargo lambda watch runs
# it, with the workspace's features unified, and the sizes and cold starts below are of the
# binaries as deployed. A failure here shows in the report as budgets not measured.
say "load: the store's per-request costs, locust through the local API, a slowed DynamoDB (./dev load)"
./dev load "$OUT" || echo "./dev load failed; see above" >&2

# Each function on its own, as it is deployed: cargo unifies features across the packages of one
# build, and the authorizer must be built with `shared` as it alone asks for it (no AWS SDK).
say "release builds"
cargo build --release -p authorizer
cargo build --release -p protected -p token -p users
cargo build --release -p benchmarks --bins
# The SDK functions' floor (benches/sdk-hello): its own build, as each function's is.
cargo build --release -p sdk-hello

say "ES256 verification: ours vs ring's bare P-256 verify vs PyJWT vs node jose"
"${PIN[@]}" python3 scripts/bench/verify_compare.py --verify-bench "$TARGET/release/verify-bench" \
  --python "$VENV/bin/python" --node-modules "$NODE_DIR/node_modules" \
  --rounds "${VERIFY_ROUNDS:-7}" --out "$OUT/verify.json"

# `@loader`: the same SDK functions with their SDK configuration from aws-config's loader instead
# of from Lambda's environment (benches/src/bin/coldstart.rs), for what that saves.
say "cold start: ${COLDSTART_RUNS:-30} interleaved runs of each bootstrap against a local Runtime API"
rm -rf "$OUT/logs"
"$TARGET/release/coldstart" --runs "${COLDSTART_RUNS:-30}" --warm 100 --events events \
  --logs "$OUT/logs" --out "$OUT/coldstart.json" \
  hello="$TARGET/release/hello-lambda" sdk-hello="$TARGET/release/sdk-hello" authorizer="$TARGET/release/authorizer" \
  protected="$TARGET/release/protected" token="$TARGET/release/token" users="$TARGET/release/users" \
  hello@loader="$TARGET/release/hello-lambda" protected@loader="$TARGET/release/protected" \
  token@loader="$TARGET/release/token" users@loader="$TARGET/release/users"

if [[ ${1:-} == --profiles ]]; then
  say "release-profile study"
  python3 scripts/bench/profiles.py
fi

# Last: it builds every function again, for another target (target/aarch64-unknown-linux-gnu).
say "arm64: every function cross-builds for the template's default architecture (./dev arm64)"
./dev arm64 "$OUT/arm64.json" || echo "./dev arm64 failed; see above" >&2

say "report (and the charts in docs/)"
"$VENV/bin/python" scripts/bench/report.py --out-dir "$OUT" --target "$TARGET" --charts docs
