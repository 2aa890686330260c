"""Release-profile study: what lto, codegen-units, strip, panic and opt-level do to the
authorizer's size, its in-process verify time and its cold start (init), beside hello world.

Each variant changes one setting of the committed release profile (lto = "fat",
codegen-units = 1, strip = true, panic = "unwind", opt-level = 3 for the workspace crates and
"s" for dependencies, with argon2, blake2 and ring back at 3) and is built as its own cargo
profile, defined on the command line with `--config` (so Cargo.toml is untouched and every
variant keeps its own folder under target/). Such a profile inherits release's per-package
overrides; a named package's override wins over the variant's `package."*"` setting. Timings are interleaved across variants in one run. Long: about two minutes of build
per variant for the authorizer; `--with token` adds an AWS SDK function's size (much longer).

usage: python3 scripts/bench/profiles.py [--variants base,lto-thin,...] [--with token]
       [--runs 20] [--rounds 5] [--out target/bench/profiles.json] [--build-only | --no-build]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASE = {"lto": '"fat"', "codegen-units": "1", "strip": "true", "panic": '"unwind"', "opt-level": "3",
        'package."*".opt-level': '"s"'}
VARIANTS = {
    "base": {},
    "lto-off": {"lto": '"off"'},
    "lto-thin": {"lto": '"thin"'},
    "cgu16": {"codegen-units": "16"},
    "nostrip": {"strip": "false"},
    "abort": {"panic": '"abort"'},
    "deps-3": {'package."*".opt-level': "3"},  # everything at 3
    "all-s": {"opt-level": '"s"'},  # the workspace crates at "s" too
    "deps-z": {'package."*".opt-level': '"z"'},
}


def profile_name(variant: str) -> str:
    return "study-" + variant


def cargo_config(variant: str) -> list:
    settings = {**BASE, **VARIANTS[variant], "inherits": '"release"'}
    args = []
    for key, value in settings.items():
        args += ["--config", f"profile.{profile_name(variant)}.{key}={value}"]
    return args


def build(variant: str, packages: list) -> None:
    base = ["cargo", "build", "--quiet", "--profile", profile_name(variant), *cargo_config(variant)]
    # Separate builds, as in bench.sh: cargo unifies features across the packages of one build.
    for pkg in packages:
        extra = ["--bin", "hello-lambda", "--bin", "verify-bench"] if pkg == "benchmarks" else []
        print(f"  building {pkg} ({variant})", file=sys.stderr)
        subprocess.run([*base, "-p", pkg, *extra], check=True, cwd=ROOT)


def stripped(binary: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / binary.name
        shutil.copy2(binary, copy)
        subprocess.run(["strip", str(copy)], check=True)
        return copy.stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--with", dest="extra", action="append", default=[])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--out", default=str(ROOT / "target" / "bench" / "profiles.json"))
    parser.add_argument("--build-only", action="store_true", help="build the variants, measure nothing")
    parser.add_argument("--no-build", action="store_true", help="measure variants built before")
    args = parser.parse_args()
    variants = args.variants.split(",")
    target = Path(json.loads(subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"], check=True, capture_output=True,
        text=True, cwd=ROOT).stdout)["target_directory"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    if not args.no_build:
        for v in variants:
            build(v, ["authorizer", "benchmarks", *args.extra])
    if args.build_only:
        return 0
    binary = lambda v, name: target / profile_name(v) / name  # noqa: E731

    results = {v: {"settings": {**BASE, **VARIANTS[v]}} for v in variants}
    for v in variants:
        for name in ["authorizer", "hello-lambda", *args.extra]:
            results[v][f"{name}_bytes"] = binary(v, name).stat().st_size
            results[v][f"{name}_stripped_bytes"] = stripped(binary(v, name))

    # In-process verify time: the authorizer's per-request work, with each variant's code.
    tokens = out.with_name("profile-tokens.txt")
    tokens.write_text(subprocess.run([str(binary(variants[0], "verify-bench")), "mint", "1000"], check=True,
                                     capture_output=True, text=True).stdout)
    verify = {v: [] for v in variants}
    for r in range(args.rounds):
        for v in variants[r % len(variants):] + variants[:r % len(variants)]:
            done = subprocess.run([str(binary(v, "verify-bench")), "verify", str(tokens), str(args.count), "1000"],
                                  check=True, capture_output=True, text=True)
            verify[v].append(json.loads(done.stdout)["ns_per_op"])
    for v in variants:
        results[v]["verify_ns_median"] = statistics.median(verify[v])

    # Init, interleaved across every variant's authorizer and hello world.
    cold = out.with_name("profiles-coldstart.json")
    labels = []
    for v in variants:
        labels += [f"hello@{v}={binary(v, 'hello-lambda')}", f"authorizer@{v}={binary(v, 'authorizer')}"]
    subprocess.run([str(target / "release" / "coldstart"), "--runs", str(args.runs), "--warm", "100",
                    "--events", str(ROOT / "events"), "--logs", str(out.parent / "logs-profiles"),
                    "--out", str(cold), *labels], check=True, cwd=ROOT)
    cold_results = json.loads(cold.read_text())
    for v in variants:
        a, h = cold_results[f"authorizer@{v}"], cold_results[f"hello@{v}"]
        results[v]["authorizer_init_us_median"] = a["init_us"]["median"]
        results[v]["hello_init_us_median"] = h["init_us"]["median"]
        results[v]["authorizer_init_ratio_to_hello"] = a["init_ratio_to_hello"]
        results[v]["authorizer_warm_round_trip_us_median"] = a["warm_round_trip_us"]["median"]
        results[v]["authorizer_peak_rss_kib"] = a["peak_rss_kib_median"]

    out.write_text(json.dumps(results, indent=2))
    base = results.get("base")
    print(f"\n{'variant':<9} {'authorizer':>11} {'stripped':>9} {'hello':>9} {'verify':>9} "
          f"{'init':>9} {'hello init':>10} {'warm RT':>8}" + "".join(f" {e + ' stripped':>15}" for e in args.extra))
    for v in variants:
        r = results[v]
        delta = ""
        if base and v != "base":
            delta = (f"   size {100 * (r['authorizer_stripped_bytes'] / base['authorizer_stripped_bytes'] - 1):+.1f}%"
                     f", verify {100 * (r['verify_ns_median'] / base['verify_ns_median'] - 1):+.1f}%"
                     f", init {100 * (r['authorizer_init_us_median'] / base['authorizer_init_us_median'] - 1):+.1f}%")
        print(f"{v:<9} {r['authorizer_bytes'] / 1e6:>9.2f}MB {r['authorizer_stripped_bytes'] / 1e6:>7.2f}MB "
              f"{r['hello-lambda_stripped_bytes'] / 1e6:>7.2f}MB {r['verify_ns_median']:>7.0f}ns "
              f"{r['authorizer_init_us_median'] / 1e3:>7.2f}ms {r['hello_init_us_median'] / 1e3:>8.2f}ms "
              f"{r['authorizer_warm_round_trip_us_median']:>6.0f}us"
              + "".join(f" {r[e + '_stripped_bytes'] / 1e6:>13.2f}MB" for e in args.extra) + delta)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("CARGO_TERM_COLOR", "never")
    sys.exit(main())
