"""Validates OpenLineage run events against the official OpenLineage Python client's model of
the spec (the `openlineage-python` package: classes generated from the official JSON schemas
of the spec and of every standard facet, with their validators).

The JSON Schema files themselves are published only on openlineage.io, which this project's
machines cannot reach; the client's generated model is the official one they can. Each event
is checked as a JSON Schema validation would check it, and stricter:

- the event, run, job and datasets: every required property present, every property of the
  type the spec gives (strings, integers, numbers, booleans, arrays, objects, the eventType
  enum), and no property the spec does not define;
- `schemaURL` is the client's own RunEvent schema URL (spec 2-0-2 or newer), `eventTime` an
  ISO 8601 date-time, `runId` a UUID, `producer` a URI (the client's validators);
- every facet: its `_schemaURL` is the schema URL of a standard facet the client knows (so a
  misspelt name or a facet version that does not exist fails), its key is that facet's
  standard key (`columnLineage` for ColumnLineageDatasetFacet), its kind fits where it is
  (a run facet among the run's facets, an output facet among `outputFacets`...), and its
  body validates against that facet's class as above, `_producer` included.

Usage: python3 scripts/openlineage_validate.py EVENTS.ndjson
Prints each problem on a line (event index, path, what is wrong) and exits 1 if any, else
prints a summary and exits 0.
"""

import enum
import importlib
import json
import pkgutil
import sys
import types
import typing

import attr
import openlineage.client.generated as generated
from openlineage.client.generated import base

FACET_KINDS = (
    base.RunFacet,
    base.JobFacet,
    base.InputDatasetFacet,
    base.OutputDatasetFacet,
    base.DatasetFacet,
)


def standard_facets():
    """Every standard facet class the client generated, by its schema URL."""
    found = {}
    for module in pkgutil.iter_modules(generated.__path__):
        mod = importlib.import_module(f"{generated.__name__}.{module.name}")
        for obj in vars(mod).values():
            if (
                isinstance(obj, type)
                and obj.__module__ == mod.__name__
                and attr.has(obj)
                and issubclass(obj, base.BaseFacet)
                and obj not in FACET_KINDS
            ):
                found[obj._get_schema()] = obj
    return found


FACETS = standard_facets()


def standard_key(cls):
    """The key a standard facet goes under: its name less its kind, in lower camel case
    (ColumnLineageDatasetFacet: columnLineage, SQLJobFacet: sql)."""
    name = cls.__name__
    for suffix in ("InputDatasetFacet", "OutputDatasetFacet", "DatasetFacet", "RunFacet", "JobFacet"):
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            return stem.lower() if stem.isupper() else stem[0].lower() + stem[1:]
    return None


class Checker:
    def __init__(self):
        self.errors = []

    def fail(self, path, message):
        self.errors.append(f"{path}: {message}")

    def value(self, value, tp, path):
        """Checks `value` against the type hint `tp`; returns what to build the object with."""
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if tp is typing.Any:
            return value
        if origin in (typing.Union, types.UnionType):
            if value is None and type(None) in args:
                return None
            options = [a for a in args if a is not type(None)]
            if len(options) == 1:
                return self.value(value, options[0], path)
            for option in options:
                trial = Checker()
                built = trial.value(value, option, path)
                if not trial.errors:
                    return built
            self.fail(path, f"{value!r} is none of {options}")
            return value
        if origin is list:
            if not isinstance(value, list):
                self.fail(path, f"expected an array, got {type(value).__name__}")
                return []
            return [self.value(v, args[0], f"{path}[{i}]") for i, v in enumerate(value)]
        if origin is dict:
            if not isinstance(value, dict):
                self.fail(path, f"expected an object, got {type(value).__name__}")
                return {}
            kind = args[1]
            if isinstance(kind, type) and issubclass(kind, base.BaseFacet):
                return {k: self.facet(v, kind, k, f"{path}.{k}") for k, v in value.items()}
            return {k: self.value(v, kind, f"{path}.{k}") for k, v in value.items()}
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            allowed = [m.value for m in tp]
            if value not in allowed:
                self.fail(path, f"{value!r} is not one of {allowed}")
                return value
            return tp(value)
        if tp is bool:
            if not isinstance(value, bool):
                self.fail(path, f"expected a boolean, got {value!r}")
            return value
        if tp is int:
            if not isinstance(value, int) or isinstance(value, bool):
                self.fail(path, f"expected an integer, got {value!r}")
            return value
        if tp is float:
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                self.fail(path, f"expected a number, got {value!r}")
            return value
        if tp is str:
            if not isinstance(value, str):
                self.fail(path, f"expected a string, got {value!r}")
            return value
        if attr.has(tp):
            return self.object(value, tp, path)
        self.fail(path, f"no check for type {tp}")
        return value

    def object(self, value, cls, path, schema_url_key=None):
        """Checks an object against an attrs class of the client and builds it (which runs
        the class's validators)."""
        if not isinstance(value, dict):
            self.fail(path, f"expected an object, got {type(value).__name__}")
            return None
        errors_before = len(self.errors)
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in attr.fields(cls)}
        for key in value:
            if key not in fields:
                self.fail(f"{path}.{key}", f"not a property of {cls.__name__}")
        kwargs = {}
        for name, field in fields.items():
            if name == schema_url_key:
                if value.get(name) != cls._get_schema():
                    self.fail(f"{path}.{name}", f"{value.get(name)!r} is not {cls._get_schema()!r}")
                continue
            if not field.init:
                continue
            if name not in value:
                if field.default is attr.NOTHING:
                    self.fail(f"{path}.{name}", f"required by {cls.__name__}, missing")
                continue
            kwargs[field.alias] = self.value(value[name], hints[name], f"{path}.{name}")
        if len(self.errors) > errors_before:
            return None
        try:
            return cls(**kwargs)
        except Exception as e:  # the client's validators raise ValueError and others
            self.fail(path, f"{cls.__name__} refuses it: {e}")
            return None

    def facet(self, value, kind, key, path):
        if not isinstance(value, dict):
            self.fail(path, "a facet must be an object")
            return None
        url = value.get("_schemaURL")
        cls = FACETS.get(url)
        if cls is None:
            self.fail(f"{path}._schemaURL", f"{url!r} is not the schema of a standard facet")
            return None
        allowed = (base.DatasetFacet, base.InputDatasetFacet, base.OutputDatasetFacet) if kind is base.DatasetFacet else (kind,)
        if not issubclass(cls, allowed):
            self.fail(path, f"{cls.__name__} is not a {kind.__name__}")
        if standard_key(cls) != key:
            self.fail(path, f"{cls.__name__} goes under {standard_key(cls)!r}, not {key!r}")
        if not value.get("_producer"):
            self.fail(f"{path}._producer", "required, missing")
        return self.object(value, cls, path, schema_url_key="_schemaURL")


def main(path):
    checker = Checker()
    count, kinds = 0, {}
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if not line.strip():
                continue
            event = json.loads(line)
            count += 1
            kinds[event.get("eventType")] = kinds.get(event.get("eventType"), 0) + 1
            checker.object(event, base.RunEvent, f"event {i}", schema_url_key="schemaURL")
    for error in checker.errors:
        print(error)
    if checker.errors:
        return 1
    if count == 0:
        print(f"{path}: no events")
        return 1
    print(f"{count} events valid ({kinds}) against openlineage-python's model of spec {base.RunEvent._get_schema()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
