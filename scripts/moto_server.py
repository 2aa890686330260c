"""The DynamoDB emulator for ./dev: moto's server, with each request applied atomically and
TransactWriteItems idempotent on its ClientRequestToken, as DynamoDB is.

DynamoDB applies every request atomically: an `UpdateItem ... ADD` or a conditional `PutItem`
never interleaves with another request on the same item. moto's threaded server does not
promise that (concurrent `ADD`s on one item were seen losing updates), so this launcher keeps
moto's threaded connection handling but runs one request at a time through a lock. The
project's own race tests then test the project's code, not the emulator: a read-then-write in
our code still loses updates here, as it would on DynamoDB.

DynamoDB makes TransactWriteItems idempotent: a call with the ClientRequestToken of a call that
succeeded in the last 10 minutes succeeds again without changing anything, and one with the same
token but other parameters fails with IdempotentParameterMismatchException ("TransactWriteItems",
DynamoDB API Reference). The AWS SDK sends a token with every transaction and keeps it across its
retries, so a retry of an attempt that committed but timed out on the client succeeds. moto
5.2.5 ignores the token: the retry ran the transaction again and its conditions failed against
the first attempt's own writes (seen under load as 503s and refused refreshes). This launcher
answers such a retry with the first answer, as DynamoDB does.

moto 5.2.5 also deep-copies every table a transaction writes to, before each of its items, so
that it can roll back: each transaction cost time in proportion to the whole table, which grows
under `./dev load` (sessions, refresh tokens) until requests waited seconds behind it and went
past the functions' 3 s timeout. This launcher keeps moto's transaction logic but backs up only
the items the transaction names, and restores those if it fails (`cheap_rollback`).

Usage: python scripts/moto_server.py --host 127.0.0.1 --port 8000
"""

import argparse
import copy
import io
import json
import signal
import sys
import threading
import time

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

TRANSACT_WRITE = "DynamoDB_20120810.TransactWriteItems"
IDEMPOTENCY_WINDOW_SECONDS = 600.0


class TransactionTokens:
    """The successful TransactWriteItems of the idempotency window, by ClientRequestToken."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.answers = {}  # token -> (expires, parameters, status, headers, body)

    def replay(self, token, parameters):
        """The answer for a call with this token: the first one's, a mismatch error, or None."""
        now = self.clock()
        self.answers = {t: a for t, a in self.answers.items() if a[0] > now}
        known = self.answers.get(token)
        if known is None:
            return None
        _, first_parameters, status, headers, body = known
        if first_parameters == parameters:
            return status, headers, body
        error = {
            "__type": "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
            "message": "The request uses the same client token as a previous, but non-identical request.",
        }
        return "400 Bad Request", [("Content-Type", "application/x-amz-json-1.0")], json.dumps(error).encode()

    def remember(self, token, parameters, status, headers, body):
        self.answers[token] = (self.clock() + IDEMPOTENCY_WINDOW_SECONDS, parameters, status, headers, body)


class _TablesNotCopied:
    """moto.dynamodb.models' `copy` during a transaction (the module calls only `deepcopy`): a
    Table is returned itself, so moto's own rollback is a no-op; anything else is copied."""

    @staticmethod
    def deepcopy(value, memo=None):
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def cheap_rollback(transact_write_items):
    """TransactWriteItems that backs up and, on failure, restores only the items it names."""

    def patched(self, transact_items):
        backup = {}
        for entry in transact_items:
            try:
                _, op = next(iter(entry.items()))
                table = self.tables[op["TableName"]]
                if "Key" in op:
                    key = op["Key"]
                else:
                    names = [table.hash_key_attr] + ([table.range_key_attr] if table.has_range_key else [])
                    key = {name: op["Item"][name] for name in names}
                hash_key, range_key = self.get_keys_value(table, key)
                current = table.get_item(hash_key, range_key)
            except Exception:
                continue  # malformed: moto refuses it before changing anything
            backup.setdefault((op["TableName"], hash_key, range_key), copy.deepcopy(current))
        dynamodb_models.copy = _TablesNotCopied
        try:
            return transact_write_items(self, transact_items)
        except Exception:
            for (table_name, hash_key, range_key), item in backup.items():
                items = self.tables[table_name].items
                if range_key is not None:
                    items = items[hash_key]
                    slot = range_key
                else:
                    slot = hash_key
                if item is None:
                    items.pop(slot, None)
                else:
                    items[slot] = item
            raise
        finally:
            dynamodb_models.copy = copy

    return patched


def transaction_token(environ):
    """(token, parameters) of a TransactWriteItems call with a ClientRequestToken, else None.
    Reads the body and puts it back for moto."""
    if environ.get("HTTP_X_AMZ_TARGET") != TRANSACT_WRITE:
        return None
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(raw)
    environ["CONTENT_LENGTH"] = str(len(raw))
    try:
        request = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(request, dict) or not request.get("ClientRequestToken"):
        return None
    token = request.pop("ClientRequestToken")
    return token, json.dumps(request, sort_keys=True)


def serialized(app, tokens=None):
    lock = threading.Lock()
    tokens = tokens or TransactionTokens()

    def application(environ, start_response):
        with lock:
            idempotent = transaction_token(environ)
            if idempotent is not None:
                replayed = tokens.replay(*idempotent)
                if replayed is not None:
                    status, headers, body = replayed
                    start_response(status, headers)
                    return [body]
            answer = {}

            def capture(status, headers, exc_info=None):
                answer["status"], answer["headers"] = status, headers
                return start_response(status, headers, exc_info)

            result = app(environ, capture)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close:
                    close()
            if idempotent is not None and answer.get("status", "").startswith("200"):
                tokens.remember(*idempotent, answer["status"], answer["headers"], body)
        return [body]

    return application


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    DynamoDBBackend.transact_write_items = cheap_rollback(DynamoDBBackend.transact_write_items)
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, serialized(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
