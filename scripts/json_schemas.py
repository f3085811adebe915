"""Writes docs/json/<command>.schema.json: the JSON Schema (2020-12) of what each weir command
prints under --json. The schemas are the documentation; a test (crates/weir/tests/it/
json_output.rs) validates every command's real output against them.

Each schema is a oneOf: the command's success document, or the error document every command
prints on failure (exit 2). Objects stay open (a new field is not a breaking change; see
schema_version). Usage: python3 scripts/json_schemas.py
"""
import json
import os

D = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "json")
S = "https://json-schema.org/draft/2020-12/schema"


def obj(props, required=None):
    return {"type": "object", "properties": props,
            "required": required if required is not None else sorted(props)}


def arr(items):
    return {"type": "array", "items": items}


def null(t):
    t = dict(t)
    t["type"] = [t["type"], "null"]
    return t


STR = {"type": "string"}
INT = {"type": "integer"}
NUM = {"type": "number"}
BOOL = {"type": "boolean"}
SV = {"const": 1, "description": "The version of this document's shape; raised only when a field changes meaning or goes away."}

check_result = obj({"id": STR, "column": null(STR), "metric": STR, "value": null(NUM), "threshold": STR,
                    "unit": STR, "passed": BOOL, "severity": {"enum": ["info", "warning", "error"]},
                    "scope": {"enum": ["run", "table"]}},
                   ["id", "metric", "threshold", "passed", "severity"])
held = arr(obj({"asset": STR, "reason": STR}))
recovery = {"recovered": arr(STR), "held": held}
counts_by_rule = {"type": "object", "additionalProperties": INT}
run_record = obj({"run_id": STR, "asset": STR, "status": STR, "trigger": STR, "started_at": STR,
                  "ended_at": null(STR), "rows_in": INT, "rows_stored": INT, "rows_quarantined": INT,
                  "bytes_in": INT, "table_version": null(INT), "contract_version": null(STR),
                  "error": null(STR), "checks": arr(check_result), "rejected_files": {"type": "array"},
                  "files": arr(STR), "quarantine_by_rule": counts_by_rule, "duration_ms": null(INT)},
                 ["run_id", "asset", "status", "started_at", "rows_in", "rows_stored", "rows_quarantined",
                  "error", "checks", "files", "quarantine_by_rule", "duration_ms"])
asset_run = obj({"run_id": STR, "asset": STR,
                 "status": {"enum": ["success", "failed", "error", "skipped", "up_to_date", "needs_full_refresh"]},
                 "rows_in": INT, "rows_stored": INT, "rows_quarantined": INT, "bytes_in": INT, "duration_ms": INT,
                 "checks_passed": INT, "checks_failed": INT, "checks": arr(check_result),
                 "quarantine_by_rule": counts_by_rule, "files": arr(STR), "rejected_files": {"type": "array"},
                 "replaced_files": {"type": "array"}, "warnings": arr(STR),
                 "compacted_files": null(obj({"removed": INT, "added": INT})), "error": null(STR), "table_path": STR,
                 "table_version": null(INT), "quarantine_path": STR, "quarantine_version": null(INT)},
                ["run_id", "asset", "status", "rows_in", "rows_stored", "rows_quarantined", "checks",
                 "quarantine_by_rule", "error", "warnings"])
diagnostic = obj({"level": {"enum": ["error", "warning"]}, "file": STR, "line": null(INT), "column": null(INT),
                  "field": null(STR), "message": STR}, ["level", "file", "message"])
error = obj({"kind": {"enum": ["usage", "unknown_asset", "selection", "project", "query", "exists", "held", "error"]},
             "message": STR})
edge = obj({"asset": STR, "column": STR, "type": {"enum": ["DIRECT", "INDIRECT"]}, "subtype": STR})
colref = obj({"asset": STR, "column": STR})

schemas = {
    "run": ("weir run --json and weir demo --json",
            obj({"schema_version": SV, "runs": arr(asset_run), **recovery})),
    "check": ("weir check --json",
              obj({"schema_version": SV, "ok": BOOL, "assets": arr(STR), "diagnostics": arr(diagnostic)})),
    "runs": ("weir runs --json", obj({"schema_version": SV, "runs": arr(run_record)})),
    "status": ("weir status --json", obj({"schema_version": SV, "assets": arr(obj({
        "asset": STR, "kind": {"enum": ["source", "model"]},
        "last_run": null(obj({"run_id": STR, "status": STR, "trigger": STR, "started_at": STR, "ended_at": null(STR)},
                             ["run_id", "status", "started_at"])),
        "last_published_at": null(STR),
        "freshness": obj({"lag_seconds": null(NUM), "sla_seconds": null(NUM), "stale": null(BOOL)}),
        "next_run": null(obj({"at": STR, "job": STR})),
    }))})),
    "trigger": ("weir trigger --json", obj({"schema_version": SV, "run": obj({
        "id": STR, "selection": arr(STR), "trigger": STR, "full_refresh": BOOL, "priority": INT,
        "status": {"enum": ["queued", "running", "retrying", "succeeded", "failed", "cancelled"]},
        "attempt": INT, "max_attempts": INT, "timeout_secs": null(INT), "not_before": STR, "enqueued_at": STR,
        "claimed_by": null(STR), "lease_until": null(STR), "started_at": null(STR), "ended_at": null(STR),
        "error": null(STR), "cancel_requested": BOOL},
        ["id", "selection", "trigger", "status", "attempt", "max_attempts", "enqueued_at"])})),
    "cancel": ("weir cancel --json", obj({"schema_version": SV, "id": STR,
        "status": {"enum": ["queued", "running", "retrying", "succeeded", "failed", "cancelled"]}})),
    "serve": ("weir serve --json (the first document, once it listens)", obj({"schema_version": SV,
        "listening": STR, "jobs": INT, "file_arrival": BOOL, "token_set": BOOL})),
    "worker": ("weir worker --json (the first document, once it works)", obj({"schema_version": SV,
        "worker": STR, "state": STR})),
    "show": ("weir show ASSET --json",
             obj({"schema_version": SV, "asset": STR, "description": null(STR), "team": null(STR),
                  "owners": arr(STR), "channels": arr(STR),
                  "contract": obj({"id": STR, "path": STR, "status": STR, "version": STR}),
                  "columns": arr(obj({"name": STR, "type": STR, "required": BOOL, "unique": BOOL,
                                      "primary_key": BOOL, "description": null(STR)})),
                  "source": null({"type": "object"}), "model": null({"type": "object"}),
                  "upstream": arr(STR), "downstream": arr(STR),
                  "downstream_owners": arr(obj({"asset": STR, "owners": arr(STR), "team": null(STR)})),
                  "table_path": STR, "table_version": null(INT), "quarantine_path": STR,
                  "quarantine_version": null(INT), "runs": arr(run_record)},
                 ["schema_version", "asset", "owners", "contract", "columns", "upstream", "downstream",
                  "table_path", "quarantine_path", "runs"])),
    "query": ("weir query SQL --json", obj({"schema_version": SV, "rows": arr({"type": "object"})})),
    "lineage": ("weir lineage --json",
                obj({"schema_version": SV,
                     "assets": arr(obj({"name": STR, "kind": {"enum": ["source", "model"]}, "team": null(STR),
                                        "owners": arr(STR), "upstream": arr(STR), "downstream": arr(STR),
                                        "columns": arr(obj({"name": STR,
                                                            "transform": {"enum": ["direct", "transformation", "unknown"]},
                                                            "unknown": BOOL, "edges": arr(edge), "inputs": arr(colref),
                                                            "origins": arr(colref)})),
                                        "dataset_edges": arr(edge), "dataset_unknown": BOOL},
                                       ["name", "kind", "owners", "upstream", "downstream", "columns"])),
                     "edges": arr(obj({"from": STR, "to": STR}))})),
    "doctor": ("weir doctor --json",
               obj({"schema_version": SV,
                    "findings": arr(obj({"asset": null(STR), "status": STR, "message": STR,
                                         "missing_from_ledger": {"type": "array"},
                                         "not_published": {"type": "array"}}, ["status", "message"]))})),
    "recover": ("weir recover --json", obj({"schema_version": SV, **recovery})),
    "quarantine": ("weir quarantine ASSET --json",
                   obj({"schema_version": SV, "asset": STR, "quarantine_path": STR, "version": null(INT),
                        "rows": null(INT), "replayed": null(INT), "by_rule": counts_by_rule,
                        "by_run": arr(obj({"run_id": STR, "run_status": STR, "rows": INT, "replayed": INT,
                                           "quarantined_at": null(STR)}, ["run_id", "rows"])),
                        "samples": arr(obj({"rule_id": STR, "reason": STR, "source": null(STR),
                                            "position": null(INT), "raw_record": null(STR), "run_id": STR},
                                           ["rule_id", "reason", "run_id"]))},
                       ["schema_version", "asset", "quarantine_path", "version", "rows", "by_rule", "by_run",
                        "samples"])),
    "replay": ("weir replay ASSET --json",
               obj({"schema_version": SV, "asset": STR, "run_id": STR, "status": STR, "considered": INT,
                    "published": INT, "still_failing": INT, "still_failing_by_rule": counts_by_rule,
                    "checks": arr(check_result), "error": null(STR), "recovered": arr(STR),
                    "table_version": null(INT), "quarantine_version": null(INT)},
                   ["schema_version", "asset", "status", "considered", "published", "still_failing", "error"])),
    "vacuum": ("weir vacuum --json",
               obj({"schema_version": SV, "applied": BOOL, "unreferenced_files": INT, "unreferenced_bytes": INT,
                    "expired_files": INT, "held": held,
                    "tables": arr(obj({"asset": STR, "kind": {"enum": ["table", "quarantine"]},
                                       "unreferenced_files": arr(STR), "unreferenced_bytes": INT,
                                       "expired_files": arr(STR)}))})),
    "optimize": ("weir optimize --json",
                 obj({"schema_version": SV,
                      "tables": arr(obj({"asset": STR, "kind": {"enum": ["table", "quarantine"]},
                                         "files_removed": INT, "files_added": INT, "version": null(INT),
                                         "skipped": null(STR)}))})),
    "init": ("weir init DIR --json (with or without --empty)",
             obj({"schema_version": SV, "project": STR, "files": arr(STR), "rows": INT, "bad_rows": INT},
                 ["schema_version", "project", "files"])),
    "contract-infer": ("weir contract infer FILE --json",
                       obj({"schema_version": SV, "asset": STR, "format": {"enum": ["csv", "ndjson", "parquet"]},
                            "rows_sampled": INT, "written_to": null(STR), "contract": STR})),
    "new-source": ("weir new source NAME --from FILE --json",
                   obj({"schema_version": SV, "asset": STR, "files": arr(STR), "path": STR, "rows_sampled": INT})),
    "new-model": ("weir new model NAME --sql SQL --json",
                  obj({"schema_version": SV, "asset": STR, "files": arr(STR), "reads": arr(STR)})),
}

os.makedirs(D, exist_ok=True)
for name, (title, success) in schemas.items():
    # A success document never holds an error object, so exactly one branch matches.
    success["not"] = {"required": ["error"], "properties": {"error": {"type": "object"}}}
    doc = {"$schema": S, "$id": f"https://weir.dev/json/{name}.schema.json", "title": title,
           "description": "What the command prints on stdout: its document, or (exit 2) the error document.",
           "oneOf": [success, {"$ref": "#/$defs/error_document"}],
           "$defs": {"error_document": obj({"schema_version": SV, "error": error, "diagnostics": arr(diagnostic)},
                                           ["schema_version", "error"])}}
    with open(os.path.join(D, f"{name}.schema.json"), "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
