"""Template behaviour that linters cannot see, checked offline by evaluating the template.

Each check is named on the command line (all of them by default) and prints what it evaluated:

  argon2          The Parameters' constraints and the Rules decide which argon2id settings a
                  deployment accepts. Accepted: every row of OWASP's table as shared/src/config.rs
                  holds it (OWASP_ARGON2_MIN_MEMORY_KIB); refused: 1 KiB below each row, the next
                  lower memory the template offers, one pass fewer; and for every pass count from
                  1 to 10 and every memory the template offers, accepted exactly when the code's
                  table accepts it. The functions get the two parameters as ARGON2_*.
  cache           The same evaluation for AuthorizerCacheSeconds against AccessTokenTtlSeconds:
                  for every token TTL the template accepts, a cache of 0 and the longest cache
                  below the TTL are accepted, a cache equal to it is refused, and no accepted
                  pair has a cache at or above the TTL. ReauthorizeEvery and
                  ACCESS_TOKEN_TTL_SECONDS are those two parameters.
  logging         The translated template (scripts/translate_template.py), its Conditions
                  evaluated with the default parameters and with each allowed value of every
                  parameter a Condition reads: an AWS::ApiGateway::Stage with access logging
                  (AccessLogSetting) or execution logging (MethodSettings LoggingLevel ERROR/INFO
                  or DataTraceEnabled) needs the account's CloudWatch role, created by the stack
                  (an AWS::ApiGateway::Account the stage depends on, whose role is kept on stack
                  deletion) or declared present (ApiGatewayLogging=account-role-exists).
  execution-logs  For the same parameter sets: a stage with execution logging has the log group
                  API Gateway writes to (API-Gateway-Execution-Logs_<api id>/<stage>) in the stack,
                  with a retention; and every function's SystemLogLevel keeps Lambda's REPORT
                  lines (INFO or DEBUG; Lambda sends START and REPORT at INFO).
  redeploy        Two stack updates that differ only in AllowedOrigins (translated as
                  CloudFormation runs the transform, at two different times) create different
                  AWS::ApiGateway::Deployment resources, so the new gateway-response CORS headers
                  reach the stage; and the REST API's gateway responses do carry the new value.
  sessions        The session parameters against shared/src/config.rs (SessionConfig,
                  CookieSameSite): for every SessionAbsoluteSeconds x SessionIdleSeconds the
                  template offers, and one beyond each of the code's bounds, the Parameters and
                  Rules accept exactly what the code accepts (idle within absolute); the code's
                  bounds and defaults are the template's; RefreshGraceSeconds at and beyond its
                  bounds likewise; RefreshCookieSameSite offers exactly the code's values with
                  its default; each is passed as its variable.
  routes          The REST API of the translated template has exactly the contract's routes
                  (ROUTES), each integrated with its function, behind the authorizer exactly
                  where the contract says; every browser route has an OPTIONS preflight on the
                  same function without the authorizer; the token function's routes are the
                  path suffixes its code serves (Route::of in functions/token/src/lib.rs).
  cors            For one origin, for *, and for several origins: every gateway response sends
                  Access-Control-Allow-Origin (the origin, *, or the request's Origin echoed)
                  and Vary: Origin, and Access-Control-Allow-Credentials 'true' exactly when it
                  names the one configured origin: never with *, never with an echo.

No AWS call is made. CloudFormation semantics relied on: a Number parameter's Ref is a string
(Parameters, CloudFormation User Guide), and rule functions compare strings (Rule functions).

Usage: python scripts/test_template.py [--template template.yaml] [CHECK ...]
Exits 1 if a check fails.
"""

import argparse
import contextlib
import copy
import json
import pathlib
import re
import sys
from unittest import mock

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import translate_template  # noqa: E402

CONFIG_SOURCE = ROOT / "shared" / "src" / "config.rs"
TOKEN_SOURCE = ROOT / "functions" / "token" / "src" / "lib.rs"
# The HTTP contract (openapi.yaml; the session routes of issue 12): method and path -> the binary
# serving it and whether the API's authorizer stands in front of it.
ROUTES = {
    ("post", "/users"): ("users", False),
    ("post", "/token"): ("token", False),
    ("post", "/token/refresh"): ("token", False),
    ("post", "/logout"): ("token", False),
    ("post", "/logout/all"): ("token", True),
    ("post", "/password"): ("token", True),
    ("get", "/protected"): ("protected", True),
    ("get", "/.well-known/jwks.json"): ("jwks", False),
    ("get", "/.well-known/openid-configuration"): ("jwks", False),
}
# Routes a browser app calls with a JSON body or an Authorization header: they need a preflight.
BROWSER_ROUTES = {route for route in ROUTES if route[0] != "get" or route[1] == "/protected"}
# AllowedOrigins has no default; sam deploy --guided asks for it.
SAMPLE_ORIGIN = "https://app.example.com"
ORIGIN_SAMPLES = [SAMPLE_ORIGIN, "*", "https://a.example.com,https://b.example.com"]
# The parameter value by which a deployer declares the account's CloudWatch role present.
ROLE_DECLARED = ("ApiGatewayLogging", "account-role-exists")
# Lambda sends START and REPORT at INFO ("Log-level filtering", Lambda Developer Guide).
REPORT_LEVELS = {"INFO", "DEBUG"}
NO_VALUE = object()


class Unsupported(Exception):
    """A template construct this script cannot evaluate: a failure, never a pass."""


# --- parameters and rules ------------------------------------------------------------------

def defaults(template):
    values = {}
    for name, spec in template.get("Parameters", {}).items():
        if "Default" in spec:
            values[name] = str(spec["Default"])
    values.setdefault("AllowedOrigins", SAMPLE_ORIGIN)
    return values


def canonical(value):
    return str(value)


def parameter_errors(template, values, only=None):
    """Why CloudFormation would refuse these parameter values (constraints only)."""
    errors = []
    for name, spec in template.get("Parameters", {}).items():
        if only and name not in only:
            continue
        if name not in values:
            errors.append(f"{name}: no value")
            continue
        value = values[name]
        if "AllowedValues" in spec and value not in [canonical(v) for v in spec["AllowedValues"]]:
            errors.append(f"{name}={value}: not in AllowedValues")
        if spec.get("Type") == "Number":
            try:
                number = float(value)
            except ValueError:
                errors.append(f"{name}={value}: not a number")
                continue
            if "MinValue" in spec and number < float(spec["MinValue"]):
                errors.append(f"{name}={value}: below MinValue {spec['MinValue']}")
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                errors.append(f"{name}={value}: above MaxValue {spec['MaxValue']}")
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
            errors.append(f"{name}={value}: does not match AllowedPattern")
        if "MinLength" in spec and len(value) < int(spec["MinLength"]):
            errors.append(f"{name}={value}: shorter than MinLength")
        if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
            errors.append(f"{name}={value}: longer than MaxLength")
    return errors


def rule_value(expression, values):
    """A rule-specific intrinsic function, evaluated as CloudFormation does (strings)."""
    if isinstance(expression, (str, int, float)) and not isinstance(expression, bool):
        return str(expression)
    if isinstance(expression, list):
        return [rule_value(item, values) for item in expression]
    if not (isinstance(expression, dict) and len(expression) == 1):
        raise Unsupported(f"rule expression {expression!r}")
    (function, argument), = expression.items()
    if function == "Ref":
        if argument not in values:
            raise Unsupported(f"Ref {argument} in a rule: not a parameter")
        return values[argument]
    if function == "Fn::Equals":
        a, b = (rule_value(x, values) for x in argument)
        return a == b
    if function == "Fn::Not":
        return not rule_value(argument[0], values)
    if function in ("Fn::And", "Fn::Or"):
        if not 2 <= len(argument) <= 10:
            raise Unsupported(f"{function} takes 2 to 10 conditions, got {len(argument)}")
        results = [rule_value(x, values) for x in argument]
        return all(results) if function == "Fn::And" else any(results)
    if function == "Fn::Contains":
        items, value = rule_value(argument[0], values), rule_value(argument[1], values)
        return value in items
    if function == "Fn::EachMemberEquals":
        items, value = rule_value(argument[0], values), rule_value(argument[1], values)
        return all(item == value for item in items)
    if function == "Fn::EachMemberIn":
        check, match = rule_value(argument[0], values), rule_value(argument[1], values)
        return all(item in match for item in check)
    raise Unsupported(f"rule function {function}")


def rule_errors(template, values):
    errors = []
    for name, rule in template.get("Rules", {}).items():
        if "RuleCondition" in rule and not rule_value(rule["RuleCondition"], values):
            continue
        for assertion in rule.get("Assertions", []):
            if not rule_value(assertion["Assert"], values):
                errors.append(f"rule {name}: {assertion.get('AssertDescription', 'assertion false')}")
    return errors


def accepted(template, values):
    return not parameter_errors(template, values) and not rule_errors(template, values)


def candidates(template, name, probes):
    """The values of parameter `name` worth trying: its AllowedValues, else `probes`."""
    spec = template["Parameters"][name]
    if "AllowedValues" in spec:
        return sorted(int(v) for v in spec["AllowedValues"])
    return sorted(set(probes))


def alone_ok(template, values, name):
    return not parameter_errors(template, values, only={name})


class Report:
    def __init__(self, name):
        self.name, self.failures, self.lines = name, [], []

    def expect(self, ok, what):
        (self.lines if ok else self.failures).append(what)

    def fail(self, what):
        self.failures.append(what)

    def note(self, what):
        self.lines.append(what)

    def print(self, verbose=False):
        if verbose:
            for line in self.lines:
                print(f"  ok    {line}")
        for line in self.failures:
            print(f"  FAIL  {line}")
        verdict = "ok" if not self.failures else f"{len(self.failures)} failures"
        print(f"{self.name}: {len(self.lines) + len(self.failures)} expectations, {verdict}")


def env_refs(template, variable):
    """{function logical id: value} of an environment variable across the SAM functions."""
    found = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") == "AWS::Serverless::Function":
            env = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
            if variable in env:
                found[logical_id] = env[variable]
    return found


def check_wiring(report, template, variable, parameter):
    refs = env_refs(template, variable)
    report.expect(bool(refs), f"some function gets {variable}")
    for logical_id, value in refs.items():
        report.expect(value == {"Ref": parameter}, f"{logical_id}: {variable} is !Ref {parameter} (got {value})")


def owasp_table():
    text = CONFIG_SOURCE.read_text()
    m = re.search(r"OWASP_ARGON2_MIN_MEMORY_KIB\s*:[^=]*=\s*\[(.*?)\];", text, re.S)
    if not m:
        sys.exit(f"no OWASP_ARGON2_MIN_MEMORY_KIB table in {CONFIG_SOURCE.relative_to(ROOT)}")
    rows = [(int(a.replace("_", "")), int(b.replace("_", "")))
            for a, b in re.findall(r"\(\s*([\d_]+)\s*,\s*([\d_]+)\s*\)", m.group(1))]
    return sorted(rows)


def owasp_min(table, passes):
    fitting = [memory for rows_passes, memory in table if passes >= rows_passes]
    return fitting[-1] if fitting else None


def check_argon2(template, verbose):
    report = Report("argon2")
    memory, passes = "Argon2MemoryKiB", "Argon2Iterations"
    table = owasp_table()
    base = defaults(template)

    def verdict(t, m):
        return accepted(template, {**base, passes: str(t), memory: str(m)})

    offered = candidates(template, memory, [m for _, m in table] + [m - 1 for _, m in table]
                         + [1024, 65536, 262144, 1048576])
    step = "next lower AllowedValue" if "AllowedValues" in template["Parameters"][memory] else "next lower probe"
    for t, m in table:
        report.expect(verdict(t, m), f"OWASP row: {t} pass(es) with {m} KiB accepted")
        report.expect(not verdict(t, m - 1), f"{t} pass(es) with {m - 1} KiB (1 KiB below) refused")
        lower = [x for x in offered if x < m]
        if lower:
            report.expect(not verdict(t, lower[-1]),
                          f"{t} pass(es) with {lower[-1]} KiB ({step}) refused")
        if t > 1:
            report.expect(not verdict(t - 1, m), f"{t - 1} pass(es) with {m} KiB (one pass fewer) refused")
    for t in (0, 11):
        report.expect(not verdict(t, 262144), f"{t} passes refused (the code takes 1 to 10)")
    mismatches = []
    for t in range(1, 11):
        least = owasp_min(table, t)
        for m in offered:
            if verdict(t, m) != (m >= least):
                mismatches.append(f"t={t} m={m}: template {'accepts' if verdict(t, m) else 'refuses'}, "
                                  f"OWASP minimum {least}")
    report.expect(not mismatches, f"every pass count 1-10 x memory {offered}: template agrees with "
                  f"the code's table" + ("" if not mismatches else ": " + "; ".join(mismatches[:8])))
    check_wiring(report, template, "ARGON2_MEMORY_KIB", memory)
    check_wiring(report, template, "ARGON2_ITERATIONS", passes)
    return report


def check_cache(template, verbose):
    report = Report("cache")
    ttl, cache = "AccessTokenTtlSeconds", "AuthorizerCacheSeconds"
    base = defaults(template)

    def values(t, c):
        return {**base, ttl: str(t), cache: str(c)}

    ttls = candidates(template, ttl, [60, 61, 300, 899, 900, 901, 1800, 3599, 3600])
    caches = candidates(template, cache, [0, 1, 30, 59, 60, 299, 300, 899, 900, 901, 1800, 3599, 3600])
    for t in ttls:
        if not alone_ok(template, values(t, 0), ttl):
            continue
        report.expect(accepted(template, values(t, 0)), f"TTL {t}: no cache (0) accepted")
        report.expect(not accepted(template, values(t, t)), f"TTL {t}: cache {t} (equal) refused")
        below = [c for c in caches if c < t and alone_ok(template, values(t, c), cache)]
        if below:
            report.expect(accepted(template, values(t, below[-1])),
                          f"TTL {t}: cache {below[-1]} (just below) accepted")
        wrong = [c for c in caches if accepted(template, values(t, c)) != (c < t and alone_ok(template, values(t, c), cache))]
        report.expect(not wrong, f"TTL {t}: every cache in {caches} accepted exactly when below it"
                      + ("" if not wrong else f": wrong for {wrong}"))
    api = [r for r in template["Resources"].values() if r.get("Type") == "AWS::Serverless::Api"]
    authorizers = [a for r in api for a in r.get("Properties", {}).get("Auth", {}).get("Authorizers", {}).values()]
    report.expect(bool(authorizers), "the API has an authorizer")
    for authorizer in authorizers:
        every = authorizer.get("Identity", {}).get("ReauthorizeEvery")
        report.expect(every == {"Ref": cache}, f"ReauthorizeEvery is !Ref {cache} (got {every})")
    check_wiring(report, template, "ACCESS_TOKEN_TTL_SECONDS", ttl)
    return report


def rust_args(text, at):
    """The top-level arguments of the call whose `(` is at `at`."""
    args, depth, start = [], 0, at + 1
    for i in range(at, len(text)):
        c = text[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                args.append(text[start:i].strip())
                return [a for a in args if a]
        elif c == "," and depth == 1:
            args.append(text[start:i].strip())
            start = i + 1
    raise Unsupported("unbalanced call in config.rs")


def rust_number(expression, names=None):
    """A whole-number expression of config.rs (`90 * 86_400`, `absolute`) as an int."""
    expression = expression.replace("_", "")
    names = {k.replace("_", ""): v for k, v in (names or {}).items()}
    if not re.fullmatch(r"[\w\s*+-]+", expression):
        raise Unsupported(f"bound {expression!r} in config.rs")
    for name, value in names.items():
        expression = re.sub(rf"\b{name}\b", str(value), expression)
    if not re.fullmatch(r"[\d\s*+-]+", expression):
        raise Unsupported(f"bound {expression!r} in config.rs")
    return int(eval(expression, {"__builtins__": {}}))  # digits and + - * only


def code_bounds(text, variable):
    """(min expression, max expression) of `int_in_range(src, "VARIABLE", default, min, max)`."""
    m = re.search(rf'int_in_range\(\s*src\s*,\s*"{variable}"', text)
    if not m:
        raise Unsupported(f"no int_in_range for {variable} in config.rs")
    args = rust_args(text, m.start() + len("int_in_range"))
    return args[3], args[4]


def session_code(text):
    """What SessionConfig and CookieSameSite accept, read from config.rs."""
    m = re.search(r"impl Default for SessionConfig\s*\{(.*?)\n\}", text, re.S)
    if not m:
        raise Unsupported("no `impl Default for SessionConfig` in config.rs")
    defaults_ = {name: rust_number(value)
                 for name, value in re.findall(r"(\w+):\s*Duration::from_secs\(([^)]*)\)", m.group(1))}
    bounds = {var: code_bounds(text, var) for var in
              ("SESSION_ABSOLUTE_SECONDS", "SESSION_IDLE_SECONDS", "REFRESH_GRACE_SECONDS")}
    m = re.search(r'"REFRESH_COOKIE_SAMESITE".*?match(.*?)\n\s*\}', text, re.S)
    if not m:
        raise Unsupported("no REFRESH_COOKIE_SAMESITE match in config.rs")
    same_site = re.findall(r'Some\("(\w+)"\)\s*=>\s*Ok', m.group(1))
    default_site = re.search(r'None\s*\|\s*Some\("(\w+)"\)', m.group(1))
    return defaults_, bounds, same_site, default_site.group(1) if default_site else None


def check_sessions(template, verbose):
    report = Report("sessions")
    absolute, idle, grace, site = ("SessionAbsoluteSeconds", "SessionIdleSeconds",
                                   "RefreshGraceSeconds", "RefreshCookieSameSite")
    code_defaults, bounds, same_site, default_site = session_code(CONFIG_SOURCE.read_text())
    base = defaults(template)
    a_min, a_max = (rust_number(x) for x in bounds["SESSION_ABSOLUTE_SECONDS"])

    def code_accepts(a, i):
        i_min, i_max = (rust_number(x, {"absolute": a}) for x in bounds["SESSION_IDLE_SECONDS"])
        return a_min <= a <= a_max and i_min <= i <= i_max

    i_min = rust_number(bounds["SESSION_IDLE_SECONDS"][0])
    absolutes = sorted(set(candidates(template, absolute, [])) | {a_min - 1, a_min, a_max, a_max + 1})
    idles = sorted(set(candidates(template, idle, [])) | {i_min - 1, i_min, a_max, a_max + 1})
    wrong, offered = [], []
    for a in absolutes:
        for i in idles:
            verdict = accepted(template, {**base, absolute: str(a), idle: str(i)})
            if verdict and not code_accepts(a, i):
                wrong.append(f"absolute {a} idle {i}: template accepts, the code refuses")
            if verdict:
                offered.append((a, i))
            elif code_accepts(a, i) and alone_ok(template, {absolute: str(a)}, absolute) \
                    and alone_ok(template, {idle: str(i)}, idle):
                wrong.append(f"absolute {a} idle {i}: both offered, the code accepts, the template refuses")
    report.expect(not wrong, f"{len(absolutes)} absolute x {len(idles)} idle lifetimes (the offered "
                  f"values and the code's bounds {a_min}..{a_max}, {i_min}..absolute, one beyond "
                  "each): the template accepts exactly what the code accepts"
                  + ("" if not wrong else ": " + "; ".join(wrong[:6])))
    report.expect(any(a == a_min for a, _ in offered) and any(a == a_max for a, _ in offered),
                  f"{absolute}: the code's bounds {a_min} and {a_max} are offered")
    report.expect(any(i == i_min for _, i in offered) and any(i == a_max for _, i in offered),
                  f"{idle}: the code's bounds {i_min} and {a_max} (with absolute {a_max}) are offered")
    refused_pairs = [(a, i) for a in absolutes for i in idles
                     if i > a and alone_ok(template, {absolute: str(a)}, absolute)
                     and alone_ok(template, {idle: str(i)}, idle)]
    report.expect(bool(refused_pairs) and not any(
                  accepted(template, {**base, absolute: str(a), idle: str(i)}) for a, i in refused_pairs),
                  f"idle above absolute refused ({len(refused_pairs)} offered pairs, by Rules)")
    for parameter, field in ((absolute, "absolute"), (idle, "idle"), (grace, "grace")):
        want = code_defaults.get(field)
        got = template["Parameters"][parameter].get("Default")
        report.expect(want is not None and str(got) == str(want),
                      f"{parameter} default {got} is the code's {want}")
    g_min, g_max = (rust_number(x) for x in bounds["REFRESH_GRACE_SECONDS"])
    for g in (g_min - 1, g_min, g_max, g_max + 1):
        verdict = accepted(template, {**base, grace: str(g)})
        report.expect(verdict == (g_min <= g <= g_max),
                      f"{grace}={g} {'accepted' if verdict else 'refused'} "
                      f"(the code takes {g_min} to {g_max})")
    offered_sites = [canonical(v) for v in template["Parameters"][site].get("AllowedValues", [])]
    report.expect(bool(same_site) and sorted(offered_sites) == sorted(same_site),
                  f"{site} offers {offered_sites}, the code's {same_site}")
    report.expect(str(template["Parameters"][site].get("Default")) == default_site,
                  f"{site} default {template['Parameters'][site].get('Default')} is the code's {default_site}")
    for variable, parameter in (("SESSION_ABSOLUTE_SECONDS", absolute), ("SESSION_IDLE_SECONDS", idle),
                                ("REFRESH_GRACE_SECONDS", grace), ("REFRESH_COOKIE_SAMESITE", site)):
        check_wiring(report, template, variable, parameter)
    return report


# --- the translated template ---------------------------------------------------------------

class Evaluator:
    """Evaluates Conditions and the intrinsic functions known before deployment."""

    def __init__(self, template, values):
        self.values = values
        self.conditions = template.get("Conditions", {})
        self.resources = template.get("Resources", {})
        self.cache = {}

    def condition(self, name):
        if name not in self.cache:
            self.cache[name] = bool(self.resolve(self.conditions[name]))
        return self.cache[name]

    def present(self, logical_id):
        condition = self.resources[logical_id].get("Condition")
        return condition is None or self.condition(condition)

    def sub(self, text):
        def one(m):
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            value = self.values.get(name)
            return value if isinstance(value, str) else m.group(0)
        return re.sub(r"\$\{([^}]+)\}", one, text)

    def resolve(self, value):
        if isinstance(value, list):
            return [v for v in (self.resolve(x) for x in value) if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (function, argument), = value.items()
            if function == "Ref":
                if argument == "AWS::NoValue":
                    return NO_VALUE
                return self.values.get(argument, value)
            if function == "Condition":
                return self.condition(argument)
            if function == "Fn::If":
                name, then, otherwise = argument
                return self.resolve(then if self.condition(name) else otherwise)
            if function == "Fn::Equals":
                a, b = (self.resolve(x) for x in argument)
                return str(a) == str(b) if not isinstance(a, (dict, list)) else a == b
            if function == "Fn::Not":
                return not self.resolve(argument[0])
            if function == "Fn::And":
                return all(self.resolve(x) for x in argument)
            if function == "Fn::Or":
                return any(self.resolve(x) for x in argument)
            if function == "Fn::Sub":
                if isinstance(argument, str):
                    return self.sub(argument)
                text, variables = argument
                inner = Evaluator.__new__(Evaluator)
                inner.__dict__.update(self.__dict__)
                inner.values = {**self.values, **{k: self.resolve(v) for k, v in variables.items()}}
                return inner.sub(text)
            if function == "Fn::Split":
                delimiter, source = argument
                source = self.resolve(source)
                return source.split(delimiter) if isinstance(source, str) else value
            if function == "Fn::Select":
                index, items = self.resolve(argument[0]), self.resolve(argument[1])
                return items[int(index)] if isinstance(items, list) else value
            if function == "Fn::Join":
                delimiter, items = argument
                items = self.resolve(items)
                if all(isinstance(i, str) for i in items):
                    return delimiter.join(items)
                return {"Fn::Join": [delimiter, items]}
        out = {}
        for key, item in value.items():
            item = self.resolve(item)
            if item is not NO_VALUE:
                out[key] = item
        return out


def references(value):
    """Logical ids a (resolved) value refers to: Ref, GetAtt, and ${Name} in Sub."""
    found = set()
    if isinstance(value, list):
        for item in value:
            found |= references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                target = item.split(".", 1)[0] if isinstance(item, str) else item[0]
                found.add(target)
            elif key == "Fn::Sub":
                text = item if isinstance(item, str) else item[0]
                found |= {name.split(".", 1)[0] for name in re.findall(r"\$\{([^!}][^}]*)\}", text)}
                if not isinstance(item, str):
                    found |= references(item[1])
            else:
                found |= references(item)
    return found


class Deployed:
    """The translated template as CloudFormation would run it with these parameter values."""

    def __init__(self, sam_template, values):
        self.values = values
        self.template = translate_template.translate(copy.deepcopy(sam_template), dict(values))
        self.evaluator = Evaluator(self.template, values)
        all_resources = self.template["Resources"]
        self.resources = {}
        for logical_id, resource in all_resources.items():
            if self.evaluator.present(logical_id):
                resolved = dict(resource)
                for part in ("Properties", "Metadata"):
                    if part in resource:
                        resolved[part] = self.evaluator.resolve(resource[part])
                self.resources[logical_id] = resolved

    def of_type(self, kind):
        return {k: r for k, r in self.resources.items() if r["Type"] == kind}

    def depends_on(self, source, target):
        """Whether `source` is created after `target` (DependsOn and references, transitively)."""
        seen, todo = set(), [source]
        while todo:
            current = todo.pop()
            if current in seen or current not in self.resources:
                continue
            seen.add(current)
            resource = self.resources[current]
            edges = set(resource.get("DependsOn", []) if isinstance(resource.get("DependsOn"), list)
                        else [resource["DependsOn"]] if "DependsOn" in resource else [])
            edges |= references(resource.get("Properties", {})) | references(resource.get("Metadata", {}))
            if target in edges:
                return True
            todo.extend(e for e in edges if e in self.resources)
        return False

    def stage_logging(self, stage):
        props = self.resources[stage].get("Properties", {})
        access = bool(props.get("AccessLogSetting"))
        execution = any(
            str(ms.get("LoggingLevel", "OFF")).upper() in ("ERROR", "INFO")
            or str(ms.get("DataTraceEnabled", False)).lower() == "true"
            for ms in props.get("MethodSettings", []))
        return access, execution


def parameter_sets(sam_template):
    """The defaults, then each allowed value of every parameter a Condition reads."""
    base = defaults(sam_template)
    read = json.dumps(sam_template.get("Conditions", {}))
    sets = [("defaults", base)]
    for name, spec in sam_template.get("Parameters", {}).items():
        if json.dumps({"Ref": name}) not in read and f"${{{name}}}" not in read:
            continue
        options = [canonical(v) for v in spec.get("AllowedValues", [])]
        if not options and name == "AllowedOrigins":
            options = ORIGIN_SAMPLES
        for option in options:
            if option != base.get(name):
                sets.append((f"{name}={option}", {**base, name: option}))
    return sets


def deployments(sam_template):
    return [(label, Deployed(sam_template, values)) for label, values in parameter_sets(sam_template)]


def check_logging(sam_template, verbose, deployed=None):
    report = Report("logging")
    for label, stack in deployed or deployments(sam_template):
        declared = stack.values.get(ROLE_DECLARED[0]) == ROLE_DECLARED[1]
        accounts = {k: r for k, r in stack.of_type("AWS::ApiGateway::Account").items()
                    if r.get("Properties", {}).get("CloudWatchRoleArn")}
        for account, resource in accounts.items():
            arn = resource["Properties"]["CloudWatchRoleArn"]
            role = next(iter(references(arn)), None)
            role_resource = stack.resources.get(role, {})
            report.expect(
                role_resource.get("DeletionPolicy") == "Retain"
                and role_resource.get("UpdateReplacePolicy") == "Retain",
                f"[{label}] {account}'s role {role} is kept on stack deletion and replacement "
                f"(DeletionPolicy {role_resource.get('DeletionPolicy')}, "
                f"UpdateReplacePolicy {role_resource.get('UpdateReplacePolicy')})")
        stages = stack.of_type("AWS::ApiGateway::Stage")
        if not stages:
            report.fail(f"[{label}] no AWS::ApiGateway::Stage in the translation")
        for stage in stages:
            access, execution = stack.stage_logging(stage)
            logs = [w for w, on in (("access", access), ("execution", execution)) if on]
            if not logs:
                report.note(f"[{label}] {stage}: no API Gateway logging, no account role needed")
                continue
            created = [a for a in accounts if stack.depends_on(stage, a)]
            for account in set(accounts) - set(created):
                report.fail(f"[{label}] {stage} may start before {account} sets the role")
            report.expect(
                bool(created) or declared,
                f"[{label}] {stage}: {' and '.join(logs)} logging with the account role "
                + (f"created ({', '.join(created)})" if created else
                   f"declared present ({'='.join(ROLE_DECLARED)})" if declared else
                   "neither created nor declared present: API Gateway refuses the stage"))
    return report


def check_execution_logs(sam_template, verbose, deployed=None):
    report = Report("execution-logs")
    for label, stack in deployed or deployments(sam_template):
        groups = {k: r.get("Properties", {}) for k, r in stack.of_type("AWS::Logs::LogGroup").items()}
        for stage, resource in stack.of_type("AWS::ApiGateway::Stage").items():
            _, execution = stack.stage_logging(stage)
            if not execution:
                continue
            props = resource["Properties"]
            api = next(iter(references(props.get("RestApiId"))), None)
            name = f"API-Gateway-Execution-Logs_${{{api}}}/{props.get('StageName')}"
            found = [g for g, p in groups.items() if p.get("LogGroupName") == name]
            report.expect(bool(found), f"[{label}] {stage} logs executions into {name}, "
                          + (f"which the stack defines ({found[0]})" if found else "outside the stack"))
            for group in found:
                retention = groups[group].get("RetentionInDays")
                report.expect(retention not in (None, ""), f"[{label}] {group} keeps logs {retention} days")
        for function, resource in stack.of_type("AWS::Lambda::Function").items():
            level = resource.get("Properties", {}).get("LoggingConfig", {}).get("SystemLogLevel", "INFO")
            report.expect(level in REPORT_LEVELS,
                          f"[{label}] {function}: SystemLogLevel {level} "
                          f"(REPORT lines need {' or '.join(sorted(REPORT_LEVELS))})")
    return report


def deployment_ids(translated):
    return sorted(k for k, r in translated["Resources"].items() if r["Type"] == "AWS::ApiGateway::Deployment")


def gateway_response_headers(translated, values):
    evaluator = Evaluator(translated, values)
    headers = {}
    for logical_id, resource in translated["Resources"].items():
        if resource["Type"] != "AWS::ApiGateway::RestApi":
            continue
        body = resource.get("Properties", {}).get("Body", {})
        for kind, response in body.get("x-amazon-apigateway-gateway-responses", {}).items():
            params = evaluator.resolve(response.get("responseParameters", {}))
            for key, value in params.items():
                if key.lower().endswith("access-control-allow-origin"):
                    headers[f"{logical_id}.{kind}"] = value
    return headers


@contextlib.contextmanager
def transform_time(seconds):
    """The clock SAM's transform reads (AlwaysDeploy hashes it): a later deploy, a later time."""
    with mock.patch("samtranslator.model.apigateway.time.time", return_value=seconds):
        yield


def check_redeploy(sam_template, verbose):
    report = Report("redeploy")
    base = defaults(sam_template)
    first = {**base, "AllowedOrigins": "https://old.example.com"}
    second = {**base, "AllowedOrigins": "https://new.example.com"}
    with transform_time(1_800_000_000):
        before = translate_template.translate(copy.deepcopy(sam_template), first)
    with transform_time(1_800_000_600):
        after = translate_template.translate(copy.deepcopy(sam_template), second)
    old, new = deployment_ids(before), deployment_ids(after)
    report.expect(bool(old) and old != new,
                  f"AllowedOrigins changed: deployment {', '.join(old)} -> {', '.join(new)}"
                  + (" (a new deployment)" if old != new else
                     " (the same deployment: the stage keeps serving the old gateway responses)"))
    with transform_time(1_800_001_200):
        again = translate_template.translate(copy.deepcopy(sam_template), second)
    report.note(f"(AllowedOrigins unchanged, a later update: deployment {', '.join(new)} -> "
                f"{', '.join(deployment_ids(again))}; "
                + ("every update redeploys, AlwaysDeploy)" if deployment_ids(again) != new
                   else "redeployed only on a change)"))
    old_headers, new_headers = gateway_response_headers(before, first), gateway_response_headers(after, second)
    changed = [k for k in old_headers if old_headers[k] != new_headers.get(k)]
    report.expect(bool(old_headers) and set(changed) == set(old_headers),
                  f"the REST API's gateway responses carry the new origin "
                  f"({len(changed)} of {len(old_headers)} Access-Control-Allow-Origin values change)")
    return report


def rest_api_body(translated):
    bodies = [r["Properties"]["Body"] for r in translated["Resources"].values()
              if r["Type"] == "AWS::ApiGateway::RestApi" and "Body" in r.get("Properties", {})]
    if len(bodies) != 1:
        raise Unsupported(f"{len(bodies)} REST APIs with an OpenAPI body, want 1")
    return bodies[0]


def integrated_function(operation):
    """The logical id of the Lambda function an OpenAPI operation invokes."""
    uri = operation.get("x-amazon-apigateway-integration", {}).get("uri")
    found = references(uri) - {"AWS::Region", "AWS::Partition", "AWS::URLSuffix"}
    return next(iter(found)) if len(found) == 1 else None


def token_suffixes():
    """The path suffixes the token function serves (Route::of)."""
    text = TOKEN_SOURCE.read_text()
    m = re.search(r"fn of\(path: &str\).*?\n    \}", text, re.S)
    if not m:
        raise Unsupported("no Route::of in functions/token/src/lib.rs")
    return set(re.findall(r'\(\s*"(/[^"]*)"\s*,\s*Self::\w+\s*\)', m.group(0)))


def check_routes(sam_template, verbose):
    report = Report("routes")
    ids = {}
    for logical_id, resource in sam_template["Resources"].items():
        binary = resource.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
        if resource.get("Type") == "AWS::Serverless::Function" and binary:
            ids[binary] = logical_id
    apis = [r for r in sam_template["Resources"].values() if r.get("Type") == "AWS::Serverless::Api"]
    authorizer = apis[0].get("Properties", {}).get("Auth", {}).get("DefaultAuthorizer") if len(apis) == 1 else None
    report.expect(bool(authorizer), f"the API has a default authorizer ({authorizer})")
    translated = translate_template.translate(copy.deepcopy(sam_template), defaults(sam_template))
    paths = rest_api_body(translated).get("paths", {})
    served = {(method, path): operation for path, methods in paths.items()
              for method, operation in methods.items()}

    def guarded(operation):
        schemes = {name for requirement in operation.get("security", []) for name in requirement}
        return authorizer in schemes

    for (method, path), (binary, behind) in sorted(ROUTES.items()):
        operation = served.get((method, path))
        if operation is None:
            report.fail(f"{method.upper()} {path}: not in the API")
            continue
        function = integrated_function(operation)
        report.expect(function == ids.get(binary),
                      f"{method.upper()} {path} invokes {function} (want {ids.get(binary)})")
        report.expect(guarded(operation) == behind,
                      f"{method.upper()} {path} is {'behind' if guarded(operation) else 'not behind'} "
                      f"the authorizer (the contract: {'behind' if behind else 'public'})")
    for method, path in sorted(BROWSER_ROUTES):
        preflight = served.get(("options", path))
        if preflight is None:
            report.fail(f"OPTIONS {path}: no preflight")
            continue
        report.expect(not guarded(preflight),
                      f"OPTIONS {path} without the authorizer (a preflight carries no credentials)")
        route = served.get((method, path), {})
        report.expect(integrated_function(preflight) == integrated_function(route) is not None,
                      f"OPTIONS {path} answered by {integrated_function(preflight)}, as {method.upper()}")
    preflights = {("options", path) for _, path in BROWSER_ROUTES}
    extra = sorted(f"{m.upper()} {p}" for m, p in served if (m, p) not in ROUTES and (m, p) not in preflights)
    report.expect(not extra, "no route beyond the contract and its preflights"
                  + ("" if not extra else f": {', '.join(extra)}"))
    suffixes = token_suffixes()
    routed = {path for (method, path), operation in served.items()
              if method != "options" and integrated_function(operation) == ids.get("token")}
    report.expect(bool(suffixes) and routed == suffixes,
                  f"the token function's routes {sorted(routed)} are the suffixes its code serves "
                  f"{sorted(suffixes)}")
    return report


def gateway_responses(translated, values):
    """{response type: {header: value}} of the REST API's gateway responses, resolved."""
    evaluator = Evaluator(translated, values)
    out = {}
    for kind, response in rest_api_body(translated).get("x-amazon-apigateway-gateway-responses", {}).items():
        params = evaluator.resolve(response.get("responseParameters", {}))
        out[kind] = {key.split("gatewayresponse.header.", 1)[1].lower(): value
                     for key, value in params.items() if key.startswith("gatewayresponse.header.")}
    return out


def check_cors(sam_template, verbose):
    report = Report("cors")
    base = defaults(sam_template)
    for origins in ORIGIN_SAMPLES:
        values = {**base, "AllowedOrigins": origins}
        translated = translate_template.translate(copy.deepcopy(sam_template), dict(values))
        responses = gateway_responses(translated, values)
        report.expect({"UNAUTHORIZED", "ACCESS_DENIED", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(responses),
                      f"[{origins}] gateway responses for 401, 403, other 4xx and 5xx ({', '.join(sorted(responses))})")
        single = "," not in origins
        want_origin = f"'{origins}'" if single else "method.request.header.Origin"
        named = single and origins != "*"
        for kind, headers in sorted(responses.items()):
            origin = headers.get("access-control-allow-origin")
            credentials = headers.get("access-control-allow-credentials")
            report.expect(origin == want_origin, f"[{origins}] {kind}: Access-Control-Allow-Origin {origin}")
            report.expect(headers.get("vary") == "'Origin'", f"[{origins}] {kind}: Vary {headers.get('vary')}")
            report.expect(credentials == ("'true'" if named else None),
                          f"[{origins}] {kind}: Access-Control-Allow-Credentials {credentials} "
                          + ("(one named origin)" if named else "(none: " + ("*" if single else "an echoed Origin") + ")"))
            report.expect(not (credentials and (origin in ("'*'", "method.request.header.Origin"))),
                          f"[{origins}] {kind}: never credentials with * or an echoed Origin")
    check_wiring(report, sam_template, "CORS_ALLOWED_ORIGINS", "AllowedOrigins")
    return report


CHECKS = {
    "argon2": check_argon2,
    "cache": check_cache,
    "logging": check_logging,
    "execution-logs": check_execution_logs,
    "redeploy": check_redeploy,
    "sessions": check_sessions,
    "routes": check_routes,
    "cors": check_cors,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", default=str(ROOT / "template.yaml"))
    parser.add_argument("--verbose", "-v", action="store_true", help="print passing expectations too")
    parser.add_argument("checks", nargs="*", metavar="CHECK",
                        help=f"one of {', '.join(CHECKS)} (default: all)")
    args = parser.parse_args()
    unknown = [c for c in args.checks if c not in CHECKS]
    if unknown:
        parser.error(f"unknown check {unknown}; choose from {', '.join(CHECKS)}")

    sam_template = translate_template.load_template(args.template)
    names = args.checks or list(CHECKS)
    shared = None
    if {"logging", "execution-logs"} & set(names):
        shared = deployments(sam_template)
    failed = False
    for name in names:
        try:
            if name in ("logging", "execution-logs"):
                report = CHECKS[name](sam_template, args.verbose, shared)
            else:
                report = CHECKS[name](sam_template, args.verbose)
        except Unsupported as err:
            report = Report(name)
            report.fail(f"cannot evaluate: {err}")
        report.print(verbose=args.verbose)
        failed |= bool(report.failures)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
