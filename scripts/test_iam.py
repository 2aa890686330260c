"""Each function's IAM permissions equal what its code calls: no more, no less, item by item.

From the code (shared/src/store/dynamodb.rs): every method of a store trait implemented for
DynamoUserStore is mapped to the DynamoDB calls it sends, following calls to other functions of
that file. A call is its operation (`.put_item()` -> dynamodb:PutItem), the key prefix of its key
helper (`user_key` formats `{USER_PREFIX}...`, so USER#), the attributes it names (projection,
update and condition expressions, `#name` placeholders resolved, a fn of the file returning one
of several constant expressions read as all of them, item attributes) and its ReturnValues.
Transactions have no IAM action of their own ("Using IAM with DynamoDB transactions", DynamoDB
Developer Guide): in a fn that sends `client.transact_write_items()` or
`client.transact_get_items()`, or returns a `TransactWriteItem` / `TransactGetItem` (such as
`put_refresh`), each `Put::builder()` / `Update::builder()` / `Delete::builder()` /
`ConditionCheck::builder()` / `Get::builder()` up to its `.build()` is one call of PutItem /
UpdateItem / DeleteItem / ConditionCheckItem / GetItem, read like a plain call, with
dynamodb:EnclosingOperation set. A ConditionCheckItem names its attributes (its condition).
Each functions/<name>/src/*.rs is searched for calls of those methods through its
struct fields: an `Arc<dyn Trait>` field (`app.store.create(..)`), or a field whose type is a
struct of shared/src holding one (`app.throttle.reserve(..)`, where `LoginThrottle::reserve`
calls `self.attempts.reserve(..)`), followed through any depth of such structs.

From the translated template: the statements of the role of the function built from binary
<name>. Then, with the request context DynamoDB puts into each call (dynamodb:LeadingKeys = the
partition key; dynamodb:Attributes = the attributes named, key included; dynamodb:Select on reads,
ALL_ATTRIBUTES without a projection; dynamodb:ReturnValues on writes, NONE by default), the
role's statements are evaluated as IAM does (some Allow applies and no Deny does; an unknown
condition operator is an error, never a pass):
  - every call of the code is allowed, with dynamodb:Select and dynamodb:ReturnValues in its
    context and without them: AWS's example policies require them with StringEqualsIfExists
    ("Using IAM policy conditions for fine-grained access control", DynamoDB Developer Guide),
    and nothing documents whether a transaction's item carries them at all;
  - the same call on any other key prefix (the other prefixes of the code, and one that no code
    uses) is denied;
  - a call that names its attributes (a projected GetItem, any UpdateItem or ConditionCheckItem)
    is denied with one more attribute; a projected GetItem is denied without its projection; an
    UpdateItem or ConditionCheckItem is denied with ReturnValues ALL_OLD or ALL_NEW (they return
    attributes the grant does not name);
  - a variant that another call of the same function needs anyway (same action and prefix, no
    attribute beyond that call's, or that call reads whole items) is no probe: denying it would
    deny that call;
  - a function that reads items of a prefix holding a secret (USER#: password_hash) only in
    part is denied the whole item, by a plain read (Select = ALL_ATTRIBUTES) and by a read in a
    transaction that carries neither Select nor Attributes;
  - the set of DynamoDB actions granted equals the set called, on the table's ARN, with no
    wildcard resource; everything else is the function's own logging.
The authorizer must need and get nothing but logging, and its crate must not depend on the AWS SDK
(`cargo tree`), which is what justifies that.

The signing keys (issue 11): the key set's secret is the one the custom resource of binary
`keyset` names (its SecretId); the template creates it empty (no SecretString, no
GenerateSecretString) and holds no private key material anywhere (no PEM, no JWK `d`, no
Secrets Manager dynamic reference). Only two roles reach Secrets Manager, each on that secret
alone (a Ref to it, no wildcard): `keyset` exactly the calls its code makes (its own
`client.get_secret_value()` -> secretsmanager:GetSecretValue, and the methods of
shared/src/keystore.rs it calls on a `store`, each standing for the calls in its body), and
`token` exactly secretsmanager:GetSecretValue, read from its code the same way, its JWT_SIGNING_KEY_SECRET naming the secret and
JWT_SIGNING_KEY_ID the custom resource's SigningKeyId. The verifiers (authorizer, protected,
jwks) get JWT_PUBLIC_KEYS = the custom resource's Jwks, and no secret: no JWT_SECRET,
JWT_SIGNING_KEY*, no reference to a secret in their properties, no Secrets Manager permission.

AWS documents the condition keys in "Using IAM policy conditions for fine-grained access
control" (DynamoDB Developer Guide): LeadingKeys needs ForAllValues; Select "always has a value
(ALL_ATTRIBUTES, unless otherwise specified)" on reads, so a read of the whole item is denied by
the StringEqualsIfExists clause that "ensures that the app must always provide a list of specific
attributes to act upon and that the app can't request all attributes"; ReturnValues "always has
a value (NONE unless otherwise specified)"; dynamodb:Attributes must list the key attributes.

Usage: python scripts/test_iam.py [--template template.yaml] [--translated translated.json]
Prints one line per function and `iam: N functions checked, M mismatches`; exits 1 on a mismatch.
"""

import argparse
import dataclasses
import fnmatch
import json
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

SHARED_SOURCE = ROOT / "shared" / "src"
STORE_SOURCE = SHARED_SOURCE / "store" / "dynamodb.rs"
FUNCTIONS = ROOT / "functions"
STORE_TYPE = "DynamoUserStore"
LOGGING_ACTIONS = {"logs:createloggroup", "logs:createlogstream", "logs:putlogevents"}
BASIC_EXECUTION_POLICY = "service-role/AWSLambdaBasicExecutionRole"
# The authorizer has no AWS SDK; this is the crate the check is about.
SDK_FREE_FUNCTIONS = {"authorizer", "jwks"}
# The binary of the key-set custom resource, the one function that writes the signing keys.
KEY_SET_FUNCTION = "keyset"
# The functions that may read the private keys, and what they may call; the key-set function's
# calls are read from its code.
SECRET_READERS = {"token": {"secretsmanager:GetSecretValue"}}
# The functions that only verify tokens: public keys only.
VERIFIERS = {"authorizer", "protected", "jwks"}
# Environment variables that carry or locate private key material.
SECRET_VARIABLES = {"JWT_SECRET", "JWT_SIGNING_KEY", "JWT_SIGNING_KEY_SECRET", "JWT_SIGNING_KEY_ID"}
# A key prefix no code uses, to prove a grant is limited to the prefixes named.
FOREIGN_PREFIX = "OTHER#"
# An attribute no code names.
FOREIGN_ATTRIBUTE = "unnamed_attribute"
# Words of DynamoDB's expression grammar, not attribute names.
EXPRESSION_WORDS = {
    "set", "add", "remove", "delete", "and", "or", "not", "between", "in",
    "attribute_exists", "attribute_not_exists", "attribute_type", "begins_with", "contains",
    "size", "if_not_exists", "list_append",
}
READ_OPERATIONS = {"GetItem", "BatchGetItem", "Query", "Scan"}
WRITE_OPERATIONS = {"PutItem", "UpdateItem", "DeleteItem"}
# The items of a transaction (`Put::builder()` ... `.build()`): each is authorized as the
# operation it stands for; TransactWriteItems and TransactGetItems have no IAM action of their
# own ("Using IAM with DynamoDB transactions", DynamoDB Developer Guide).
TRANSACTION_PARTS = {
    "Put": ("PutItem", "TransactWriteItems"),
    "Update": ("UpdateItem", "TransactWriteItems"),
    "Delete": ("DeleteItem", "TransactWriteItems"),
    "ConditionCheck": ("ConditionCheckItem", "TransactWriteItems"),
    "Get": ("GetItem", "TransactGetItems"),
}
TRANSACTIONS = {"TransactWriteItems": "TransactWriteItem", "TransactGetItems": "TransactGetItem"}
# Key prefixes whose items hold a secret: a function that reads them only in part must never be
# allowed the whole item.
SECRET_ATTRIBUTES = {"USER#": "password_hash"}
# Request options DynamoDB documents for the plain calls (Select on reads, ReturnValues on
# writes) but not for the items of a transaction: a grant must allow a transaction's item
# whether or not its request context carries them.
REQUEST_OPTIONS = ("dynamodb:Select", "dynamodb:ReturnValues")


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


class Source:
    """A Rust file: its text with comments and literals blanked (`code`, for structure) and
    the raw text at the same offsets (`raw`, for the literals' contents)."""

    def __init__(self, path):
        self.path = path
        self.raw = path.read_text()
        self.code = strip_comments_and_strings(self.raw)

    def literal_at(self, quote):
        """The contents of the plain string literal whose opening quote is at `quote`."""
        end = self.code.index('"', quote + 1)
        return self.raw[quote + 1:end].encode().decode("unicode_escape")


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


def functions_in(code, start=0, end=None):
    """{name: (body start, body end)} for every fn with a body in code[start:end]."""
    end = len(code) if end is None else end
    fns = {}
    for m in re.finditer(r"\bfn\s+(\w+)\b", code[start:end]):
        at = start + m.end()
        brace = code.find("{", at)
        semicolon = code.find(";", at)
        if brace < 0 or (0 <= semicolon < brace):
            continue  # a declaration without a body (trait item)
        fns.setdefault(m.group(1), (brace, block_end(code, brace)))
    return fns


def dynamodb_operations():
    """DynamoDB's operation names, from botocore's service model (offline)."""
    import botocore.session

    return set(botocore.session.get_session().get_service_model("dynamodb").operation_names)


def pascal(snake):
    return "".join(part[:1].upper() + part[1:] for part in snake.split("_"))


def upper_snake(camel):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).upper()


@dataclasses.dataclass(frozen=True)
class Call:
    """One DynamoDB request the code sends, as IAM sees it."""

    operation: str              # GetItem
    prefix: str                 # USER#
    key: str                    # the partition key attribute, pk
    attributes: frozenset       # the attributes the request names, key excluded
    scoped: bool                # the request names its attributes (projection, UpdateItem,
                                # ConditionCheckItem)
    return_values: str | None   # writes: NONE unless set
    origin: str                 # where in the code: find_profile
    enclosing: str | None = None  # TransactWriteItems or TransactGetItems for a transaction's item

    @property
    def action(self):
        return f"dynamodb:{self.operation}"

    def context(self, prefix=None, extra=(), select=None, return_values=None, projected=True,
                options=True):
        """The request context of this call, or of a variant of it; without Select and
        ReturnValues when `options` is false."""
        ctx = {"dynamodb:LeadingKeys": [(prefix or self.prefix) + "alice"]}
        if self.enclosing:
            ctx["dynamodb:EnclosingOperation"] = self.enclosing
        attributes = sorted(self.attributes | {self.key} | set(extra))
        if self.operation in READ_OPERATIONS:
            if self.scoped and projected:
                ctx["dynamodb:Attributes"] = attributes
                ctx["dynamodb:Select"] = select or "SPECIFIC_ATTRIBUTES"
            else:
                ctx["dynamodb:Select"] = select or "ALL_ATTRIBUTES"
        else:
            ctx["dynamodb:Attributes"] = attributes
            ctx["dynamodb:ReturnValues"] = return_values or self.return_values or "NONE"
        if not options:
            for key in REQUEST_OPTIONS:
                ctx.pop(key, None)
        return ctx

    def covers(self, action, ctx):
        """Whether the request `ctx` asks for nothing this call does not need already: the same
        action and key prefix, and for a call that names its attributes no other attribute (and
        a projection on a read); a whole-item read covers every read of its prefix."""
        own = self.context()
        if action != self.action or ctx.get("dynamodb:LeadingKeys") != own["dynamodb:LeadingKeys"]:
            return False
        within = set(ctx.get("dynamodb:Attributes", [])) <= set(own.get("dynamodb:Attributes", []))
        if self.operation in READ_OPERATIONS:
            return not self.scoped or (ctx.get("dynamodb:Select") == "SPECIFIC_ATTRIBUTES" and within)
        if ctx.get("dynamodb:ReturnValues") != own["dynamodb:ReturnValues"]:
            return False
        return not self.scoped or within


class StoreModel:
    """What each store-trait method of the DynamoDB store sends."""

    def __init__(self):
        self.source = Source(STORE_SOURCE)
        self.operations = dynamodb_operations()
        self.constants = {
            m.group(1): self.source.literal_at(m.start(2))
            for m in re.finditer(r"\bconst\s+(\w+)\s*:\s*&\s*(?:'static\s+)?str\s*=\s*(\")",
                                 self.source.code)
        }
        self.fns = functions_in(self.source.code)
        self.key_helpers = {name: self._helper_prefix(name) for name in self.fns}
        self.key_helpers = {k: v for k, v in self.key_helpers.items() if v is not None}
        self.traits = self._trait_methods()

    def _string(self, expression_start):
        """A string literal or a constant's value at `expression_start` (after `(` or `,`)."""
        code = self.source.code
        m = re.compile(r"\s*(\"|(\w+))").match(code, expression_start)
        if not m:
            return None
        if m.group(1) == '"':
            return self.source.literal_at(m.start(1))
        return self.constants.get(m.group(2))

    def _strings(self, expression_start):
        """The values the string expression at `expression_start` can take: a literal, a
        constant, or a call of a fn of this file whose body yields literals or constants (such
        as `user_epoch_condition(..)`, which picks one of two conditions). Empty if none."""
        code = self.source.code
        m = re.compile(r"\s*(\w+)\s*\(").match(code, expression_start)
        if not m or m.group(1) not in self.fns:
            value = self._string(expression_start)
            return [] if value is None else [value]
        start, end = self.fns[m.group(1)]
        values = [self.constants[w] for w in re.findall(r"\b\w+\b", code[start:end]) if w in self.constants]
        # Literal contents are blanked in `code`, so its quotes pair up: every other one opens.
        quotes = [start + i for i, c in enumerate(code[start:end]) if c == '"']
        values += [self.source.literal_at(q) for q in quotes[0::2]]
        return values

    def _helper_prefix(self, name):
        """The key prefix a helper such as `user_key` formats, if it is one."""
        start, end = self.fns[name]
        body = self.source.code[start:end]
        m = re.search(r"format!\s*\(\s*\"", body)
        if not m or "AttributeValue" not in body:
            return None
        text = self.source.literal_at(start + m.end() - 1)
        lead = re.match(r"\{(\w+)\}|([^{]+)", text)
        if not lead:
            return None
        prefix = self.constants.get(lead.group(1)) if lead.group(1) else lead.group(2)
        return prefix if prefix and prefix.endswith("#") else None

    def _calls_in(self, name, start, end):
        """The Calls sent in the fn body code[start:end] itself: each `client.op()` chain up to
        its `.send()`, and each item of a transaction, `Put::builder()` (`Update`, `Delete`,
        `ConditionCheck`, `Get`) up to its `.build()`, in a fn that sends the transaction
        (`client.transact_write_items()`) or returns one of its items (`-> .. TransactWriteItem`)."""
        code = self.source.code
        calls = []
        sent = set()
        for m in re.finditer(r"\bclient\s*\.\s*(\w+)\s*\(\s*\)", code[start:end]):
            operation = pascal(m.group(1))
            if operation not in self.operations:
                continue
            if operation in TRANSACTIONS:
                sent.add(operation)
                continue
            chain_start = start + m.end()
            send = code.find(".send()", chain_start, end)
            chain_end = end if send < 0 else send
            calls.append(self._call(name, operation, chain_start, chain_end))
        headers = list(re.finditer(rf"\bfn\s+{name}\b", code[:start]))
        header = code[headers[-1].start():start] if headers else ""
        returned = {op for op, item in TRANSACTIONS.items() if re.search(rf"\b{item}\b", header)}
        parts = r"\b(" + "|".join(TRANSACTION_PARTS) + r")\s*::\s*builder\s*\(\s*\)"
        for m in re.finditer(parts, code[start:end]):
            operation, enclosing = TRANSACTION_PARTS[m.group(1)]
            if enclosing not in sent | returned:
                sys.exit(f"{STORE_SOURCE.relative_to(ROOT)}: {name}: {m.group(1)}::builder() in a fn that "
                         f"neither sends {enclosing} nor returns a {TRANSACTIONS[enclosing]}")
            part_start = start + m.end()
            build = code.find(".build()", part_start, end)
            if build < 0:
                sys.exit(f"{STORE_SOURCE.relative_to(ROOT)}: {name}: {m.group(1)}::builder() without .build()")
            calls.append(self._call(name, operation, part_start, build, enclosing))
        return calls

    def _call(self, origin, operation, start, end, enclosing=None):
        code = self.source.code
        chain = code[start:end]
        key_attr, prefix = None, None
        for m in re.finditer(r"\.\s*(?:key|item)\s*\(\s*(\w+)\s*,\s*(\w+)\s*\(", chain):
            if m.group(2) in self.key_helpers:
                key_attr = self.constants.get(m.group(1), m.group(1))
                prefix = self.key_helpers[m.group(2)]
        if prefix is None:
            sys.exit(f"{STORE_SOURCE.relative_to(ROOT)}: {origin}: {operation} has no key helper "
                     f"this check understands (`.key(PARTITION_KEY, user_key(..))`)")
        names = {}
        for m in re.finditer(r"\.\s*expression_attribute_names\s*\(", chain):
            placeholder = self._string(start + m.end())
            after = code.index(",", start + m.end())
            names[placeholder] = self._string(after + 1)
        attributes, scoped = set(), False
        for method in ("projection_expression", "update_expression", "condition_expression"):
            for m in re.finditer(rf"\.\s*{method}\s*\(", chain):
                expressions = self._strings(start + m.end())
                if not expressions:
                    sys.exit(f"{origin}: {method} is not a literal, a constant or a fn of "
                             f"{STORE_SOURCE.name} returning them")
                for expression in expressions:
                    attributes |= expression_attributes(expression, names)
                scoped |= method != "condition_expression"
        if re.search(r"\.\s*return_values_on_condition_check_failure\s*\(", chain):
            sys.exit(f"{origin}: {operation} sets ReturnValuesOnConditionCheckFailure, which this "
                     f"check does not model")
        for m in re.finditer(r"\.\s*item\s*\(", chain):
            item = self._string(start + m.end())
            if item is not None:
                attributes.add(item)
        return_values = None
        m = re.search(r"\.\s*return_values\s*\([^)]*ReturnValue::(\w+)", chain)
        if m:
            return_values = upper_snake(m.group(1))
        return Call(
            operation=operation,
            prefix=prefix,
            key=key_attr,
            attributes=frozenset(attributes - {key_attr}),
            # An update names what it writes; a condition check what it reads, and writes nothing.
            scoped=scoped or operation in ("UpdateItem", "ConditionCheckItem"),
            return_values=return_values if operation in WRITE_OPERATIONS else None,
            origin=origin,
            enclosing=enclosing,
        )

    def reachable(self, name, start, end, seen):
        """The Calls of the fn body code[start:end] and of the file's fns it calls."""
        calls = self._calls_in(name, start, end)
        for m in re.finditer(r"(?:\bself\s*\.\s*|(?<![.\w]))(\w+)\s*\(", self.source.code[start:end]):
            callee = m.group(1)
            if callee in self.fns and callee not in seen:
                seen = seen | {callee}
                calls += self.reachable(callee, *self.fns[callee], seen)
        return calls

    def _trait_methods(self):
        """{trait: {method: [Call]}} for `impl Trait for DynamoUserStore`."""
        code = self.source.code
        traits = {}
        for m in re.finditer(r"\bimpl\s+(\w+)\s+for\s+" + STORE_TYPE + r"\b", code):
            brace = code.find("{", m.end())
            methods = functions_in(code, brace, block_end(code, brace))
            traits[m.group(1)] = {name: self.reachable(name, start, end, {name})
                                  for name, (start, end) in methods.items()}
        if not traits:
            sys.exit(f"no `impl Trait for {STORE_TYPE}` found in {STORE_SOURCE.relative_to(ROOT)}")
        return traits

    def all_calls(self):
        return [c for methods in self.traits.values() for calls in methods.values() for c in calls]


def expression_attributes(expression, names):
    """Top-level attribute names of a DynamoDB expression, `#placeholders` resolved."""
    found = set()
    for token in re.findall(r"[#:]?[A-Za-z_][\w]*", expression):
        if token.startswith(":"):
            continue
        if token.startswith("#"):
            if token not in names:
                sys.exit(f"expression {expression!r}: {token} has no expression_attribute_names")
            found.add(names[token])
        elif token.lower() not in EXPRESSION_WORDS:
            found.add(token)
    return found


# --- who calls what ----------------------------------------------------------------------------

FIELD = re.compile(r"\b(\w+)\s*:\s*(?:Arc\s*<\s*)?(dyn\s+)?(\w+)\s*>?\s*[,}]")


def struct_fields(source):
    """{struct: {field: (is_dyn, type)}} for every struct with named fields in `source`."""
    code = source.code
    structs = {}
    for m in re.finditer(r"\bstruct\s+(\w+)\s*(?:<[^>{]*>)?\s*\{", code):
        end = block_end(code, m.end() - 1)
        body = code[m.end():end]
        structs[m.group(1)] = {f.group(1): (bool(f.group(2)), f.group(3)) for f in FIELD.finditer(body)}
    return structs


def inherent_methods(source, struct):
    """{method: body} of `impl Struct { .. }` blocks (not trait impls) in `source`."""
    code = source.code
    methods = {}
    for m in re.finditer(r"\bimpl\s*(?:<[^>{]*>)?\s*" + struct + r"\s*(?:<[^>{]*>)?\s*\{", code):
        end = block_end(code, m.end() - 1)
        for name, (start, stop) in functions_in(code, m.end() - 1, end).items():
            methods[name] = code[start:stop]
    return methods


class CallGraph:
    """Which store-trait methods a call through a field of a given type reaches."""

    def __init__(self, traits):
        self.traits = traits  # {trait: {method: [Call]}}
        self.wrappers = {}    # {struct: ({field: (is_dyn, type)}, {method: body})}
        sources = [Source(p) for p in sorted(SHARED_SOURCE.rglob("*.rs"))]
        fields = {}
        for source in sources:
            for struct, struct_fields_ in struct_fields(source).items():
                fields.setdefault(struct, ({}, source))[0].update(struct_fields_)
        # A wrapper is a struct holding a store trait or another wrapper; found to a fixpoint.
        changed = True
        while changed:
            changed = False
            for struct, (own, _) in fields.items():
                if struct in self.wrappers or struct in traits:
                    continue
                if any(t in traits or t in self.wrappers for _, t in own.values()):
                    methods = {}
                    for source in sources:
                        methods.update(inherent_methods(source, struct))
                    self.wrappers[struct] = (own, methods)
                    changed = True

    def reached(self, type_name, method, seen=frozenset()):
        """[(path, Call)] for `field.method(..)` on a field of `type_name`."""
        if type_name in self.traits:
            return [(f"{method}", c) for c in self.traits[type_name].get(method, [])]
        if type_name not in self.wrappers or (type_name, method) in seen:
            return []
        seen = seen | {(type_name, method)}
        own, methods = self.wrappers[type_name]
        body = methods.get(method, "")
        out = []
        for m in re.finditer(r"\bself\s*\.\s*(\w+)\s*\.\s*(\w+)\s*\(", body):
            field, inner = m.groups()
            if field in own:
                for path, call in self.reached(own[field][1], inner, seen):
                    out.append((f"{field}.{path}", call))
        for m in re.finditer(r"\bself\s*\.\s*(\w+)\s*\(", body):
            if m.group(1) in methods:
                out += self.reached(type_name, m.group(1), seen)
        return out


def function_calls(name, graph):
    """[(path, Call)]: what the function `name` sends, through its struct fields."""
    sources = [Source(p) for p in sorted((FUNCTIONS / name / "src").rglob("*.rs"))]
    found = []
    for source in sources:
        for struct, fields in struct_fields(source).items():
            for field, (_, type_name) in fields.items():
                if type_name not in graph.traits and type_name not in graph.wrappers:
                    continue
                for src in sources:
                    for m in re.finditer(rf"\.\s*{field}\s*\.\s*(\w+)\s*\(", src.code):
                        for path, call in graph.reached(type_name, m.group(1)):
                            found.append((f"{field}.{m.group(1)}" + (
                                "" if path == m.group(1) else f" -> {path}"), call))
    # Direct SDK use in the function crate itself counts too, as a whole-table grant it cannot
    # narrow: the check then demands what it cannot prove and fails.
    operations = dynamodb_operations()
    for source in sources:
        for m in re.finditer(r"\bclient\s*\.\s*(\w+)\s*\(", source.code):
            if pascal(m.group(1)) in operations:
                sys.exit(f"{name}: calls DynamoDB directly (client.{m.group(1)}); "
                         f"this check follows only the store traits")
    unique = {}
    for path, call in found:
        unique.setdefault((path, call), None)
    return list(unique)


def sdk_crates(package):
    """Crates named aws-* in the normal dependency tree of `package`."""
    out = subprocess.run(["cargo", "tree", "-p", package, "-e", "normal", "--prefix", "none"],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return sorted({line.split()[0] for line in out.splitlines() if line.startswith("aws-")})


# --- IAM evaluation ----------------------------------------------------------------------------

class Unsupported(Exception):
    """A policy construct this check cannot evaluate: reported, never treated as a pass."""


def as_list(value):
    return value if isinstance(value, list) else [value]


def string_match(operator, pattern, value):
    if operator == "StringEquals":
        return pattern == value
    if operator == "StringLike":
        return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))
    raise Unsupported(operator)


def condition_holds(operator, key, patterns, context):
    """One operator/key pair of a Condition block against a request context."""
    patterns = [str(p) for p in as_list(patterns)]
    present = key in context
    values = as_list(context.get(key, []))
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    if base not in ("StringEquals", "StringLike"):
        raise Unsupported(f"condition operator {operator}")
    matches = lambda v: any(string_match(base, p, v) for p in patterns)  # noqa: E731
    if qualifier == "ForAllValues":
        return all(matches(v) for v in values)  # true for a missing key: AWS does the same
    if qualifier == "ForAnyValue":
        return any(matches(v) for v in values)
    if qualifier:
        raise Unsupported(f"condition operator {operator}")
    if not present:
        return if_exists
    if len(values) != 1:
        raise Unsupported(f"{operator} on the multivalued key {key}")
    return matches(values[0])


def statement_applies(statement, effect, action, context):
    """Whether `statement`, of `effect`, names `action` and all its conditions hold."""
    if statement.get("Effect") != effect:
        return False
    if action.lower() not in {a.lower() for a in as_list(statement.get("Action", []))}:
        return False
    for operator, block in (statement.get("Condition") or {}).items():
        for key, patterns in block.items():
            if not condition_holds(operator, key, patterns, context):
                return False
    return True


def allowed(statements, action, context):
    """IAM's rule: some Allow applies and no Deny does."""
    return (any(statement_applies(st, "Allow", action, context) for st in statements)
            and not any(statement_applies(st, "Deny", action, context) for st in statements))


# --- template --------------------------------------------------------------------------------

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


def table_statements(name, logical_id, translated, problems, secret_statements=None):
    """The role's DynamoDB statements, after the structural checks; its Secrets Manager
    statements go to `secret_statements`."""
    resources = translated["Resources"]
    function = resources[logical_id]["Properties"]
    role_id = get_att_target(function.get("Role"), resources, "AWS::IAM::Role")
    if not role_id:
        problems.append(f"{name}: role is not a role of this template: {function.get('Role')}")
        return []
    statements, managed = role_statements(role_id, resources)
    for arn in managed:
        if BASIC_EXECUTION_POLICY not in json.dumps(arn):
            problems.append(f"{name}: managed policy beyond basic logging: {arn}")
    table = []
    for st in statements:
        if st.get("Effect") not in ("Allow", "Deny") or "NotAction" in st or "NotResource" in st:
            problems.append(f"{name}: statement is not a plain Allow or Deny: {st}")
            continue
        actions = {a.lower() for a in as_list(st["Action"])}
        res = as_list(st["Resource"])
        wild = [r for r in res if has_wildcard(r)]
        if wild:
            problems.append(f"{name}: wildcard resource {wild}")
        if actions <= LOGGING_ACTIONS:
            if not all(get_att_target(r, resources, "AWS::Logs::LogGroup") for r in res):
                problems.append(f"{name}: logging allowed beyond its log group: {res}")
        elif all(a.startswith("dynamodb:") for a in actions):
            if not all(get_att_target(r, resources, "AWS::DynamoDB::Table") for r in res):
                problems.append(f"{name}: DynamoDB actions on something other than a table: {res}")
            table.append(st)
        elif all(a.startswith("secretsmanager:") for a in actions) and secret_statements is not None:
            secret_statements.append(st)
        else:
            problems.append(f"{name}: actions beyond logging, DynamoDB and Secrets Manager: {sorted(actions)}")
    return table


def check_function(name, logical_id, translated, calls, model, problems, secret_statements=None):
    """Checks the role against the code's calls; returns the granted DynamoDB actions."""
    statements = table_statements(name, logical_id, translated, problems, secret_statements)
    granted = {a for st in statements if st.get("Effect") == "Allow" for a in as_list(st["Action"])}
    want = {c.action for _, c in calls}
    if {a.lower() for a in granted} != {a.lower() for a in want}:
        lower = {a.lower() for a in want}
        extra = sorted(a for a in granted if a.lower() not in lower)
        missing = sorted(a for a in want if a.lower() not in {g.lower() for g in granted})
        problems.append(f"{name}: code calls {sorted(want)}; role grants {sorted(granted)} "
                        f"(missing {missing}, extra {extra})")

    prefixes = sorted({c.prefix for c in model.all_calls()} | {FOREIGN_PREFIX})
    known_attributes = {a for c in model.all_calls() for a in c.attributes} | {FOREIGN_ATTRIBUTE}

    def expect(allow, what, action, context):
        try:
            verdict = allowed(statements, action, context)
        except Unsupported as err:
            problems.append(f"{name}: cannot evaluate {err} (for {what})")
            return
        if verdict != allow:
            problems.append(f"{name}: {what} is {'denied' if allow else 'allowed'}; "
                            f"should be {'allowed' if allow else 'denied'} ({json.dumps(context)})")

    def deny(what, action, context):
        # A variant that another call of this function needs anyway must be allowed: no probe.
        if not any(other.covers(action, context) for _, other in calls):
            expect(False, what, action, context)

    for path, call in calls:
        label = f"{call.operation} {call.prefix} ({path})"
        expect(True, label, call.action, call.context())
        # Whether a request that leaves Select or ReturnValues unset carries the key at all is
        # documented only in passing (a transaction's items: not at all), so every call must be
        # allowed without them too: the ...IfExists forms of AWS's example policies.
        expect(True, f"{label}, its context without Select or ReturnValues",
               call.action, call.context(options=False))
        for prefix in prefixes:
            if prefix != call.prefix:
                deny(f"{label} on {prefix} items", call.action, call.context(prefix=prefix))
        if call.scoped:
            for extra in sorted(known_attributes - call.attributes - {call.key}):
                deny(f"{label} naming {extra} too", call.action, call.context(extra=[extra]))
            if call.operation in READ_OPERATIONS:
                deny(f"{label} without its projection", call.action, call.context(projected=False))
                deny(f"{label} of every attribute, key named", call.action,
                     {**call.context(select="ALL_ATTRIBUTES"), "dynamodb:Attributes": [call.key]})
            else:
                for rv in ("ALL_OLD", "ALL_NEW"):
                    deny(f"{label} returning {rv}", call.action, call.context(return_values=rv))
    # A function that reads only some attributes of items holding a secret must be denied the
    # whole item however it asks: a plain read carries Select = ALL_ATTRIBUTES, and a read in a
    # transaction (undocumented: perhaps with neither Select nor Attributes) is probed bare.
    for prefix, secret in SECRET_ATTRIBUTES.items():
        reads = [c for _, c in calls if c.prefix == prefix and c.operation in READ_OPERATIONS]
        if reads and all(c.scoped for c in reads):
            key = f"{prefix}alice"
            expect(False, f"GetItem {prefix} of the whole item, {secret} included", "dynamodb:GetItem",
                   {"dynamodb:LeadingKeys": [key], "dynamodb:Select": "ALL_ATTRIBUTES"})
            expect(False, f"GetItem {prefix} of the whole item in a TransactGetItems, neither Select nor "
                   f"Attributes in its context", "dynamodb:GetItem",
                   {"dynamodb:LeadingKeys": [key], "dynamodb:EnclosingOperation": "TransactGetItems"})
    return granted


def function_logical_ids(template):
    """{binary name: logical id} from the SAM template's BuildProperties.Binary."""
    ids = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") == "AWS::Serverless::Function":
            binary = resource.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
            if binary:
                ids[binary] = logical_id
    return ids


def describe(call):
    scope = ""
    if call.scoped:
        scope = " [" + ", ".join(sorted(call.attributes | {call.key})) + "]"
    rv = f" returning {call.return_values}" if call.return_values not in (None, "NONE") else ""
    within = f" in {call.enclosing}" if call.enclosing else ""
    return f"{call.operation} {call.prefix}{scope}{rv}{within}"


# --- signing keys ------------------------------------------------------------------------------

KEY_STORE_SOURCE = SHARED_SOURCE / "keystore.rs"


def secrets_manager_operations():
    import botocore.session

    return set(botocore.session.get_session().get_service_model("secretsmanager").operation_names)


def client_calls(code, operations):
    """The Secrets Manager actions of `client.op()` calls in `code`."""
    return {f"secretsmanager:{pascal(m.group(1))}"
            for m in re.finditer(r"\bclient\s*\.\s*(\w+)\s*\(", code)
            if pascal(m.group(1)) in operations}


def key_store_methods(operations):
    """{method of shared::keystore: the Secrets Manager actions its body calls}."""
    code = Source(KEY_STORE_SOURCE).code
    starts = [m for m in re.finditer(r"\bfn\s+(\w+)", code)]
    methods = {}
    for i, m in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(code)
        calls = client_calls(code[m.end():end], operations)
        if calls:
            methods.setdefault(m.group(1), set()).update(calls)
    return methods


def secret_calls(function):
    """The Secrets Manager actions a function's code calls: its own `client.op()` calls, and
    the key store's methods it calls on a `store` (`store.load()`,
    `self.store.for_secret(id).save(..)`)."""
    operations = secrets_manager_operations()
    methods = key_store_methods(operations)
    found = set()
    for path in sorted((FUNCTIONS / function / "src").rglob("*.rs")):
        code = Source(path).code
        found |= client_calls(code, operations)
        chain = r"\bstore(?:\s*\.\s*\w+\s*\([^()]*\))*\s*\.\s*(\w+)\s*\("
        for m in re.finditer(chain, code):
            found |= methods.get(m.group(1), set())
    return found


def key_set_resources(translated, ids, problems):
    """(custom resource id, secret id) of the key set: the custom resource whose ServiceToken is
    the key-set function, and the secret its SecretId refers to."""
    resources = translated["Resources"]
    function = ids.get(KEY_SET_FUNCTION)
    found = [rid for rid, r in resources.items()
             if r.get("Type", "").startswith("Custom::") or r.get("Type") == "AWS::CloudFormation::CustomResource"
             if r.get("Properties", {}).get("ServiceToken") == {"Fn::GetAtt": [function, "Arn"]}]
    if len(found) != 1:
        problems.append(f"key set: {len(found)} custom resources served by the {KEY_SET_FUNCTION} function, want 1")
        return None, None
    secret_ref = resources[found[0]]["Properties"].get("SecretId")
    secret = secret_ref.get("Ref") if isinstance(secret_ref, dict) else None
    if resources.get(secret, {}).get("Type") != "AWS::SecretsManager::Secret":
        problems.append(f"key set: {found[0]}.SecretId is not a Ref to a secret of this template: {secret_ref}")
        return found[0], None
    return found[0], secret


def key_material(template_text):
    """Private key material or a secret's value written into the template."""
    found = []
    for pattern, what in [(r"-----BEGIN [A-Z ]*PRIVATE KEY-----", "a PEM private key"),
                          (r"\{\{resolve:secretsmanager:", "a Secrets Manager dynamic reference"),
                          (r"[\"']d[\"']\s*:", "a JWK private member d"),
                          (r"\bMII[A-Za-z0-9+/]{40,}", "base64 DER key material")]:
        if re.search(pattern, template_text):
            found.append(what)
    return found


def check_keys(translated, template_text, ids, secret_statements, problems):
    """The key model: who may read the private keys, who gets only the public ones."""
    resources = translated["Resources"]
    key_set, secret = key_set_resources(translated, ids, problems)
    for what in key_material(template_text):
        problems.append(f"key material: the template holds {what}")
    if secret:
        props = resources[secret].get("Properties", {})
        for prop in ("SecretString", "GenerateSecretString"):
            if prop in props:
                problems.append(f"key material: {secret} has {prop}; it must be created empty and filled "
                                f"by the {KEY_SET_FUNCTION} function")
        # Kept when the stack goes or the secret would be replaced; only a failed first deployment
        # (no token signed yet) deletes it.
        for policy, allowed in (("DeletionPolicy", ("Retain", "RetainExceptOnCreate")), ("UpdateReplacePolicy", ("Retain",))):
            if resources[secret].get(policy) not in allowed:
                problems.append(f"key material: {secret} {policy} is {resources[secret].get(policy)}, "
                                f"want one of {', '.join(allowed)}")
    secret_ref = {"Ref": secret}
    want = {name: secret_calls(name) for name in [*SECRET_READERS, KEY_SET_FUNCTION]}
    if not want[KEY_SET_FUNCTION]:
        problems.append(f"{KEY_SET_FUNCTION}: no Secrets Manager call found in its code")
    for name, allowed in SECRET_READERS.items():
        if want[name] != allowed:
            problems.append(f"{name}: its code calls Secrets Manager {sorted(want[name])}, "
                            f"want exactly {sorted(allowed)} (it only reads the keys)")
    for name, logical_id in sorted(ids.items()):
        statements = secret_statements.get(name, [])
        granted = {a for st in statements for a in as_list(st["Action"])}
        expected = want.get(name, set())
        if {a.lower() for a in granted} != {a.lower() for a in expected}:
            problems.append(f"{name}: Secrets Manager actions {sorted(granted)}, want {sorted(expected)}")
        for st in statements:
            if "Condition" in st:
                continue
            res = as_list(st.get("Resource"))
            if res != [secret_ref]:
                problems.append(f"{name}: Secrets Manager actions on {res}, want only the key set's secret {secret}")
        env = (resources[logical_id].get("Properties", {}).get("Environment") or {}).get("Variables") or {}
        if name in VERIFIERS:
            held = sorted(SECRET_VARIABLES & set(env))
            if held:
                problems.append(f"{name}: a verifier holds {held}")
            text = json.dumps(resources[logical_id].get("Properties", {}))
            if secret and json.dumps(secret_ref) in text:
                problems.append(f"{name}: a verifier refers to the key set's secret")
            if env.get("JWT_PUBLIC_KEYS") != {"Fn::GetAtt": [key_set, "Jwks"]}:
                problems.append(f"{name}: JWT_PUBLIC_KEYS is {env.get('JWT_PUBLIC_KEYS')}, want {key_set}.Jwks")
        elif name in SECRET_READERS:
            if env.get("JWT_SIGNING_KEY_SECRET") != secret_ref:
                problems.append(f"{name}: JWT_SIGNING_KEY_SECRET is {env.get('JWT_SIGNING_KEY_SECRET')}, want {secret}")
            if env.get("JWT_SIGNING_KEY_ID") != {"Fn::GetAtt": [key_set, "SigningKeyId"]}:
                problems.append(f"{name}: JWT_SIGNING_KEY_ID is {env.get('JWT_SIGNING_KEY_ID')}, "
                                f"want {key_set}.SigningKeyId")
            if "JWT_SIGNING_KEY" in env or "JWT_SECRET" in env:
                problems.append(f"{name}: a private key in its configuration")
        status = "ok" if not [p for p in problems if p.startswith(f"{name}:")] else "MISMATCH"
        print(f"  {status:8} {name:11} keys: "
              + (f"{', '.join(sorted(granted))} on {secret}" if granted else
                 "public keys only" if name in VERIFIERS else "no key"))


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

    model = StoreModel()
    graph = CallGraph(model.traits)
    problems = []
    secret_statements = {}
    names = sorted(p.name for p in FUNCTIONS.iterdir() if (p / "Cargo.toml").exists())
    for name in names:
        before = len(problems)
        calls = function_calls(name, graph)
        if name not in ids:
            problems.append(f"{name}: no AWS::Serverless::Function builds binary {name!r}")
            continue
        granted = check_function(name, ids[name], translated, calls, model, problems,
                                 secret_statements.setdefault(name, []))
        if name in SDK_FREE_FUNCTIONS:
            if calls:
                problems.append(f"{name}: must call no AWS API, but calls "
                                f"{sorted({c.action for _, c in calls})}")
            crates = sdk_crates(name)
            if crates:
                problems.append(f"{name}: depends on AWS SDK crates {crates}")
        status = "ok" if len(problems) == before else "MISMATCH"
        print(f"  {status:8} {name:11} {ids[name]:20} "
              + (f"{len(calls)} calls, granted {', '.join(sorted(granted)) or 'nothing'}"
                 if calls else "logging only"))
        for path, call in sorted(calls, key=lambda pc: pc[0]):
            print(f"           {path:44} {describe(call)}")
    check_keys(translated, pathlib.Path(args.template).read_text(), ids, secret_statements, problems)
    for problem in problems:
        print(f"  error: {problem}")
    mismatched = len({p.split(":", 1)[0] for p in problems})
    print(f"iam: {len(names)} functions checked, {mismatched} mismatches")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
