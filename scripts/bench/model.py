"""What one ./scripts/bench.sh run means on AWS, for scripts/bench/report.py: the round trips of
every route (openapi.yaml's `x-round-trips`), a latency model per route, a monthly cost model
beside Amazon Cognito and Auth0, the token function's memory, the Markdown tables of all of it
and the charts under docs/.

Every figure not measured in the run is a named constant below with its source, or marked
"assumed". The prices are AWS's published us-east-1 list prices (and Auth0's) as we know them:
this machine cannot reach those pages, so check each against its URL before quoting it. Free
tiers are left out throughout.
"""

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")

# Lambda gives a function CPU in proportion to its memory: one full vCPU at 1769 MB.
FULL_VCPU_MB = 1769
LAMBDA_MEMORY_URL = "https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html"
# DynamoDB documents "single-digit millisecond" performance and no figure per operation; a round
# trip within the region is assumed to take ROUND_TRIP_MS, and ROUND_TRIP_BOUND_MS is the most a
# single digit allows. Transactions are not documented apart and may take longer.
ROUND_TRIP_MS = 5.0
ROUND_TRIP_BOUND_MS = 9.0
DYNAMODB_URLS = ("https://aws.amazon.com/dynamodb/",
                 "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Introduction.html")
# A route's load p50 stands in for its CPU only with this many requests in the run: fewer are
# mostly the instances' first requests (the load's few sign-ups are each client's first call).
MIN_LOAD_SAMPLES = 30
MAU_STEPS = (10_000, 100_000, 1_000_000)


@dataclass(frozen=True)
class Price:
    """A list price: USD per unit, the words its page uses, and the page."""

    usd: float  # per unit
    shown: str  # as the page states it
    url: str


LAMBDA_PRICING = "https://aws.amazon.com/lambda/pricing/"
DYNAMODB_PRICING = "https://aws.amazon.com/dynamodb/pricing/on-demand/"
PRICES = {
    # x86_64's price is the one BENCHMARKS.md quoted; the template's default is arm64.
    "lambda_gb_s_arm64": Price(0.0000133334, "$0.0000133334 per GB-second (arm64)", LAMBDA_PRICING),
    "lambda_gb_s_x86_64": Price(0.0000166667, "$0.0000166667 per GB-second (x86_64)", LAMBDA_PRICING),
    "lambda_request": Price(0.20e-6, "$0.20 per 1M requests", LAMBDA_PRICING),
    "api_request": Price(3.50e-6, "$3.50 per million REST API requests (the first 333 million a month)",
                         "https://aws.amazon.com/api-gateway/pricing/"),
    "dynamodb_wru": Price(0.625e-6, "$0.625 per million write request units (on-demand)", DYNAMODB_PRICING),
    "dynamodb_rru": Price(0.125e-6, "$0.125 per million read request units (on-demand)", DYNAMODB_PRICING),
    "dynamodb_gb_month": Price(0.25, "$0.25 per GB-month of table storage", DYNAMODB_PRICING),
    "secret_month": Price(0.40, "$0.40 per secret per month", "https://aws.amazon.com/secrets-manager/pricing/"),
    "secret_call": Price(0.05 / 10_000, "$0.05 per 10,000 API calls", "https://aws.amazon.com/secrets-manager/pricing/"),
    "email": Price(0.10 / 1000, "$0.10 per 1,000 emails", "https://aws.amazon.com/ses/pricing/"),
    "log_gb": Price(0.50, "$0.50 per GB of logs ingested", "https://aws.amazon.com/cloudwatch/pricing/"),
}
# The secrets the stack keeps (KeySetSecret, MfaKeySecret); the token function reads both once
# per execution environment.
SECRETS = 2

COGNITO_PRICING = "https://aws.amazon.com/cognito/pricing/"
# User pools, prices since 2024-11-22: (up to this many MAU, USD per MAU in the tier). Above the
# last tier no list price is given here.
COGNITO_TIERS = {
    "Lite": ((10_000, 0.0), (100_000, 0.0055), (1_000_000, 0.0046), (10_000_000, 0.00325)),
    # Passkeys and the managed login need Essentials.
    "Essentials": ((10_000, 0.0), (10_000_000, 0.015)),
}
# AWS publishes no latency figure for Cognito that we know of; its request-rate quotas, default
# per account and Region, in requests per second (from the guide's archived source,
# awsdocs/amazon-cognito-developer-guide doc_source/limits.md: check the current page).
COGNITO_QUOTAS_URL = "https://docs.aws.amazon.com/cognito/latest/developerguide/quotas.html"
COGNITO_QUOTAS_RPS = {
    "UserAuthentication (sign-in; adjustable)": 120,
    "UserCreation (sign-up; adjustable)": 50,
    "UserAccountRecovery (forgotten password; fixed)": 30,
    "UserToken (token operations; fixed)": 120,
}
AUTH0_PRICING = "https://auth0.com/pricing"
AUTH0_FREE_MAU = 25_000
# Auth0's published starting points: (plan, MAU, USD a month). Other points of its slider are not
# recorded here, and above the slider's range the price is "contact sales".
AUTH0_PLANS = (("B2C Essentials", 500, 35.0), ("Professional", 1_000, 240.0))

# DynamoDB request units of one successful request, estimated from shared/src/store/dynamodb.rs
# (to be checked against ReturnConsumedCapacity): a strongly consistent read of an item up to
# 4 KB is 1 RRU, a Query of the UserLists index (eventually consistent) 0.5 per 4 KB; a write of
# an item up to 1 KB is 1 WRU, 2 within a transaction (a ConditionCheck too), and each index
# entry that a write adds, changes or removes 1 WRU more (ByUser: items with user_id; UserLists:
# sessions and events).
DYNAMODB_UNITS = {  # route: (RRU, WRU); the requests are the ones tests/src/round_trips.rs counts
    # the address's sign-up count (UpdateItem); the user's conditional PutItem + its ByUser entry
    "POST /users": (0, 3),
    # the user (GetItem); both reservations and, after the hash, their clearing (4 x UpdateItem or
    # DeleteItem); session, refresh token and event in one transaction (3 puts x 2) + 5 index
    # entries (ByUser: 3, UserLists: session and event)
    "POST /token": (1, 15),
    # the token (GetItem); mark used, successor, session touched, user checked (4 x 2) + 2 entries
    "POST /token/refresh": (1, 10),
    # the user, projected, and the session (2 x GetItem: capacity is by item size, not projection)
    "GET /protected": (2, 0),
    "GET /sessions": (2.5, 0),  # the caller (2 x GetItem) and one page of UserLists (Query)
    "GET /me/events": (2.5, 0),  # the same
    "GET /mfa": (2, 0),  # the caller (2 x GetItem)
    # the session's refresh token (GetItem); revocation + event (2 x 2) + 3 index entries
    "POST /logout": (1, 7),
    # the caller (2 x GetItem); revocation + event (2 x 2) + 3 index entries
    "DELETE /sessions/{id}": (2, 7),
    "POST /password/forgot": (1, 5),  # mail counter; the user; reset token + user's newest: 2 x 2
    "POST /password/reset": (1, 6),  # the reset token; password set, token deleted, sessions ended: 3 x 2
    "GET /.well-known/jwks.json": (0, 0),
}
EMAILS = {"POST /password/forgot": 1}


@dataclass(frozen=True)
class Cpu:
    """Where a route's CPU time comes from, best first: `whole`, measurements of the whole
    handler's own work (the login on a store that answers at once; a refresh and the protected route
    on the emulator less their store calls made beside them); else the load's p50 less the local
    path's own time (LOCAL_PATH) and the route's sequential round trips at the emulator's round
    trip, never below `floor`, the in-process measurement of its dominant part; else `floor`
    alone."""

    whole: tuple[str, ...] = ()
    floor: str | None = None


LOGIN_PAIRS = "login pairs"  # login-ratio.json: the pinned, interleaved login medians
REFRESH_BEYOND = "refresh beyond its store calls"  # store-ratio.json: refresh less its floor
PROTECTED_BEYOND = "protected beyond its reads"  # store-ratio.json: protected less its two reads
CPU = {
    "POST /users": Cpu(floor="password/hash_owasp"),
    "POST /token": Cpu(whole=(LOGIN_PAIRS, "login/token_handle_owasp"), floor="password/verify_owasp"),
    # The in-process benches of these two run on the embedded emulator since the store has one
    # implementation: what the handler adds is taken from the store bench's pairs instead (the
    # handler on the emulator less its store calls made directly, side by side).
    "POST /token/refresh": Cpu(whole=(REFRESH_BEYOND,), floor="token/issue"),
    "GET /protected": Cpu(whole=(PROTECTED_BEYOND,), floor="token/verify"),
    "GET /sessions": Cpu(),
    "DELETE /sessions/{id}": Cpu(),
    "GET /me/events": Cpu(),
    "POST /password/forgot": Cpu(),
    "POST /password/reset": Cpu(floor="password/hash_owasp"),
    "GET /.well-known/jwks.json": Cpu(),
}
AUTHORIZER_CPU = "authorizer/invoke_json"
# The local path's own time (the client, the local API, cargo lambda watch, queueing behind other
# requests on one core) per function: a route's load p50 less the same handler's median on the
# emulator without that path (store-ratio.json). A function without one takes the smallest.
LOCAL_PATH = {"token": ("POST /token/refresh", "refresh_median_ms"),
              "protected": ("GET /protected", "protected_median_ms")}
LABELS = {"POST /users": "sign-up", "POST /token": "login", "POST /token/refresh": "refresh"}


@dataclass(frozen=True)
class Profile:
    """What one monthly active user does in a month (assumed, not measured)."""

    visits: float = 20  # days the app is opened
    visit_minutes: float = 10  # of use each time
    logins: float = 8  # the other visits start with a refresh: the access token has expired since
    protected_calls: float = 300  # the app's API calls behind the authorizer, 15 a visit
    sign_ups: float = 0.10  # a tenth of a month's active users are new
    password_resets: float = 0.02  # each a forgot (one email) and a reset
    # A user, its sessions and refresh tokens of the last 30 days (SessionAbsoluteSeconds) and
    # its events of the last 90 (SecurityEventRetentionDays): 1 + 8 + 20 + 30 items.
    stored_items: float = 60
    item_bytes: float = 500  # an item with its index entries and DynamoDB's 100 bytes per item
    token_starts_per_1000: float = 1  # token execution environments started per 1000 invocations


# ------------------------------------------------------------------------------------- inputs


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads CloudFormation's short forms (`!Ref X`, `!Sub ...`) as their long forms."""


def _intrinsic(loader, suffix, node):
    """`!Ref X` as {"Ref": "X"}, `!GetAtt A.B` as {"Fn::GetAtt": "A.B"}, and alike."""
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def read_yaml(path: Path) -> dict:
    """A YAML file; CloudFormation's short forms are read as `{"Fn::Sub": ...}` and alike."""
    return yaml.load(path.read_text(), Loader=_CloudFormationLoader)


@dataclass(frozen=True)
class Stack:
    """What template.yaml says the model needs."""

    memory_mb: dict  # function (its binary's name) -> MemorySize
    function_of: dict  # "POST /token" -> "token"
    parameters: dict  # parameter -> its default
    architecture: str
    access_log_format: str | None


def read_stack(template: dict) -> Stack:
    """Each function's MemorySize and API routes, the parameters' defaults and the access log's format."""
    memory, function_of = {}, {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        name = resource["Metadata"]["BuildProperties"]["Binary"]
        props = resource["Properties"]
        memory[name] = props.get("MemorySize", 128)  # Lambda's default
        for event in props.get("Events", {}).values():
            if event["Type"] == "Api":
                function_of[f"{event['Properties']['Method'].upper()} {event['Properties']['Path']}"] = name
    parameters = {name: p.get("Default") for name, p in template["Parameters"].items()}
    api = next(r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Api")
    setting = api["Properties"].get("AccessLogSetting", {})
    chosen = setting.get("Fn::If", [None, setting])[1]  # logged unless ApiGatewayLogging=off
    return Stack(memory, function_of, parameters, parameters["Architecture"], chosen.get("Format"))


def operations(openapi: dict) -> dict:
    """Every operation as {"POST /token": {"operation_id": ..., "round_trips": x-round-trips or None}}."""
    found = {}
    for path, item in openapi["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                op = item[method]
                found[f"{method.upper()} {path}"] = {"operation_id": op.get("operationId"),
                                                     "round_trips": op.get("x-round-trips")}
    return found


def missing_round_trips(ops: dict) -> str:
    """The operations without x-round-trips, preflights counted together; "" when none is."""
    missing = [route for route, op in ops.items() if op["round_trips"] is None]
    preflights = [r for r in missing if r.startswith("OPTIONS ")]
    others = [r for r in missing if not r.startswith("OPTIONS ")]
    parts = others[:8] + ([f"... {len(others) - 8} more"] if len(others) > 8 else [])
    if preflights:
        parts.append(f"{len(preflights)} preflights (one x-round-trips in x-preflight covers them)")
    return ", ".join(parts)


def criterion_medians_ns(target: Path) -> dict:
    """{"group/bench": criterion's median in ns} for every benchmark of the run under TARGET/criterion."""
    medians = {}
    for estimates in sorted((target / "criterion").glob("*/*/new/estimates.json")):
        bench = estimates.parent.parent
        medians[f"{bench.parent.name}/{bench.name}"] = json.loads(estimates.read_text())["median"]["point_estimate"]
    return medians


# ------------------------------------------------------------------------------------ latency


def local_path_ms(store, load_routes: dict) -> dict:
    """{function: the local path's milliseconds} where the run measured it (see LOCAL_PATH)."""
    found = {}
    for function, (route, key) in LOCAL_PATH.items():
        row = load_routes.get(route)
        if store and row and row["requests"] >= MIN_LOAD_SAMPLES:
            found[function] = row["p50_ms"] - store[key]
    return found


def _cpu_here(route: str, measured: dict, load_routes: dict, getitem_ms, sequential, path) -> tuple:
    """(milliseconds or None, how they were obtained) for `route` (see Cpu); `path` is the local
    path's (function, milliseconds) to take off a load p50, or None."""
    spec = CPU.get(route, Cpu())
    for name in spec.whole:
        if name in measured:
            return measured[name], f"in process: {name}"
    floor = measured.get(spec.floor) if spec.floor else None
    row = load_routes.get(route)
    if row and row["requests"] >= MIN_LOAD_SAMPLES and getitem_ms is not None and sequential is not None:
        less = f"{sequential} x the emulator's round trip"
        if path:
            less = f"the local path ({path[1]:.1f} ms, {path[0]}'s) and {less}"
        estimate = row["p50_ms"] - (path[1] if path else 0.0) - sequential * getitem_ms
        how = f"load p50 less {less}"
        if floor is not None and estimate < floor:
            return floor, f"{how}, floored at {spec.floor}"
        if estimate <= 0:
            return None, f"{how}: nothing left, too small to tell"
        return estimate, how
    if floor is not None:
        return floor, f"{spec.floor} (its dominant part) alone"
    return None, "not measured"


def _scale(memory_mb: int) -> float:
    """How much slower CPU-bound work runs at `memory_mb` than on one full vCPU."""
    return max(1.0, FULL_VCPU_MB / memory_mb)


def latency_model(ops: dict, stack: Stack, criterion_ns: dict, login, store, load) -> dict:
    """Expected p50 on Lambda per modelled route: CPU (scaled below 1769 MB) + sequential round
    trips x DynamoDB's latency, at ROUND_TRIP_MS and at ROUND_TRIP_BOUND_MS."""
    measured = {name: ns / 1e6 for name, ns in criterion_ns.items()}
    if login:
        measured[LOGIN_PAIRS] = login["login_median_ms"]
    if store:
        for name, key in [(REFRESH_BEYOND, "refresh"), (PROTECTED_BEYOND, "protected")]:
            beyond = store[f"{key}_median_ms"] - store[f"{key}_floor_median_ms"]
            if beyond > 0:
                measured[name] = beyond
    getitem_ms = store["protected_floor_median_ms"] if store else None
    load_routes = load["load"]["routes"] if load else {}
    paths = local_path_ms(store, load_routes)
    rows = []
    for route in [*CPU, *sorted(r for r in load_routes if r not in CPU)]:
        op = ops.get(route)
        trips = op["round_trips"] if op else None
        sequential = trips["sequential"] if trips else None
        function = stack.function_of.get(route)
        memory = stack.memory_mb.get(function)
        own = function if function in paths else min(paths, key=paths.get, default=None)
        path = (own, paths[own]) if own else None
        cpu, basis = _cpu_here(route, measured, load_routes, getitem_ms, sequential, path)
        scale = _scale(memory) if memory else None
        cpu_lambda = cpu * scale if cpu is not None and scale else None
        rows.append({
            "route": route,
            "in_openapi": op is not None,
            "function": function,
            "memory_mb": memory,
            "cpu_ms_here": cpu,
            "cpu_basis": basis,
            "cpu_scale": scale,
            "cpu_ms_lambda": cpu_lambda,
            "sequential": sequential,
            "requests": trips["requests"] if trips else None,
            "p50_ms": None if sequential is None else
            {str(rt): (cpu_lambda or 0.0) + sequential * rt for rt in (ROUND_TRIP_MS, ROUND_TRIP_BOUND_MS)},
            "p50_is_lower_bound": cpu_lambda is None,
            "load_p50_ms": load_routes[route]["p50_ms"] if route in load_routes else None,
        })
    authorizer_ms = measured.get(AUTHORIZER_CPU)
    memory = stack.memory_mb.get("authorizer")
    return {
        "round_trip_ms": ROUND_TRIP_MS,
        "round_trip_bound_ms": ROUND_TRIP_BOUND_MS,
        "emulator_getitem_ms": getitem_ms,
        "local_path_ms": paths,
        "routes": rows,
        "authorizer": {
            "memory_mb": memory,
            "cpu_ms_here": authorizer_ms,
            "cpu_ms_lambda": None if authorizer_ms is None else authorizer_ms * _scale(memory),
        },
    }


def duration_ms(row: dict, memory_mb: int, round_trip_ms: float) -> float:
    """A route's modelled duration at `memory_mb` (its CPU counted as 0 where not measured)."""
    return (row["cpu_ms_here"] or 0.0) * _scale(memory_mb) + (row["sequential"] or 0) * round_trip_ms


def _billed_gb_s(memory_mb: int, ms: float) -> float:
    """Lambda bills whole milliseconds, at least one, of memory in GB (MB / 1024)."""
    return memory_mb / 1024 * max(1, math.ceil(ms)) / 1000


# --------------------------------------------------------------------------------------- cost


def usage(profile: Profile, stack: Stack) -> dict:
    """Requests per MAU per month by route, and the authorizer's invocations: API Gateway caches
    its Allow per token for AuthorizerCacheSeconds, so a visit invokes it once per cache period,
    and once more per access token refreshed within the visit."""
    visit_s = profile.visit_minutes * 60
    ttl_s = int(stack.parameters["AccessTokenTtlSeconds"])
    cache_s = int(stack.parameters["AuthorizerCacheSeconds"])
    in_visit_refreshes = math.floor(visit_s / ttl_s)
    calls_per_visit = profile.protected_calls / profile.visits
    per_visit = math.ceil(visit_s / cache_s) + in_visit_refreshes if cache_s else calls_per_visit
    return {
        "requests": {
            "POST /users": profile.sign_ups,
            "POST /token": profile.logins,
            "POST /token/refresh": max(0.0, profile.visits - profile.logins) + profile.visits * in_visit_refreshes,
            "GET /protected": profile.protected_calls,
            "POST /password/forgot": profile.password_resets,
            "POST /password/reset": profile.password_resets,
        },
        "authorizer": profile.visits * min(per_visit, calls_per_visit),
        "access_token_ttl_s": ttl_s,
        "authorizer_cache_s": cache_s,
    }


# Lambda's START and REPORT lines in the JSON log format (SystemLogLevel INFO), in the shape AWS
# documents, with a request id and typical values: what each invocation adds to its function's
# log (assumed; no AWS log is read here).
_REQUEST_ID = "8f5e2b9c-1d3a-4e6f-9a7b-0c2d4e6f8a1b"
PLATFORM_LINES = (
    '{"time":"2026-12-01T12:00:00.000Z","type":"platform.start","record":{"requestId":"' + _REQUEST_ID
    + '","version":"$LATEST"}}\n',
    '{"time":"2026-12-01T12:00:00.012Z","type":"platform.report","record":{"requestId":"' + _REQUEST_ID
    + '","metrics":{"durationMs":11.52,"billedDurationMs":12,"memorySizeMB":1769,"maxMemoryUsedMB":124},'
    '"status":"success"}}\n',
)
# Typical lengths of the access log's $context values (assumed); any other value: 10 bytes.
ACCESS_LOG_VALUE_BYTES = {
    "requestId": 36, "identity.sourceIp": 13, "requestTime": 26, "httpMethod": 4, "resourcePath": 14,
    "status": 3, "responseLength": 3, "responseLatency": 2, "integrationLatency": 2, "integration.status": 3,
    "authorizer.principalId": 36, "authorizer.status": 3, "authorizer.error": 0, "error.message": 0,
    "identity.userAgent": 70,
}
# The functions' own log bytes per invocation when the run left no log to measure (assumed).
ASSUMED_FUNCTION_LOG_BYTES = 200


def log_bytes(stack: Stack, functions_log: Path, load) -> dict:
    """Bytes written to CloudWatch Logs per Lambda invocation and per API request."""
    if functions_log.exists() and load:
        # Lines of failures (the slow phase's 503s) are left out: the success path is modelled.
        kept = [line for line in functions_log.read_bytes().splitlines(keepends=True)
                if b"ERROR" not in line and b"WARN" not in line]
        own = sum(map(len, kept)) / load["load"]["requests"]
        how = (f"measured: {functions_log.name}, all but its WARN and ERROR lines, cargo lambda watch's own "
               f"included, over the load's {load['load']['requests']} requests; local text format")
    else:
        own, how = ASSUMED_FUNCTION_LOG_BYTES, "assumed: no functions' log in this run"
    access = 0
    if stack.access_log_format:
        access = len(re.sub(r"\$context\.([A-Za-z.]+)", lambda m: "x" * ACCESS_LOG_VALUE_BYTES.get(m[1], 10),
                            stack.access_log_format)) + 1
    platform = sum(map(len, PLATFORM_LINES))
    return {"function_bytes": own, "function_bytes_how": how, "platform_bytes": platform,
            "per_invocation": own + platform, "access_log_per_request": access}


def _tiered(mau: float, tiers) -> float | None:
    """USD a month for `mau` on graduated per-MAU tiers; None above the last tier."""
    if mau > tiers[-1][0]:
        return None
    total, lower = 0.0, 0
    for upper, usd in tiers:
        total += max(0.0, min(mau, upper) - lower) * usd
        lower = upper
    return total


def cognito_cost(mau: float) -> dict:
    return {tier: _tiered(mau, tiers) for tier, tiers in COGNITO_TIERS.items()}


def cost_per_mau(latency: dict, stack: Stack, profile: Profile, logs: dict) -> dict:
    """USD per MAU per month by component, for all routes and for GET /protected alone (the
    app's own calls, which an app on Cognito pays for too), and USD a month that MAU do not move."""
    use = usage(profile, stack)
    rows = {row["route"]: row for row in latency["routes"]}
    gb_s = PRICES[f"lambda_gb_s_{stack.architecture}"].usd
    total, protected = {}, {}

    def add(component: str, usd: float, route: str | None) -> None:
        total[component] = total.get(component, 0.0) + usd
        if route == "GET /protected":
            protected[component] = protected.get(component, 0.0) + usd

    lower_bounds = []
    for route, count in use["requests"].items():
        row = rows[route]
        memory = row["memory_mb"]
        if row["cpu_ms_here"] is None or row["sequential"] is None:
            lower_bounds.append(route)
        rru, wru = DYNAMODB_UNITS[route]
        add("API Gateway requests", count * PRICES["api_request"].usd, route)
        add("Lambda requests", count * PRICES["lambda_request"].usd, route)
        add("Lambda duration", count * _billed_gb_s(memory, duration_ms(row, memory, ROUND_TRIP_MS)) * gb_s, route)
        add("DynamoDB reads", count * rru * PRICES["dynamodb_rru"].usd, route)
        add("DynamoDB writes", count * wru * PRICES["dynamodb_wru"].usd, route)
        add("SES emails", count * EMAILS.get(route, 0) * PRICES["email"].usd, route)
        add("CloudWatch Logs ingestion", count * (logs["per_invocation"] + logs["access_log_per_request"])
            / 2**30 * PRICES["log_gb"].usd, route)
    authorizer = latency["authorizer"]
    add("Lambda requests", use["authorizer"] * PRICES["lambda_request"].usd, None)
    add("Lambda duration", use["authorizer"] * gb_s
        * _billed_gb_s(authorizer["memory_mb"], authorizer["cpu_ms_lambda"] or 0.0), None)
    add("CloudWatch Logs ingestion", use["authorizer"] * logs["per_invocation"] / 2**30 * PRICES["log_gb"].usd, None)
    add("DynamoDB storage", profile.stored_items * profile.item_bytes / 2**30 * PRICES["dynamodb_gb_month"].usd, None)
    token_invocations = sum(n for r, n in use["requests"].items() if stack.function_of.get(r) == "token")
    add("Secrets Manager calls", token_invocations * profile.token_starts_per_1000 / 1000 * SECRETS
        * PRICES["secret_call"].usd, None)
    return {"usage": use, "per_mau": total, "protected_per_mau": protected,
            "fixed": {"Secrets Manager secrets": SECRETS * PRICES["secret_month"].usd},
            "lower_bounds": lower_bounds}


def monthly(cost: dict, mau: float) -> dict:
    """USD a month at `mau`: this service (all of it, and without GET /protected's own costs),
    Cognito's tiers, and Auth0's free plan where it applies."""
    service = sum(cost["per_mau"].values()) * mau + sum(cost["fixed"].values())
    return {
        "service": service,
        "service_auth_only": service - sum(cost["protected_per_mau"].values()) * mau,
        "cognito": cognito_cost(mau),
        "auth0_free": 0.0 if mau <= AUTH0_FREE_MAU else None,
    }


# ------------------------------------------------------------------------------------- memory


def memory_study(latency: dict, stack: Stack, sizes=(256, 512, 1024, FULL_VCPU_MB)) -> dict:
    """A login and a refresh at several memory sizes: duration, billed GB-s and Lambda's USD per
    million (duration and request fee), and whether refreshes would pay for a function of their own."""
    rows = {row["route"]: row for row in latency["routes"]}
    gb_s = PRICES[f"lambda_gb_s_{stack.architecture}"].usd
    table = []
    for route in ("POST /token", "POST /token/refresh"):
        for mb in sizes:
            ms = duration_ms(rows[route], mb, ROUND_TRIP_MS)
            billed = _billed_gb_s(mb, ms)
            table.append({"route": route, "memory_mb": mb, "ms": ms, "gb_s": billed,
                          "usd_per_million": 1e6 * (billed * gb_s + PRICES["lambda_request"].usd)})
    token_mb = stack.memory_mb["token"]
    login = rows["POST /token"]
    # A login's GB-s: its CPU part is the same at any size up to one vCPU; its wait is not.
    login_split = {mb: {"cpu_gb_s": mb / 1024 * (login["cpu_ms_here"] or 0.0) * _scale(mb) / 1000,
                        "wait_gb_s": mb / 1024 * (login["sequential"] or 0) * ROUND_TRIP_MS / 1000}
                   for mb in (256, token_mb)}
    refresh = rows["POST /token/refresh"]
    at = {mb: 1e6 * _billed_gb_s(mb, duration_ms(refresh, mb, ROUND_TRIP_MS)) * gb_s for mb in (token_mb, 256)}
    rru, wru = DYNAMODB_UNITS["POST /token/refresh"]
    whole = 1e6 * (PRICES["api_request"].usd + PRICES["lambda_request"].usd + rru * PRICES["dynamodb_rru"].usd
                   + wru * PRICES["dynamodb_wru"].usd) + at[token_mb]
    saving = at[token_mb] - at[256]
    return {"rows": table, "token_memory_mb": token_mb, "login_gb_s": login_split,
            "refresh_usd_per_million_duration": at, "refresh_saving_per_million": saving,
            "refresh_whole_usd_per_million": whole, "separate_function_pays": saving > 0.10 * whole}


# ----------------------------------------------------------------------------------- Markdown


def _ms(value) -> str:
    if value is None:
        return "—"
    return f"{value * 1000:.0f} µs" if value < 1 else f"{value:.1f} ms"


def _usd(value) -> str:
    if value is None:
        return "not published"
    return f"${value:,.0f}" if value >= 100 else f"${value:,.2f}"


def _route(route: str) -> str:
    return f"`{route}`" + (f" ({LABELS[route]})" if route in LABELS else "")


def latency_markdown(latency: dict) -> str:
    rt, bound = latency["round_trip_ms"], latency["round_trip_bound_ms"]
    lines = [
        "### Latency on AWS, modelled per route",
        "",
        (f"p50 on Lambda = CPU measured here, times {FULL_VCPU_MB} / MemorySize below {FULL_VCPU_MB} MB "
         f"(one full vCPU at {FULL_VCPU_MB} MB: {LAMBDA_MEMORY_URL}), + sequential DynamoDB round trips "
         f"(`x-round-trips` in openapi.yaml) x {rt:g} ms, assumed, and x {bound:g} ms, the most that "
         f"DynamoDB's documented \"single-digit millisecond\" performance allows ({', '.join(DYNAMODB_URLS)})."),
        "",
        ("| route | function | CPU here | how | on Lambda | round trips (sequential / sent) "
         f"| p50 at {rt:g} ms a trip | at {bound:g} ms | load p50 here |"),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in latency["routes"]:
        if r["sequential"] is None:
            trips = "x-round-trips missing" if r["in_openapi"] else "not in openapi.yaml"
            p50 = ["—", "—"]
        else:
            trips = f"{r['sequential']} / {r['requests']}"
            mark = "≥ " if r["p50_is_lower_bound"] else ""
            p50 = [f"{mark}{r['p50_ms'][str(x)]:.1f} ms" for x in (rt, bound)]
        function = f"{r['function']}, {r['memory_mb']} MB" if r["function"] else "—"
        on_lambda = "—" if r["cpu_ms_lambda"] is None else f"{_ms(r['cpu_ms_lambda'])} (x{r['cpu_scale']:.2f})"
        load = "—" if r["load_p50_ms"] is None else f"{r['load_p50_ms']:.1f} ms"
        lines.append(f"| {_route(r['route'])} | {function} | {_ms(r['cpu_ms_here'])} | {r['cpu_basis']} | "
                     f"{on_lambda} | {trips} | {p50[0]} | {p50[1]} | {load} |")
    a = latency["authorizer"]
    if a["cpu_ms_here"] is not None:
        lines.append(f"| authorizer, per uncached token | authorizer, {a['memory_mb']} MB | {_ms(a['cpu_ms_here'])} | "
                     f"in process: {AUTHORIZER_CPU} | {_ms(a['cpu_ms_lambda'])} | 0 / 0 | "
                     f"{a['cpu_ms_lambda']:.1f} ms | {a['cpu_ms_lambda']:.1f} ms | — |")
    lines.append("| Amazon Cognito token endpoint | — | — | — | — | — | no published latency figure | — | — |")
    getitem = latency["emulator_getitem_ms"]
    lines += [
        "",
        ("- CPU here: the handler's own work, measured side by side: the pinned login pairs (a store that "
         "answers at once), a refresh and `GET /protected` on the emulator less their store calls made beside "
         "them (store-ratio.json), criterion medians for the authorizer and argon2; a route without one "
         "takes its load p50 less the local path's own time and its sequential round trips x the emulator's "
         f"round trip (two reads at once: {_ms(getitem) if getitem is not None else 'not measured'}, "
         "store-ratio.json), never "
         f"below the in-process figure of its dominant part, and only with {MIN_LOAD_SAMPLES} or more "
         "requests in the load (fewer are mostly the instances' first requests); else that dominant part "
         "alone. \"≥\": CPU not measured or too small to tell, round trips only."),
        "- The local path (the client, the local API, cargo lambda watch, queueing behind other requests on "
        "one core) is a route's load p50 less the same handler's median on the emulator (store-ratio.json): "
        + (", ".join(f"{f} {ms:.1f} ms (from `{LOCAL_PATH[f][0]}`)" for f, ms in latency["local_path_ms"].items())
           or "not measured in this run")
        + "; a function without its own takes the smallest. Load-derived figures stay rough: the "
        "emulator's transactions take longer than its GetItem, and the queueing differs between functions.",
        ("- `GET /protected` is measured as deployed, behind the authorizer: it reads the verdict and "
         "verifies no signature. A request whose token is not in API Gateway's authorizer cache also waits "
         "for the authorizer (the row above)."),
        ("- Scaling CPU by memory is the documented average share; short bursts may run faster. One vCPU of "
         "Lambda's arm64 (Graviton) is taken as fast as one core here, which is not measured."),
        ("- Not included: API Gateway's own latency and Lambda's invoke overhead, for which AWS publishes no "
         "figure we know of; a deployed stage shows them as API Gateway's `Latency` less `IntegrationLatency`."),
        f"- Amazon Cognito: no published latency figure. Its default request-rate quotas per account and "
        f"Region ({COGNITO_QUOTAS_URL}): "
        + "; ".join(f"{name} {rps} requests/s" for name, rps in COGNITO_QUOTAS_RPS.items())
        + ". This stack's own default is the stage's ThrottlingRateLimit.",
    ]
    return "\n".join(lines) + "\n"


def _profile_lines(profile: Profile, cost: dict, logs: dict) -> list:
    use = cost["usage"]
    requests = use["requests"]
    return [
        (f"- Each monthly active user (assumed): {profile.visits:g} visits of {profile.visit_minutes:g} minutes; "
         f"{requests['POST /token']:g} logins; {requests['POST /token/refresh']:g} refreshes (each visit "
         f"that does not start with a login starts with one, plus one per {use['access_token_ttl_s']} s access "
         f"token within a visit); {requests['GET /protected']:g} calls behind the authorizer; "
         f"{requests['POST /users']:g} sign-ups (a share of new users); {profile.password_resets:g} password "
         "resets (a forgot with one email, then a reset)."),
        (f"- Authorizer: API Gateway caches its Allow per token for {use['authorizer_cache_s']} s "
         f"(AuthorizerCacheSeconds), so a visit invokes it once per {use['authorizer_cache_s']} s of use and "
         f"once per token refreshed within it: {use['authorizer']:g} invocations a month for "
         f"{requests['GET /protected']:g} calls."),
        f"- Durations: the latency model at {ROUND_TRIP_MS:g} ms a round trip, at each function's MemorySize, "
        "billed in whole milliseconds; a route whose CPU is not measured counts its round trips only"
        + (f" ({', '.join(cost['lower_bounds'])})" if cost["lower_bounds"] else "") + ".",
        (f"- DynamoDB: request units per route as estimated in scripts/bench/model.py (DYNAMODB_UNITS); "
         f"storage {profile.stored_items:g} items of {profile.item_bytes:g} bytes per user (assumed)."),
        (f"- Secrets Manager: {SECRETS} secrets; {profile.token_starts_per_1000:g} new token execution environment "
         f"per 1000 token invocations (assumed), each reading both."),
        (f"- CloudWatch Logs: {logs['function_bytes']:.0f} bytes of the functions' own lines per invocation "
         f"({logs['function_bytes_how']}), {logs['platform_bytes']} bytes of Lambda's START and REPORT lines "
         f"(assumed, JSON format) and {logs['access_log_per_request']} bytes of API Gateway access log per "
         "request (the template's format with typical values, assumed). Log storage, API Gateway's detailed "
         "metrics, X-Ray traces, EMF metrics, point-in-time recovery and data transfer are not included."),
        ("- No free tier is counted (Lambda's, API Gateway's, DynamoDB's, SES's, CloudWatch's); Cognito's and "
         "Auth0's free MAU are part of their list prices and are counted."),
    ]


def cost_markdown(cost: dict, profile: Profile, logs: dict, stack: Stack) -> str:
    at = {mau: monthly(cost, mau) for mau in MAU_STEPS}
    header = "| USD a month | " + " | ".join(f"{mau:,} MAU" for mau in MAU_STEPS) + " |"
    lines = ["### Cost per month, modelled", "", header, "|---|" + "---|" * len(MAU_STEPS)]
    for component in sorted(cost["per_mau"], key=lambda c: -cost["per_mau"][c]):
        lines.append(f"| {component} | " + " | ".join(_usd(cost["per_mau"][component] * m) for m in MAU_STEPS) + " |")
    for component, usd in cost["fixed"].items():
        lines.append(f"| {component} | " + " | ".join(_usd(usd) for _ in MAU_STEPS) + " |")
    lines.append("| **this service** | " + " | ".join(f"**{_usd(at[m]['service'])}**" for m in MAU_STEPS) + " |")
    lines.append("| this service without `GET /protected`'s own cost (the app's calls) | "
                 + " | ".join(_usd(at[m]["service_auth_only"]) for m in MAU_STEPS) + " |")
    for tier in COGNITO_TIERS:
        lines.append(f"| Amazon Cognito user pools, {tier} | "
                     + " | ".join(_usd(at[m]["cognito"][tier]) for m in MAU_STEPS) + " |")
    lines.append(f"| Auth0 Free (up to {AUTH0_FREE_MAU:,} MAU) | "
                 + " | ".join("$0" if at[m]["auth0_free"] is not None else "over the plan's MAU" for m in MAU_STEPS)
                 + " |")
    for plan, mau, usd in AUTH0_PLANS:
        lines.append(f"| Auth0 {plan} (from ${usd:,.0f} a month for {mau:,} MAU) | "
                     + " | ".join("not published" for _ in MAU_STEPS) + " |")
    lines += ["", *_profile_lines(profile, cost, logs),
              (f"- Cognito ({COGNITO_PRICING}), prices since 2024-11-22: Lite $0.0055 per MAU from 10,001 to "
               "100,000, $0.0046 to 1,000,000, $0.00325 to 10,000,000, the first 10,000 free; Essentials $0.015 "
               "per MAU after 10,000 free (passkeys and the managed login need Essentials). Compare it with the "
               "row without `GET /protected`: an app on Cognito still pays API Gateway for its own calls."),
              (f"- Auth0 ({AUTH0_PRICING}): the free plan up to {AUTH0_FREE_MAU:,} MAU; B2C Essentials from $35 a "
               "month for 500 MAU, Professional from $240 a month for 1,000 MAU. Other points of its price slider "
               "are not recorded here, and above its range the price is \"contact sales\": \"not published\"."),
              (f"- AWS list prices, us-east-1, architecture {stack.architecture} (the template's default); this "
               "machine cannot reach the pages, so these are the published prices as we know them and must be "
               "checked:")]
    used = [key for key in PRICES if not key.startswith("lambda_gb_s_") or key.endswith(stack.architecture)]
    lines += [f"  - {PRICES[key].shown}: {PRICES[key].url}" for key in used]
    return "\n".join(lines) + "\n"


def memory_markdown(memory: dict, stack: Stack) -> str:
    token_mb = memory["token_memory_mb"]
    lines = [
        "### The token function's memory",
        "",
        "| request | MemorySize | duration | billed GB-s | Lambda USD per million (duration + requests) |",
        "|---|---|---|---|---|",
    ]
    for r in memory["rows"]:
        lines.append(f"| {_route(r['route'])} | {r['memory_mb']} MB | {r['ms']:.1f} ms | {r['gb_s']:.5f} | "
                     f"${r['usd_per_million']:.2f} |")
    at = memory["refresh_usd_per_million_duration"]
    saving, whole = memory["refresh_saving_per_million"], memory["refresh_whole_usd_per_million"]
    verdict = ("yes: the saving is more than a tenth of what a refresh costs"
               if memory["separate_function_pays"] else
               "no: a second function would bring its own cold starts, role and configuration for a saving "
               "well under a tenth of what a refresh costs")
    login = memory["login_gb_s"]
    login_ms = {r["memory_mb"]: r["ms"] for r in memory["rows"] if r["route"] == "POST /token"}
    lines += [
        "",
        (f"The token function has {token_mb} MB for argon2: one full vCPU, and argon2id with one lane is "
         f"CPU-bound, so a login's CPU costs the same GB-seconds at any size up to {FULL_VCPU_MB} MB "
         f"({login[256]['cpu_gb_s']:.4f} at 256 MB, {login[token_mb]['cpu_gb_s']:.4f} at {token_mb} MB) and "
         "takes proportionally longer below it; what the bigger size adds is memory held while the login "
         f"waits on DynamoDB ({login[256]['wait_gb_s']:.4f} against {login[token_mb]['wait_gb_s']:.4f} GB-s), "
         f"for a login {login_ms[256] / login_ms[token_mb]:.1f} times as fast as at 256 MB "
         f"({login_ms[token_mb]:.1f} against {login_ms[256]:.1f} ms). A refresh is I/O-bound: at "
         f"{token_mb} MB its duration costs ${at[token_mb]:.3f} per million, at 256 MB ${at[256]:.3f}, "
         f"${saving:.3f} less per million, against API Gateway's ${PRICES['api_request'].usd * 1e6:.2f} per "
         f"million and ${whole:.2f} per million for a refresh in all (API Gateway, Lambda, DynamoDB). Should "
         f"refreshes run in a separate, smaller function? {verdict.capitalize()}."),
    ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------- charts

CHART_SALT = "jwt-auth-bench"  # fixed SVG ids, so a rerun with the same numbers diffs clean
BASELINE, OURS, SECOND = "#9e9e9e", "#1f77b4", "#ff7f0e"
SDK_FUNCTIONS = ("protected", "token", "users")


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams.update({"svg.hashsalt": CHART_SALT, "svg.fonttype": "none", "font.size": 10})
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save(fig, path: Path) -> Path:
    fig.savefig(path, format="svg", metadata={"Date": None, "Creator": None})
    return path


def coldstart_chart(cold: dict, path: Path, sdk_limit: float) -> Path:
    names = [n for n in ("hello", "sdk-hello", "authorizer", "protected", "token", "users") if n in cold]
    init = [cold[n]["init_us"]["median"] / 1000 for n in names]
    fig = _figure(7.5, 3.6)
    ax = fig.add_subplot()
    colors = [BASELINE if n in ("hello", "sdk-hello") else OURS for n in names]
    bars = ax.barh(names, init, color=colors)
    hello = cold["hello"]["init_us"]["median"] / 1000
    sdk = cold["sdk-hello"]["init_us"]["median"] / 1000 if "sdk-hello" in cold else None
    labels = [f"{v:.2f} ms: {v / hello:.2f}x hello"
              + (f", {v / sdk:.2f}x sdk-hello" if sdk and n in SDK_FUNCTIONS else "")
              for n, v in zip(names, init, strict=True)]
    ax.bar_label(bars, labels=labels, label_type="center", color="white", fontsize=9)
    if sdk:
        ax.axvline(sdk * sdk_limit, color=SECOND, linestyle="--",
                   label=f"SDK functions' budget: {sdk_limit}x sdk-hello")
        ax.legend(loc="upper right", fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, max(init) * 1.4)
    ax.set_xlabel("init, median (ms): spawn to the first /next poll of the Runtime API")
    ax.set_title("Cold start: each function beside hello world and sdk-hello (grey)")
    return _save(fig, path)


def load_chart(load: dict, path: Path) -> Path:
    routes = sorted(load["load"]["routes"].items(), key=lambda item: item[1]["p50_ms"])
    fig = _figure(7.5, 1.2 + 0.5 * len(routes))
    ax = fig.add_subplot()
    ys = range(len(routes))
    p50 = [r["p50_ms"] for _, r in routes]
    p99 = [r["p99_ms"] for _, r in routes]
    for offset, values, label, color in ((-0.2, p50, "p50", OURS), (0.2, p99, "p99", SECOND)):
        bars = ax.barh([y + offset for y in ys], values, height=0.38, label=label, color=color)
        ax.bar_label(bars, labels=[f"{v:,.0f} ms" if v >= 10 else f"{v:.1f} ms" for v in values], padding=3,
                     fontsize=8)
    ax.set_yticks(list(ys), [f"{route}\n{r['requests']} requests, {r['throughput_rps']:.1f}/s" for route, r in routes],
                  fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(min(p50) / 2, max(p99) * 8)
    ax.set_xlabel("latency through the local API (ms, log scale)")
    run = load["load"]
    ax.set_title(f"Load: {run['requests']} requests by {run['users']} clients, "
                 f"{load['instances_per_function']} instances per function")
    ax.legend(loc="upper right")
    return _save(fig, path)


def cost_chart(cost: dict, path: Path) -> Path:
    maus = [round(10 ** (3 + i / 20)) for i in range(61)]  # 1,000 to 1,000,000
    at = [monthly(cost, m) for m in maus]
    fig = _figure(7.5, 5.0)
    ax = fig.add_subplot()

    def curve(values, label, color, style="-"):
        points = [(m, v) for m, v in zip(maus, values, strict=True) if v]  # nothing to draw at $0 on a log scale
        ax.plot([m for m, _ in points], [v for _, v in points], style, color=color, label=label)

    calls = cost["usage"]["requests"]["GET /protected"]
    curve([a["service"] for a in at], f"this service, with {calls:g} protected calls per user", OURS)
    curve([a["service_auth_only"] for a in at], "this service, auth routes only", OURS, "--")
    curve([a["cognito"]["Lite"] for a in at], "Cognito Lite (first 10,000 MAU free)", SECOND)
    curve([a["cognito"]["Essentials"] for a in at], "Cognito Essentials (first 10,000 MAU free)", "#d62728")
    for (plan, mau, usd), marker in zip(AUTH0_PLANS, ("o", "s"), strict=True):
        ax.plot([mau], [usd], marker, color="#2ca02c", label=f"Auth0 {plan}: from ${usd:,.0f} at {mau:,} MAU")
    ax.axvspan(maus[0], AUTH0_FREE_MAU, color="#2ca02c", alpha=0.08,
               label=f"Auth0 free plan: $0 up to {AUTH0_FREE_MAU:,} MAU")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("monthly active users (log scale)")
    ax.set_ylabel("USD a month (log scale)")
    ax.set_title("Cost per month at list prices (us-east-1, no AWS free tier)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    ax.text(0.99, 0.02, "Auth0: no published price above its slider's range (contact sales)",
            transform=ax.transAxes, ha="right", fontsize=8, color="#555555")
    return _save(fig, path)
