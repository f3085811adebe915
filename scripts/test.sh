#!/usr/bin/env bash
# Runs every test of weir. Installs what a fresh machine lacks first:
#   - the Python `deltalake` and `pyarrow` packages (the independent Delta reader the
#     end-to-end tests compare weir's tables with);
#   - the Python `sqlglot` package (the independent column lineage weir-process's lineage
#     corpus test compares weir's with);
#   - the Python `datacontract-cli` package (the independent ODCS implementation weir-model's
#     contract corpus test and the written-contracts test compare weir's verdicts with);
#   - the Python `jsonschema` and `pyyaml` packages (a second implementation of the official
#     ODCS JSON schemas, which settles where weir and datacontract-cli disagree);
#   - the Python `openlineage-python` package (the official OpenLineage client: its model of
#     the spec and the standard facets validates the run events weir emits);
#   - `promtool` (Debian's `prometheus` package), the reference linter of the Prometheus
#     exposition `weir serve` serves at /metrics;
#   - Chromium and ChromeDriver (Debian's `chromium` and `chromium-driver` packages): the
#     dashboard `weir serve` serves at / is tested end to end in the headless browser;
#   - a PostgreSQL server (Debian's `postgresql` package), started on loopback for the run of
#     the tests and stopped after: the state store and its workers are tested on it as well
#     as on SQLite (scripts/pg_loopback.sh).
# Usage: ./scripts/test.sh [extra args for cargo nextest / cargo test]
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${WEIR_TEST_PYTHON:-python3}"
if ! "$PYTHON" -c "import deltalake, pyarrow" >/dev/null 2>&1; then
  echo "installing the Python deltalake and pyarrow packages (independent Delta reader for the tests)"
  "$PYTHON" -m pip install --quiet deltalake pyarrow
fi
if ! "$PYTHON" -c "import sqlglot" >/dev/null 2>&1; then
  echo "installing the Python sqlglot package (independent column lineage for the tests)"
  "$PYTHON" -m pip install --quiet sqlglot
fi
if ! "$PYTHON" -c "import datacontract.data_contract" >/dev/null 2>&1; then
  echo "installing the Python datacontract-cli package (independent ODCS linter for the tests)"
  "$PYTHON" -m pip install --quiet datacontract-cli
fi
if ! "$PYTHON" -c "import yaml, jsonschema; jsonschema.Draft201909Validator" >/dev/null 2>&1; then
  echo "installing the Python jsonschema and pyyaml packages (reference ODCS schema validator for the tests)"
  "$PYTHON" -m pip install --quiet "jsonschema>=4.18" pyyaml
fi
if ! "$PYTHON" -c "import openlineage.client.generated.base" >/dev/null 2>&1; then
  echo "installing the Python openlineage-python package (the official client's model of the OpenLineage spec validates weir's events)"
  "$PYTHON" -m pip install --quiet openlineage-python
fi
export WEIR_TEST_PYTHON="$PYTHON"

if ! command -v promtool >/dev/null 2>&1; then
  echo "installing Debian's prometheus package (promtool lints weir serve's /metrics)"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  echo "installing Debian's chromium and chromium-driver packages (the dashboard is tested in a headless browser)"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi

PG_DIR="$(mktemp -d)"
trap 'scripts/pg_loopback.sh stop "$PG_DIR"; rm -rf "$PG_DIR"' EXIT
WEIR_TEST_POSTGRES="$(scripts/pg_loopback.sh start "$PG_DIR")"
export WEIR_TEST_POSTGRES

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
