"""Validates ODCS contracts against the official JSON schemas weir embeds, with the Python
`jsonschema` library (Draft 2019-09, which implements `unevaluatedProperties`), and prints one
JSON object: {path: {"valid": bool, "errors": [...]}}.

A second, independent implementation of the same schemas: the interop test uses it to show
that where weir and datacontract-cli disagree, weir is the one that follows the standard.
Usage: python3 scripts/odcs_reference_validate.py FILE...
"""
import json
import os
import sys

import jsonschema
import yaml

SCHEMAS = os.path.join(os.path.dirname(__file__), "..", "crates", "weir-model", "schemas", "odcs")
# The same mapping as weir-model's odcs_schema.rs: v3.0.0 and v3.0.1 share one schema.
SCHEMA_OF = {
    "v3.0.0": "v3.0.1",
    "v3.0.1": "v3.0.1",
    "v3.0.2": "v3.0.2",
    "v3.1.0": "v3.1.0",
    "v3.2.0": "v3.2.0",
}


def load_schema(version):
    with open(os.path.join(SCHEMAS, f"odcs-{version}.schema.json")) as f:
        return json.load(f)


out = {}
for path in sys.argv[1:]:
    with open(path) as f:
        doc = yaml.safe_load(f)
    version = SCHEMA_OF.get(str(doc.get("apiVersion")) if isinstance(doc, dict) else None)
    if version is None:
        out[path] = {"valid": False, "errors": ["unsupported or missing apiVersion"]}
        continue
    validator = jsonschema.Draft201909Validator(load_schema(version))
    errors = [
        f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in validator.iter_errors(doc)
    ]
    out[path] = {"valid": not errors, "errors": errors}
print(json.dumps(out))
