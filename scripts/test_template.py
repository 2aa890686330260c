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


CHECKS = {
    "argon2": check_argon2,
    "cache": check_cache,
    "logging": check_logging,
    "execution-logs": check_execution_logs,
    "redeploy": check_redeploy,
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
