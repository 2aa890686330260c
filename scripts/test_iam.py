"""Each function's IAM permissions equal what its code calls: no more, no less.

From the code: every method of a store trait implemented in shared/src/store/dynamodb.rs is
mapped to the DynamoDB operations it sends (`.put_item()` -> dynamodb:PutItem), following
calls to other functions of that file; each functions/<name>/src/*.rs is searched for calls of
those methods through its `Arc<dyn Trait>` fields (`app.store.create(..)`). From the translated
template: the statements of the role of the function built from binary <name>. The two sets
of DynamoDB actions must be equal, on the table's ARN, with no wildcard resource; everything
else must be the function's own logging. The authorizer must need and get nothing but logging,
and its crate must not depend on the AWS SDK (`cargo tree`), which is what justifies that.

Usage: python scripts/test_iam.py [--translated translated.json]
Prints one line per function and `iam: N functions checked, M mismatches`; exits 1 on a mismatch.
"""

import argparse
import json
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

STORE_SOURCE = ROOT / "shared" / "src" / "store" / "dynamodb.rs"
FUNCTIONS = ROOT / "functions"
STORE_TYPE = "DynamoUserStore"
LOGGING_ACTIONS = {"logs:createloggroup", "logs:createlogstream", "logs:putlogevents"}
BASIC_EXECUTION_POLICY = "service-role/AWSLambdaBasicExecutionRole"
# The authorizer has no AWS SDK; this is the crate the check is about.
SDK_FREE_FUNCTIONS = {"authorizer"}


# --- Rust source -----------------------------------------------------------------------------

def strip_comments_and_strings(source):
    """The source with comments removed and string/char literal contents blanked, offsets kept."""
    out = []
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        if source.startswith("//", i):
            j = source.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif source.startswith("/*", i):
            j = source.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", source[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', source[i:i + 10]) and not source[i - 1:i].isalnum():
            hashes = re.match(r'r(#*)"', source[i:]).group(1)
            end = source.find('"' + hashes, i + 2 + len(hashes))
            end = n if end < 0 else end + 1 + len(hashes)
            out.append('""' + re.sub(r"[^\n]", " ", source[i + 2:end]))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and source[j] != '"':
                j += 2 if source[j] == "\\" else 1
            out.append('"' + re.sub(r"[^\n]", " ", source[i + 1:j]) + '"')
            i = j + 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", source[i:i + 4]):
            m = re.match(r"'(\\.|[^\\'])'", source[i:i + 4])
            out.append("' " + " " * (len(m.group(0)) - 3) + "'")
            i += len(m.group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out)


def block_end(code, open_brace):
    """Index just past the brace that closes the one at `open_brace`."""
    depth = 0
    for i in range(open_brace, len(code)):
        if code[i] == "{":
            depth += 1
        elif code[i] == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    raise ValueError("unbalanced braces")


def functions_in(code):
    """{name: body} for every fn with a body in `code` (methods and free functions alike)."""
    fns = {}
    for m in re.finditer(r"\bfn\s+(\w+)\b", code):
        brace = code.find("{", m.end())
        semicolon = code.find(";", m.end())
        if brace < 0 or (0 <= semicolon < brace):
            continue  # a declaration without a body (trait item)
        fns.setdefault(m.group(1), code[brace:block_end(code, brace)])
    return fns


def dynamodb_operations():
    """DynamoDB's operation names, from botocore's service model (offline)."""
    import botocore.session

    return set(botocore.session.get_session().get_service_model("dynamodb").operation_names)


def pascal(snake):
    return "".join(part[:1].upper() + part[1:] for part in snake.split("_"))


def store_method_actions():
    """{trait: {method: {"dynamodb:Op", ...}}} for the DynamoDB store's trait impls."""
    code = strip_comments_and_strings(STORE_SOURCE.read_text())
    operations = dynamodb_operations()
    all_fns = functions_in(code)

    direct = {}
    for name, body in all_fns.items():
        ops = set()
        for call in re.finditer(r"\bclient\s*\.\s*(\w+)\s*\(", body):
            op = pascal(call.group(1))
            if op in operations:
                ops.add(f"dynamodb:{op}")
        direct[name] = ops

    def reachable(name, seen):
        ops = set(direct.get(name, ()))
        body = all_fns.get(name, "")
        for call in re.finditer(r"(?:\bself\s*\.\s*|(?<![.\w]))(\w+)\s*\(", body):
            callee = call.group(1)
            if callee in all_fns and callee not in seen:
                ops |= reachable(callee, seen | {callee})
        return ops

    traits = {}
    impl = re.compile(r"\bimpl\s+(\w+)\s+for\s+" + STORE_TYPE + r"\b")
    for m in impl.finditer(code):
        brace = code.find("{", m.end())
        methods = functions_in(code[brace:block_end(code, brace)])
        traits[m.group(1)] = {name: reachable(name, {name}) for name in methods}
    if not traits:
        sys.exit(f"no `impl Trait for {STORE_TYPE}` found in {STORE_SOURCE.relative_to(ROOT)}")
    return traits


def function_actions(name, traits):
    """DynamoDB actions the function `name` calls through its store-trait fields."""
    code = "\n".join(strip_comments_and_strings(p.read_text())
                     for p in sorted((FUNCTIONS / name / "src").rglob("*.rs")))
    actions, calls = set(), []
    for field in re.finditer(r"\b(\w+)\s*:\s*Arc\s*<\s*dyn\s+(\w+)\s*>", code):
        field_name, trait = field.groups()
        for method, ops in traits.get(trait, {}).items():
            if re.search(rf"\.\s*{field_name}\s*\.\s*{method}\s*\(", code):
                actions |= ops
                calls.append(f"{field_name}.{method}")
    # Direct SDK use in the function crate itself counts too.
    operations = dynamodb_operations()
    for call in re.finditer(r"\bclient\s*\.\s*(\w+)\s*\(", code):
        if pascal(call.group(1)) in operations:
            actions.add(f"dynamodb:{pascal(call.group(1))}")
            calls.append(f"client.{call.group(1)}")
    return actions, sorted(set(calls))


def sdk_crates(package):
    """Crates named aws-* in the normal dependency tree of `package`."""
    out = subprocess.run(["cargo", "tree", "-p", package, "-e", "normal", "--prefix", "none"],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return sorted({line.split()[0] for line in out.splitlines() if line.startswith("aws-")})


# --- template --------------------------------------------------------------------------------

def as_list(value):
    return value if isinstance(value, list) else [value]


def get_att_target(value, resources, resource_type):
    """The logical id if `value` is {"Fn::GetAtt": [id, "Arn"]} on a resource of that type."""
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        target = value["Fn::GetAtt"]
        target = target.split(".", 1) if isinstance(target, str) else target
        if target[1] == "Arn" and resources.get(target[0], {}).get("Type") == resource_type:
            return target[0]
    return None


def has_wildcard(value):
    """A literal `*` anywhere in the resource (a GetAtt names one resource and has none)."""
    return "*" in json.dumps(value)


def role_statements(role_id, resources):
    """(statements, managed policy ARNs) granted to the role, inline or attached."""
    role = resources[role_id]["Properties"]
    statements = []
    for policy in role.get("Policies", []):
        statements += as_list(policy["PolicyDocument"]["Statement"])
    for resource in resources.values():
        if resource.get("Type") in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            if {"Ref": role_id} in resource["Properties"].get("Roles", []):
                statements += as_list(resource["Properties"]["PolicyDocument"]["Statement"])
    return statements, role.get("ManagedPolicyArns", [])


def check_function(name, logical_id, translated, expected, problems):
    resources = translated["Resources"]
    function = resources[logical_id]["Properties"]
    role_id = get_att_target(function.get("Role"), resources, "AWS::IAM::Role")
    if not role_id:
        problems.append(f"{name}: role is not a role of this template: {function.get('Role')}")
        return set()
    statements, managed = role_statements(role_id, resources)
    for arn in managed:
        if BASIC_EXECUTION_POLICY not in json.dumps(arn):
            problems.append(f"{name}: managed policy beyond basic logging: {arn}")
    granted = {}  # lower-case action -> as written
    for st in statements:
        if st.get("Effect") != "Allow" or "NotAction" in st or "NotResource" in st:
            problems.append(f"{name}: statement is not a plain Allow: {st}")
            continue
        actions = {a.lower(): a for a in as_list(st["Action"])}
        res = as_list(st["Resource"])
        wild = [r for r in res if has_wildcard(r)]
        if wild:
            problems.append(f"{name}: wildcard resource {wild}")
        if set(actions) <= LOGGING_ACTIONS:
            if not all(get_att_target(r, resources, "AWS::Logs::LogGroup") for r in res):
                problems.append(f"{name}: logging allowed beyond its log group: {res}")
        elif all(a.startswith("dynamodb:") for a in actions):
            if not all(get_att_target(r, resources, "AWS::DynamoDB::Table") for r in res):
                problems.append(f"{name}: DynamoDB actions on something other than a table: {res}")
            granted.update(actions)
        else:
            problems.append(f"{name}: actions beyond logging and DynamoDB: {sorted(actions.values())}")
    want = {a.lower(): a for a in expected}
    if set(granted) != set(want):
        missing = sorted(want[a] for a in set(want) - set(granted))
        extra = sorted(granted[a] for a in set(granted) - set(want))
        problems.append(f"{name}: code calls {sorted(expected)}; role grants "
                        f"{sorted(granted.values())} (missing {missing}, extra {extra})")
    return set(granted.values())


def function_logical_ids(template):
    """{binary name: logical id} from the SAM template's BuildProperties.Binary."""
    ids = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") == "AWS::Serverless::Function":
            binary = resource.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
            if binary:
                ids[binary] = logical_id
    return ids


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", default=str(ROOT / "template.yaml"))
    parser.add_argument("--translated", help="translated template JSON (default: translate now)")
    args = parser.parse_args()

    import translate_template

    sam_template = translate_template.load_template(args.template)
    ids = function_logical_ids(sam_template)
    if args.translated:
        translated = json.loads(pathlib.Path(args.translated).read_text())
    else:
        translated = translate_template.translate(translate_template.load_template(args.template))

    traits = store_method_actions()
    problems = []
    names = sorted(p.name for p in FUNCTIONS.iterdir() if (p / "Cargo.toml").exists())
    for name in names:
        before = len(problems)
        expected, calls = function_actions(name, traits)
        if name not in ids:
            problems.append(f"{name}: no AWS::Serverless::Function builds binary {name!r}")
            continue
        granted = check_function(name, ids[name], translated, expected, problems)
        if name in SDK_FREE_FUNCTIONS:
            if expected:
                problems.append(f"{name}: must call no AWS API, but calls {sorted(expected)}")
            crates = sdk_crates(name)
            if crates:
                problems.append(f"{name}: depends on AWS SDK crates {crates}")
        status = "ok" if len(problems) == before else "MISMATCH"
        shown = ", ".join(sorted(expected)) or "logging only"
        print(f"  {status:8} {name:11} {ids[name]:20} calls {', '.join(calls) or 'nothing'}"
              f" -> {shown}" + ("" if granted or not expected else " (granted none)"))
    for problem in problems:
        print(f"  error: {problem}")
    mismatched = len({p.split(":", 1)[0] for p in problems})
    print(f"iam: {len(names)} functions checked, {mismatched} mismatches")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
