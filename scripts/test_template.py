"""Template behaviour that linters cannot see, checked offline by translating and evaluating the template.

Each check is named on the command line (all of them by default) and prints what it evaluated:

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
  alarms          With the defaults and with AlarmTopicArn set: every AWS::CloudWatch::Alarm
                  notifies the topic on ALARM and OK when it is given and has no action without
                  it, treats missing data as not breaching and says what it means; every function
                  has METRICS_NAMESPACE, one value, the namespace the stack's own alarms read; the
                  API alarms name the stack's REST API and stage (ApiName, Stage), and the Lambda
                  alarms cover every function of the stack. (That the metrics they read are ones
                  the functions emit is tests/suite/template.rs, against shared::metrics.)
  redeploy        Two stack updates that differ only in AllowedOrigins (translated as
                  CloudFormation runs the transform, at two different times) create different
                  AWS::ApiGateway::Deployment resources, so the new gateway-response CORS headers
                  reach the stage; and the REST API's gateway responses do carry the new value.

The template's Rules, routes, preflights and gateway-response CORS are checked in Rust against
the code's own settings (tests/suite/template.rs); what stays here needs the SAM translation
(aws-sam-translator), which only Python has.

No AWS call is made. `--self-test` runs each check on templates broken on purpose and fails
unless every one is caught.

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

# AllowedOrigins has no default; sam deploy --guided asks for it.
SAMPLE_ORIGIN = "https://app.example.com"
ORIGIN_SAMPLES = [SAMPLE_ORIGIN, "*", "https://a.example.com,https://b.example.com"]
# AlarmTopicArn is empty by default (alarms without actions); a deployer may name a topic.
SAMPLE_TOPIC = "arn:aws:sns:us-east-1:123456789012:jwt-auth-alarms"
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


ACTIONS = ("AlarmActions", "OKActions", "InsufficientDataActions")


def alarm_metrics(props):
    """(id, namespace, metric name, dimensions) of each metric an alarm reads."""
    if "MetricName" in props:
        return [(None, props.get("Namespace"), props["MetricName"],
                 {d["Name"]: d["Value"] for d in props.get("Dimensions", [])})]
    found = []
    for query in props.get("Metrics", []):
        metric = query.get("MetricStat", {}).get("Metric")
        if metric:
            found.append((query.get("Id"), metric.get("Namespace"), metric.get("MetricName"),
                          {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}))
    return found


def check_alarms(sam_template, verbose):
    report = Report("alarms")
    pattern = sam_template.get("Parameters", {}).get("AlarmTopicArn", {}).get("AllowedPattern")
    for value in ("", SAMPLE_TOPIC):
        report.expect(pattern is not None and re.fullmatch(pattern, value) is not None,
                      f"AlarmTopicArn takes {value!r} (AllowedPattern {pattern})")
    with_topic = without_topic = 0
    base = defaults(sam_template)
    # Another stage name too, so that a stage written into an alarm, not referred to, fails.
    other = {**base, "AlarmTopicArn": SAMPLE_TOPIC, "StageName": "live"}
    for label, values in (("defaults", base), ("AlarmTopicArn and StageName set", other)):
        stack = Deployed(sam_template, values)
        topic = values.get("AlarmTopicArn", "")
        with_topic, without_topic = with_topic + bool(topic), without_topic + (not topic)
        functions = stack.of_type("AWS::Lambda::Function")
        namespaces = {}
        for function, resource in functions.items():
            variables = resource["Properties"].get("Environment", {}).get("Variables", {})
            report.expect("METRICS_NAMESPACE" in variables, f"[{label}] {function} has METRICS_NAMESPACE")
            namespaces[json.dumps(variables.get("METRICS_NAMESPACE"), sort_keys=True)] = function
        report.expect(len(namespaces) == 1,
                      f"[{label}] every function has the same METRICS_NAMESPACE ({', '.join(namespaces)})")
        own_namespace = json.loads(next(iter(namespaces))) if len(namespaces) == 1 else None
        apis = stack.of_type("AWS::ApiGateway::RestApi")
        stages = stack.of_type("AWS::ApiGateway::Stage")
        api_names = [r["Properties"].get("Name") for r in apis.values()]
        stage_names = [r["Properties"].get("StageName") for r in stages.values()]
        watched_functions = set()
        alarms = stack.of_type("AWS::CloudWatch::Alarm")
        report.expect(bool(alarms), f"[{label}] {len(alarms)} alarms")
        for alarm, resource in alarms.items():
            props = resource["Properties"]
            for action in ACTIONS:
                want = [topic] if topic and action != "InsufficientDataActions" else None
                got = props.get(action) or None
                report.expect(got == want, f"[{label}] {alarm}: {action} {got}, want {want}")
            report.expect(props.get("TreatMissingData") == "notBreaching",
                          f"[{label}] {alarm}: TreatMissingData {props.get('TreatMissingData')}")
            report.expect(len(str(props.get("AlarmDescription", ""))) >= 40,
                          f"[{label}] {alarm} says what it means and what to do (AlarmDescription)")
            metrics = alarm_metrics(props)
            report.expect(bool(metrics), f"[{label}] {alarm} reads {len(metrics)} metrics")
            expression = " ".join(q.get("Expression", "") for q in props.get("Metrics", []))
            for query_id, namespace, name, dimensions in metrics:
                where = f"[{label}] {alarm}: {namespace} {name}"
                if query_id is not None:
                    report.expect("METRICS()" in expression or re.search(rf"\b{query_id}\b", expression),
                                  f"{where} ({query_id}) is in the alarm's expression")
                if namespace == "AWS/ApiGateway":
                    report.expect(dimensions.get("ApiName") in api_names and len(api_names) == 1,
                                  f"{where}: ApiName {dimensions.get('ApiName')}, the REST API's Name "
                                  f"{api_names}")
                    report.expect(dimensions.get("Stage") in stage_names and len(stage_names) == 1,
                                  f"{where}: Stage {dimensions.get('Stage')}, the stage {stage_names}")
                elif namespace == "AWS/Lambda":
                    target = next(iter(references(dimensions.get("FunctionName"))), None)
                    report.expect(target in functions,
                                  f"{where}: FunctionName is {target}, a function of the stack")
                    watched_functions.add(target)
                else:
                    report.expect(namespace == own_namespace,
                                  f"{where}: the functions' METRICS_NAMESPACE ({own_namespace})")
        report.expect(watched_functions == set(functions),
                      f"[{label}] the Lambda alarms watch every function "
                      f"(missing {sorted(set(functions) - watched_functions)})")
    report.expect(with_topic and without_topic,
                  f"evaluated {with_topic} parameter sets with AlarmTopicArn and {without_topic} without")
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
    "logging": check_logging,
    "execution-logs": check_execution_logs,
    "redeploy": check_redeploy,
    "alarms": check_alarms,
}


def _without_logging_dependency(template):
    template["Resources"]["AuthApi"].pop("DependsOn")


def _warn_only_system_logs(template):
    function = next(r for r in template["Resources"].values() if r.get("Type") == "AWS::Serverless::Function")
    function["Properties"]["LoggingConfig"]["SystemLogLevel"] = "WARN"


def _without_always_deploy(template):
    template["Resources"]["AuthApi"]["Properties"].pop("AlwaysDeploy")


def _alarms(template):
    resources = template["Resources"].values()
    return [r["Properties"] for r in resources if r.get("Type") == "AWS::CloudWatch::Alarm"]


def _alarm_always_notifying(template):
    _alarms(template)[0]["AlarmActions"] = [{"Ref": "AlarmTopicArn"}]


def _alarm_without_ok_action(template):
    _alarms(template)[-1].pop("OKActions")


def _function_unwatched(template):
    alarm = next(a for a in _alarms(template) if "Metrics" in a)
    alarm["Metrics"] = [m for m in alarm["Metrics"]
                        if "UsersFunction" not in json.dumps(m.get("MetricStat", {}))]


def _function_without_namespace(template):
    """METRICS_NAMESPACE removed from Globals and every function, then given to one."""
    settings = [template.get("Globals", {}).get("Function", {})]
    settings += [r["Properties"] for r in template["Resources"].values()
                 if r.get("Type") == "AWS::Serverless::Function"]
    namespace = None
    for setting in settings:
        namespace = setting.get("Environment", {}).get("Variables", {}).pop("METRICS_NAMESPACE", namespace)
    settings[1].setdefault("Environment", {}).setdefault("Variables", {})["METRICS_NAMESPACE"] = namespace


def _alarm_on_another_namespace(template):
    alarm = next(a for a in _alarms(template)
                 if "MetricName" in a and not str(a.get("Namespace")).startswith("AWS/"))
    alarm["Namespace"] = "JwtAuth"


def _alarm_on_the_default_stage(template):
    alarm = next(a for a in _alarms(template) if a.get("Namespace") == "AWS/ApiGateway")
    for dimension in alarm["Dimensions"]:
        if dimension["Name"] == "Stage":
            dimension["Value"] = str(template["Parameters"]["StageName"]["Default"])


# Each check against a template broken on purpose: it must fail there, and pass on the real one.
BREAKAGES = {
    "logging": [("the API without its dependency on the account's logging role", _without_logging_dependency)],
    "execution-logs": [("a function whose SystemLogLevel drops REPORT lines", _warn_only_system_logs)],
    "redeploy": [("the API without AlwaysDeploy", _without_always_deploy)],
    "alarms": [
        ("an alarm that notifies the topic also when none is given", _alarm_always_notifying),
        ("an alarm without OK notifications", _alarm_without_ok_action),
        ("a function whose throttles no alarm reads", _function_unwatched),
        ("METRICS_NAMESPACE on one function only", _function_without_namespace),
        ("an alarm on a namespace the functions do not write", _alarm_on_another_namespace),
        ("the 5xx alarm on the default stage's name, not StageName's", _alarm_on_the_default_stage),
    ],
}
SHARED = ("logging", "execution-logs")


def self_test(sam_template):
    """Exit status: 0 when every check passes on the template and fails on its breakage."""
    failed = False
    for name, breakages in BREAKAGES.items():
        arguments = (deployments(sam_template),) if name in SHARED else ()
        passes = not CHECKS[name](sam_template, False, *arguments).failures
        for what, breakage in breakages:
            broken = copy.deepcopy(sam_template)
            breakage(broken)
            arguments = (deployments(broken),) if name in SHARED else ()
            caught = bool(CHECKS[name](broken, False, *arguments).failures)
            print(f"self-test {name}: {'ok' if passes else 'FAILS on the template'}, "
                  f"{'catches' if caught else 'MISSES'} {what}")
            failed |= not (caught and passes)
    return 1 if failed else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--self-test", action="store_true",
                        help="run each check on the template and on a breakage of it")
    parser.add_argument("--template", default=str(ROOT / "template.yaml"))
    parser.add_argument("--verbose", "-v", action="store_true", help="print passing expectations too")
    parser.add_argument("checks", nargs="*", metavar="CHECK",
                        help=f"one of {', '.join(CHECKS)} (default: all)")
    args = parser.parse_args()
    unknown = [c for c in args.checks if c not in CHECKS]
    if unknown:
        parser.error(f"unknown check {unknown}; choose from {', '.join(CHECKS)}")

    sam_template = translate_template.load_template(args.template)
    if args.self_test:
        sys.exit(self_test(sam_template))
    names = args.checks or list(CHECKS)
    shared = None
    if set(SHARED) & set(names):
        shared = deployments(sam_template)
    failed = False
    for name in names:
        try:
            if name in SHARED:
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
