#!/usr/bin/env bash
# Offline checks of template.yaml, run by `./dev test`; non-zero if any check fails.
#
#   1. cfn-lint template.yaml                      no error and no warning
#   2. sam validate, and sam validate --lint
#   3. the template translated to CloudFormation (scripts/translate_template.py), then cfn-lint
#      on the translation: plain cfn-lint does not expand SAM resources
#   4. checkov on the template and its translation: no failed check (skips carry a reason)
#   5. sam build for x86_64 (the arm64 std library cannot be installed offline), into a
#      temporary folder outside the tree; a bootstrap binary for every function of the template (one per
#      functions/<name>, six today) must exist. It checks that
#      the template's functions build with SAM's cargo-lambda workflow, not what the release
#      profile makes of them (scripts/bench.sh measures that): it builds in SAM's debug mode
#      (SAM_BUILD_MODE=debug, so cargo lambda build without --release) and without debug info,
#      about 3 minutes on 2 cores from nothing and seconds after a small change, where the
#      release profile's fat LTO took 6.5 minutes every time. CHECK_TEMPLATE_RELEASE=1 builds
#      in release instead.
#   6-10. scripts/test_template.py, on the SAM translation: API Gateway logging only with the
#      account's CloudWatch role for every logging choice, the execution log group in the stack
#      and Lambda's REPORT lines kept, a new API deployment when AllowedOrigins changes, the
#      alarms' actions (AlarmTopicArn given or not), the API, stage and functions they watch and
#      METRICS_NAMESPACE on every function; and its self-test (each check fails on a template
#      broken on purpose)
#   (The Rules against the code's settings, routes and preflights, gateway-response CORS, the
#   alarms' metrics against those the code emits and each function's IAM grants are cargo
#   tests: tests/suite/template.rs and iam.rs.)
#   11. openapi.yaml, the HTTP contract, valid OpenAPI (openapi-spec-validator); that it matches
#      the template is tests/suite/openapi.rs, and the running API, scripts/schemathesis.sh
#
# Tools come from the project venv (.dev/venv, filled by ./dev from scripts/requirements-checks.txt).
# No AWS account is used: the region is pinned, credentials are dummies, metadata lookups off.
# CHECK_TEMPLATE_SKIP_BUILD=1 skips step 5 (a first release build takes minutes).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$ROOT/.dev/venv}
TEMPLATE=${TEMPLATE:-template.yaml}

die() { printf 'error: %s\n' "$*" >&2; exit 2; }

export PATH="$VENV/bin:$PATH"
for tool in python cfn-lint sam checkov openapi-spec-validator cargo-lambda cargo; do
  command -v "$tool" >/dev/null ||
    die "$tool not found; run ./dev test once (it installs scripts/requirements-checks.txt into .dev/venv)"
done

# Offline and hermetic: never a real account, never a network lookup that can be avoided.
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_PROFILE
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=offline-check AWS_SECRET_ACCESS_KEY=offline-check
export AWS_EC2_METADATA_DISABLED=true SAM_CLI_TELEMETRY=0
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

WORK=$(mktemp -d "${TMPDIR:-/tmp}/check-template.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
TRANSLATED="$WORK/translated.json"

cd "$ROOT" || die "cannot enter $ROOT"

declare -a RESULTS=()
FAILED=0

# check NAME CMD...: runs CMD, prints its output under a header, records pass or fail.
check() {
  local name=$1 start=$SECONDS status=0
  shift
  printf '\n==> %s\n' "$name"
  "$@" || status=$?
  local took=$((SECONDS - start))
  if ((status == 0)); then
    RESULTS+=("ok    ${took}s  $name")
  else
    RESULTS+=("FAIL  ${took}s  $name (exit $status)")
    FAILED=1
  fi
}

# cfn-lint prints nothing when it finds nothing; say so.
lint() {
  cfn-lint "$@" && echo "cfn-lint: no errors or warnings"
}

translate_and_lint() {
  python scripts/translate_template.py --template "$TEMPLATE" --output "$TRANSLATED" || return
  # W2001 "parameter not used": the translator resolves some parameters into the API
  # definition (ReauthorizeEvery), so they look unused here; step 1 catches real ones.
  lint --ignore-checks W2001 -- "$TRANSLATED"
}

run_checkov() {
  [[ -s "$TRANSLATED" ]] || { echo "no translated template (step 3 failed)"; return 1; }
  # --skip-download: no call to the vendor's platform for guidelines or policies.
  checkov --framework cloudformation --skip-download --compact --quiet \
    -f "$TEMPLATE" -f "$TRANSLATED"
}

sam_build() {
  local build_dir="$WORK/sam-build" functions logical_id missing=0
  # Built in source (the rust-cargolambda workflow only does that) into the workspace's
  # target/, shared with earlier runs; artifacts go outside the tree, where `cargo lambda
  # watch` does not see them. No sam cache: it would checksum target/ (gigabytes).
  local mode=(env SAM_BUILD_MODE=debug CARGO_PROFILE_DEV_DEBUG=0)
  [[ -z "${CHECK_TEMPLATE_RELEASE:-}" ]] || mode=(env)
  "${mode[@]}" sam build --template-file "$TEMPLATE" --region us-east-1 \
    --parameter-overrides Architecture=x86_64 \
    --build-dir "$build_dir" --cache-dir "$WORK/sam-cache" --no-cached --parallel || return
  functions=$(python - "$TEMPLATE" <<'EOF'
import sys
sys.path.insert(0, "scripts")
import translate_template
resources = translate_template.load_template(sys.argv[1])["Resources"]
print(" ".join(name for name, r in resources.items()
               if r.get("Metadata", {}).get("BuildMethod") == "rust-cargolambda"))
EOF
  ) || return
  local expected
  expected=$(find functions -mindepth 2 -maxdepth 2 -name Cargo.toml | wc -l)
  for logical_id in $functions; do
    local binary="$build_dir/$logical_id/bootstrap"
    if [[ -x "$binary" ]] && [[ $(head -c 4 "$binary" | od -An -c | tr -d ' ') == '177ELF' ]]; then
      printf '  %-20s bootstrap %s bytes\n' "$logical_id" "$(wc -c <"$binary")"
    else
      printf '  %-20s missing or not an executable ELF: %s\n' "$logical_id" "$binary"
      missing=1
    fi
  done
  if (($(wc -w <<<"$functions") != expected)); then
    echo "  $(wc -w <<<"$functions") functions in $TEMPLATE, $expected crates under functions/"
    missing=1
  fi
  return "$missing"
}

check "cfn-lint $TEMPLATE" lint -- "$TEMPLATE"
check "sam validate" sam validate --template-file "$TEMPLATE" --region us-east-1
check "sam validate --lint" sam validate --lint --template-file "$TEMPLATE" --region us-east-1
check "translate (aws-sam-translator) + cfn-lint" translate_and_lint
check "checkov" run_checkov
if [[ -n "${CHECK_TEMPLATE_SKIP_BUILD:-}" ]]; then
  RESULTS+=("skip  0s  sam build (CHECK_TEMPLATE_SKIP_BUILD set)")
else
  check "sam build (x86_64)" sam_build
fi

check "API logging only with the account role (test_template.py logging)" \
  python scripts/test_template.py --template "$TEMPLATE" logging
check "execution logs in the stack, REPORT lines kept (test_template.py execution-logs)" \
  python scripts/test_template.py --template "$TEMPLATE" execution-logs
check "new API deployment when AllowedOrigins changes (test_template.py redeploy)" \
  python scripts/test_template.py --template "$TEMPLATE" redeploy
check "alarms notify AlarmTopicArn only when given, watch the stack (test_template.py alarms)" \
  python scripts/test_template.py --template "$TEMPLATE" alarms
check "each template check catches its breakage (test_template.py --self-test)" \
  python scripts/test_template.py --template "$TEMPLATE" --self-test

check "openapi.yaml is valid OpenAPI 3.0 (openapi-spec-validator)" \
  openapi-spec-validator openapi.yaml

printf '\n==> template checks\n'
printf '  %s\n' "${RESULTS[@]}"
exit "$FAILED"
