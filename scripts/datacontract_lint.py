"""Lints ODCS contracts with datacontract-cli (an independent ODCS implementation) and prints
one JSON object: {path: {"result": "passed" | "warning" | "failed", "reasons": [...]}}.

Used by the tests that check weir and datacontract-cli agree on which contracts are valid.
Usage: python3 scripts/datacontract_lint.py [--require-passed] FILE...
With --require-passed, exits 1 (after printing the JSON) unless every file passed.
"""
import contextlib
import io
import json
import os
import sys

from datacontract.data_contract import DataContract

args = sys.argv[1:]
require_passed = "--require-passed" in args
files = [a for a in args if a != "--require-passed"]
out = {}
for path in files:
    # datacontract-cli prints its own report; only the JSON goes to stdout.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        run = DataContract(data_contract_file=path).lint()
    out[path] = {
        "result": str(run.result.value),
        "reasons": [c.reason for c in run.checks if str(c.result.value) != "passed" and c.reason],
    }
print(json.dumps(out))
sys.stdout.flush()
failed = require_passed and any(v["result"] != "passed" for v in out.values())
os._exit(1 if failed else 0)
