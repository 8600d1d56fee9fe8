"""Amazon Athena, emulated in-process: the pipeline's own SQL runs in DuckDB over the emulated S3.

moto's Athena records queries but never runs them. This emulator answers the Athena API calls a
handler makes (StartQueryExecution, GetQueryExecution, GetQueryResults, StopQueryExecution,
BatchGetQueryExecution); anything else (work groups, named queries) falls through to moto.

A query runs as Athena runs it:

- The tables are the Glue Data Catalog tables in moto's Glue (columns, partition keys, location,
  SerDe, ``projection.*`` parameters), so the template's table definition is what is exercised.
  Rows are read from the objects under the table's location in the emulated S3, one JSON record
  per line (the Hive/OpenX JSON SerDes), keys matched case-insensitively.
- Partition projection: ``injected`` partition columns must be constrained by equality in the
  WHERE clause (as Athena requires) and select ``storage.location.template`` paths; registered
  Glue partitions are read otherwise.
- ``ExecutionParameters`` bind to the ``?`` placeholders (WHERE clause only, count must match,
  string values single-quoted): each value is parsed as a literal and bound as a DuckDB parameter,
  never pasted into the SQL text.
- The Presto/Trino SQL is translated to DuckDB by sqlglot.
- States move QUEUED -> RUNNING -> SUCCEEDED/FAILED across GetQueryExecution calls; a ``slow``
  fault on ``athena:StartQueryExecution`` makes the query run that long on the emulated clock.
  Results are written to ``<OutputLocation>/<QueryExecutionId>.csv`` (+ ``.csv.metadata``) and
  paged by GetQueryResults (at most 1,000 rows per page, header row first).
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import re
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import duckdb
import sqlglot
from botocore.awsrequest import AWSResponse
from sqlglot import exp

from local.runner.clock import EmulatedClock
from local.runner.interceptor import Call, error_reply, reply

MAX_RESULTS_PAGE: Final = 1000
EMULATED_OPERATIONS: Final = frozenset(
    {"StartQueryExecution", "GetQueryExecution", "GetQueryResults", "StopQueryExecution", "BatchGetQueryExecution"}
)
_TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})


class QueryError(Exception):
    """A query that Athena would fail; the message starts with Athena's error name."""


@dataclass
class Execution:
    id: str
    query: str
    database: str | None
    catalog: str
    workgroup: str
    output_location: str
    parameters: list[str]
    submitted: float
    submitted_at: dt.datetime
    run_seconds: float
    state: str = "QUEUED"
    reason: str | None = None
    started: float | None = None
    completed_at: dt.datetime | None = None
    columns: list[tuple[str, str]] = field(default_factory=list)
    rows: list[list[str | None]] = field(default_factory=list)
    scanned_bytes: int = 0
    statement_type: str = "DML"


@dataclass(frozen=True)
class Storage:
    """Reads objects of the emulated S3 (moto's in-memory backend) for table scans."""

    account_id: str

    def objects(self, bucket: str, prefix: str) -> Iterator[tuple[str, bytes]]:
        from moto.s3.models import s3_backends  # noqa: PLC0415 - only inside a mock

        backend = s3_backends[self.account_id]["aws"]
        try:
            fake_bucket = backend.get_bucket(bucket)
        except Exception as e:
            raise QueryError(f"HIVE_CANNOT_OPEN_SPLIT: bucket {bucket} does not exist") from e
        for key in sorted(k for k in fake_bucket.keys.keys() if k.startswith(prefix)):  # noqa: SIM118 - moto store
            fake_key = fake_bucket.keys[key]
            if key.endswith("/") and fake_key.size == 0:
                continue
            yield key, fake_key.value


class AthenaEmulator:
    """Install with ``interceptor.add(emulator.hook, service="athena")`` inside ``mock_aws``."""

    def __init__(
        self,
        session: Any,
        clock: EmulatedClock,
        *,
        account_id: str = "123456789012",
        query_run_seconds: Callable[[Call], float] | None = None,
        on_query: Callable[[Execution], None] | None = None,
    ) -> None:
        self._session = session
        self._clock = clock
        self._storage = Storage(account_id)
        self._run_seconds = query_run_seconds or (lambda _call: 0.0)
        self._on_query = on_query
        self._executions: dict[str, Execution] = {}
        self._lock = threading.Lock()
        self.queries: list[Execution] = []

    # --- API ----------------------------------------------------------------------------------
    def hook(self, call: Call) -> AWSResponse | None:
        if call.service != "athena" or call.operation not in EMULATED_OPERATIONS:
            return None
        params = call.json()
        try:
            handler = getattr(self, f"_op_{call.operation}")
            return reply(call, 200, handler(call, params))
        except _ApiError as e:
            return error_reply(call, e.code, e.message, 400)

    def _op_StartQueryExecution(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        query = params.get("QueryString")
        if not isinstance(query, str) or not query.strip():
            raise _ApiError("InvalidRequestException", "QueryString is required")
        workgroup = params.get("WorkGroup") or "primary"
        wg_config = self._workgroup_config(workgroup)
        output = (params.get("ResultConfiguration") or {}).get("OutputLocation")
        wg_output = (wg_config.get("ResultConfiguration") or {}).get("OutputLocation")
        if wg_config.get("EnforceWorkGroupConfiguration") and wg_output:
            output = wg_output
        output = output or wg_output
        if not output:
            raise _ApiError(
                "InvalidRequestException",
                "No output location provided. An output location is required either through the "
                "Workgroup result configuration setting or as an API input.",
            )
        context = params.get("QueryExecutionContext") or {}
        execution = Execution(
            id=str(uuid.uuid4()),
            query=query,
            database=context.get("Database"),
            catalog=context.get("Catalog") or "AwsDataCatalog",
            workgroup=workgroup,
            output_location=output.rstrip("/"),
            parameters=[str(p) for p in params.get("ExecutionParameters") or []],
            submitted=self._clock.now(),
            submitted_at=dt.datetime.now(tz=dt.UTC),
            run_seconds=self._run_seconds(call),
        )
        with self._lock:
            self._executions[execution.id] = execution
            self.queries.append(execution)
        return {"QueryExecutionId": execution.id}

    def _op_GetQueryExecution(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        execution = self._get(params)
        self._advance(execution)
        return {"QueryExecution": self._describe(execution)}

    def _op_BatchGetQueryExecution(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        found, missing = [], []
        for qid in params.get("QueryExecutionIds") or []:
            execution = self._executions.get(qid)
            if execution is None:
                missing.append({"QueryExecutionId": qid, "ErrorCode": "INVALID_INPUT", "ErrorMessage": "not found"})
            else:
                self._advance(execution)
                found.append(self._describe(execution))
        return {"QueryExecutions": found, "UnprocessedQueryExecutionIds": missing}

    def _op_StopQueryExecution(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        execution = self._get(params)
        with self._lock:
            if execution.state not in _TERMINAL:
                execution.state = "CANCELLED"
                execution.reason = "Query was cancelled by user"
                execution.completed_at = dt.datetime.now(tz=dt.UTC)
        return {}

    def _op_GetQueryResults(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        execution = self._get(params)
        if execution.state != "SUCCEEDED":
            if execution.state == "FAILED":
                raise _ApiError("InvalidRequestException", execution.reason or "Query has failed")
            raise _ApiError("InvalidRequestException", f"Query has not yet finished. Current state: {execution.state}")
        max_results = int(params.get("MaxResults") or MAX_RESULTS_PAGE)
        if not 1 <= max_results <= MAX_RESULTS_PAGE:
            raise _ApiError("InvalidRequestException", "MaxResults must be between 1 and 1000")
        header = [[name for name, _ in execution.columns]]
        table = header + execution.rows
        start = _decode_token(params.get("NextToken"), execution.id)
        page = table[start : start + max_results]
        out: dict[str, Any] = {
            "UpdateCount": 0,
            "ResultSet": {
                "Rows": [{"Data": [{"VarCharValue": v} if v is not None else {} for v in row]} for row in page],
                "ResultSetMetadata": {"ColumnInfo": [_column_info(n, t) for n, t in execution.columns]},
            },
        }
        if start + max_results < len(table):
            out["NextToken"] = _encode_token(start + max_results, execution.id)
        return out

    # --- state machine ----------------------------------------------------------------------------
    def _get(self, params: dict[str, Any]) -> Execution:
        qid = params.get("QueryExecutionId")
        execution = self._executions.get(str(qid))
        if execution is None:
            raise _ApiError("InvalidRequestException", f"QueryExecution {qid} was not found")
        return execution

    def _advance(self, execution: Execution) -> None:
        with self._lock:
            if execution.state == "QUEUED":
                execution.state = "RUNNING"
                execution.started = self._clock.now()
                return
            if execution.state != "RUNNING" or execution.started is None:
                return
            if self._clock.now() - execution.started < execution.run_seconds:
                return
        # Run outside the lock: a scan can take a moment and other queries may be polled.
        try:
            columns, rows, scanned = self.run_sql(execution.query, execution.database, execution.parameters)
        except QueryError as e:
            self._finish(execution, "FAILED", reason=str(e))
        else:
            execution.columns, execution.rows, execution.scanned_bytes = columns, rows, scanned
            self._write_results(execution)
            self._finish(execution, "SUCCEEDED")

    def _finish(self, execution: Execution, state: str, reason: str | None = None) -> None:
        with self._lock:
            if execution.state != "RUNNING":
                return  # stopped meanwhile
            execution.state = state
            execution.reason = reason
            execution.completed_at = dt.datetime.now(tz=dt.UTC)
        if self._on_query is not None:
            self._on_query(execution)

    def _describe(self, e: Execution) -> dict[str, Any]:
        status: dict[str, Any] = {"State": e.state, "SubmissionDateTime": e.submitted_at.timestamp()}
        if e.completed_at is not None:
            status["CompletionDateTime"] = e.completed_at.timestamp()
        if e.reason:
            status["StateChangeReason"] = e.reason
        if e.state == "FAILED":
            status["AthenaError"] = {
                "ErrorCategory": 2,
                "ErrorType": 1001,
                "Retryable": False,
                "ErrorMessage": e.reason or "",
            }
        elapsed_ms = int(((e.completed_at or dt.datetime.now(tz=dt.UTC)) - e.submitted_at).total_seconds() * 1000)
        out: dict[str, Any] = {
            "QueryExecutionId": e.id,
            "Query": e.query,
            "StatementType": e.statement_type,
            "ResultConfiguration": {"OutputLocation": f"{e.output_location}/{e.id}.csv"},
            "QueryExecutionContext": {k: v for k, v in (("Database", e.database), ("Catalog", e.catalog)) if v},
            "Status": status,
            "Statistics": {
                "EngineExecutionTimeInMillis": elapsed_ms,
                "DataScannedInBytes": e.scanned_bytes,
                "TotalExecutionTimeInMillis": elapsed_ms,
            },
            "WorkGroup": e.workgroup,
            "EngineVersion": {"SelectedEngineVersion": "AUTO", "EffectiveEngineVersion": "Athena engine version 3"},
        }
        if e.parameters:
            out["ExecutionParameters"] = e.parameters
        return out

    def _workgroup_config(self, name: str) -> dict[str, Any]:
        if name == "primary":
            return {}
        client = self._session.client("athena")
        try:
            wg = client.get_work_group(WorkGroup=name)["WorkGroup"]
        except Exception as e:
            raise _ApiError("InvalidRequestException", f"WorkGroup {name} is not found.") from e
        if wg.get("State") == "DISABLED":
            raise _ApiError("InvalidRequestException", f"WorkGroup {name} is disabled.")
        return dict(wg.get("Configuration") or {})

    def _write_results(self, e: Execution) -> None:
        match = re.match(r"s3://([^/]+)/?(.*)", e.output_location)
        if not match:
            return
        bucket, prefix = match.group(1), match.group(2)
        key = f"{prefix}/{e.id}.csv" if prefix else f"{e.id}.csv"
        buffer = io.StringIO()
        writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow([name for name, _ in e.columns])
        for row in e.rows:
            writer.writerow(["" if v is None else v for v in row])
        s3 = self._session.client("s3")
        s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue().encode())
        s3.put_object(Bucket=bucket, Key=f"{key}.metadata", Body=json.dumps(e.columns).encode())

    # --- SQL ------------------------------------------------------------------------------------
    def run_sql(
        self, query: str, database: str | None, parameters: list[str]
    ) -> tuple[list[tuple[str, str]], list[list[str | None]], int]:
        """Run one Athena query; returns (columns with Athena types, rows as strings, bytes scanned)."""
        try:
            statements = sqlglot.parse(query, read="trino")
        except sqlglot.errors.ParseError as e:
            raise QueryError(f"SYNTAX_ERROR: {e}") from e
        if len(statements) != 1 or statements[0] is None:
            raise QueryError("SYNTAX_ERROR: exactly one statement is allowed")
        tree = statements[0]
        if not isinstance(tree, exp.Query):
            raise QueryError(
                f"NOT_SUPPORTED: the local Athena emulator runs SELECT queries only, got {tree.key.upper()}"
            )
        # In the order they appear in the text (depth first): that is the order Athena binds
        # ExecutionParameters in, and the order DuckDB binds the values below in. sqlglot's default
        # breadth-first walk would put a placeholder nested in a function call before an earlier one.
        placeholders = list(tree.find_all(exp.Placeholder, bfs=False))
        if len(placeholders) != len(parameters):
            raise QueryError(
                f"INVALID_PARAMETER_USAGE: the query has {len(placeholders)} parameter(s) "
                f"but {len(parameters)} ExecutionParameters were given"
            )
        for placeholder in placeholders:
            if placeholder.find_ancestor(exp.Where) is None:
                raise QueryError("INVALID_PARAMETER_USAGE: parameters are only supported in the WHERE clause")
        values = [_literal(p) for p in parameters]
        bound = dict(zip((id(p) for p in placeholders), values, strict=True))

        with tempfile.TemporaryDirectory(prefix="athena-") as workdir, duckdb.connect() as db:
            scanned = 0
            ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
            tables = [t for t in tree.find_all(exp.Table) if t.name not in ctes]
            for t in tables:
                if not t.db and database:
                    # Unqualified names resolve in QueryExecutionContext.Database, as in Athena.
                    t.set("db", exp.to_identifier(database))
            for table in {(t.db, t.name) for t in tables}:
                scanned += self._load_table(
                    db, workdir=Path(workdir), database=table[0], name=table[1], tree=tree, bound=bound
                )
            sql = tree.sql(dialect="duckdb")
            try:
                cursor = db.execute(sql, values)
                description = cursor.description or []
                fetched = cursor.fetchall()
            except duckdb.Error as e:
                raise QueryError(_athena_error(e)) from e
        columns = [(d[0], _athena_type(str(d[1]))) for d in description]
        rows = [[_format(v) for v in row] for row in fetched]
        return columns, rows, scanned

    def _load_table(
        self,
        db: Any,
        *,
        workdir: Path,
        database: str,
        name: str,
        tree: exp.Expr,
        bound: dict[int, Any],
    ) -> int:
        if not database:
            raise QueryError(f"SCHEMA_NOT_FOUND: no database given for table {name}")
        glue = self._session.client("glue")
        try:
            table = glue.get_table(DatabaseName=database, Name=name)["Table"]
        except Exception as e:
            raise QueryError(
                f"TABLE_NOT_FOUND: line 1:1: Table 'awsdatacatalog.{database}.{name}' does not exist"
            ) from e
        sd = table.get("StorageDescriptor") or {}
        columns = [(c["Name"].lower(), c["Type"]) for c in sd.get("Columns") or []]
        partition_keys = [(c["Name"].lower(), c["Type"]) for c in table.get("PartitionKeys") or []]
        table_params = {k.lower(): v for k, v in (table.get("Parameters") or {}).items()}
        serde = ((sd.get("SerdeInfo") or {}).get("SerializationLibrary") or "").lower()
        if "json" not in serde:
            raise QueryError(
                f"NOT_SUPPORTED: the local Athena emulator reads JSON SerDe tables only ({serde or 'none'})"
            )
        ignore_malformed = (
            str((sd.get("SerdeInfo") or {}).get("Parameters", {}).get("ignore.malformed.json", "")).lower() == "true"
        )
        locations = self._partition_locations(
            glue,
            database=database,
            name=name,
            sd=sd,
            partition_keys=partition_keys,
            table_params=table_params,
            tree=tree,
            bound=bound,
        )
        path = workdir / f"{database}.{name}.jsonl"
        scanned = 0
        with path.open("w", encoding="utf-8") as out:
            for location, partition_values in locations:
                match = re.match(r"s3a?://([^/]+)/?(.*)", location)
                if not match:
                    raise QueryError(f"HIVE_METASTORE_ERROR: bad location {location}")
                bucket, prefix = match.group(1), match.group(2)
                if prefix and not prefix.endswith("/"):
                    prefix += "/"
                for key, body in self._storage.objects(bucket, prefix):
                    scanned += len(body)
                    for number, line in enumerate(body.decode("utf-8", "replace").splitlines(), start=1):
                        if not line.strip():
                            continue
                        try:
                            record = json.loads(line)
                            if not isinstance(record, dict):
                                raise ValueError("not an object")
                        except ValueError as e:
                            if ignore_malformed:
                                continue
                            raise QueryError(
                                f"HIVE_BAD_DATA: Error parsing field value for row {number} of s3://{bucket}/{key}: {e}"
                            ) from e
                        lowered = {str(k).lower(): v for k, v in record.items()}
                        row = {c: lowered.get(c) for c, _ in columns}
                        row.update(partition_values)
                        out.write(json.dumps(row) + "\n")
        all_columns = columns + partition_keys
        spec = "{" + ", ".join(f"'{c}': '{_duck_type(t)}'" for c, t in all_columns) + "}"
        db.execute(f'CREATE SCHEMA IF NOT EXISTS "{database}"')
        try:
            db.execute(
                f'CREATE TABLE "{database}"."{name}" AS SELECT * FROM read_json(?, format=\'newline_delimited\', '  # noqa: S608 - names come from the Glue catalog
                f"columns={spec})",
                [str(path)],
            )
        except duckdb.Error as e:
            raise QueryError(f"HIVE_BAD_DATA: {e}") from e
        return scanned

    def _partition_locations(
        self,
        glue: Any,
        *,
        database: str,
        name: str,
        sd: dict[str, Any],
        partition_keys: list[tuple[str, str]],
        table_params: dict[str, str],
        tree: exp.Expr,
        bound: dict[int, Any],
    ) -> list[tuple[str, dict[str, Any]]]:
        base = str(sd.get("Location") or "")
        if not partition_keys:
            return [(base, {})]
        if table_params.get("projection.enabled", "").lower() == "true":
            constraints = _equality_constraints(tree, {k for k, _ in partition_keys}, bound)
            template = table_params.get("storage.location.template")
            combos: list[dict[str, Any]] = [{}]
            for key, _type in partition_keys:
                kind = table_params.get(f"projection.{key}.type", "")
                if kind == "injected":
                    if key not in constraints:
                        raise QueryError(
                            f"CONSTRAINT_VIOLATION: For the injected projected partition column {key}, "
                            "the WHERE clause must contain only static equality conditions, and at least "
                            "one such condition must be present."
                        )
                    values = constraints[key]
                elif kind == "enum":
                    values = table_params.get(f"projection.{key}.values", "").split(",")
                else:
                    raise QueryError(f"NOT_SUPPORTED: projection type {kind!r} in the local Athena emulator")
                combos = [{**c, key: v} for c in combos for v in values]
            out = []
            for combo in combos:
                if template:
                    location = template
                    for key, value in combo.items():
                        location = location.replace("${" + key + "}", str(value))
                else:
                    location = base.rstrip("/") + "/" + "/".join(f"{k}={v}" for k, v in combo.items())
                out.append((location, combo))
            return out
        partitions = glue.get_partitions(DatabaseName=database, TableName=name).get("Partitions") or []
        return [
            (
                p["StorageDescriptor"]["Location"],
                dict(zip((k for k, _ in partition_keys), p["Values"], strict=False)),
            )
            for p in partitions
        ]


class _ApiError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _encode_token(offset: int, qid: str) -> str:
    return f"{qid}:{offset}"


def _decode_token(token: str | None, qid: str) -> int:
    if not token:
        return 0
    owner, _, offset = token.rpartition(":")
    if owner != qid or not offset.isdigit():
        raise _ApiError("InvalidRequestException", "NextToken is not valid for this query")
    return int(offset)


def _literal(text: str) -> Any:
    """An ExecutionParameters value: a SQL literal, never an expression."""
    stripped = text.strip()
    if re.fullmatch(r"'(?:[^']|'')*'", stripped, flags=re.S):
        return stripped[1:-1].replace("''", "'")
    if re.fullmatch(r"[+-]?\d+", stripped):
        return int(stripped)
    if re.fullmatch(r"[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?|[+-]?\d+[eE][+-]?\d+", stripped):
        return float(stripped) if re.search(r"[eE]", stripped) else decimal.Decimal(stripped)
    lowered = stripped.lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    if lowered == "null":
        return None
    typed = re.fullmatch(r"(date|timestamp)\s+'([^']*)'", stripped, flags=re.I)
    if typed:
        kind, value = typed.group(1).lower(), typed.group(2)
        return dt.date.fromisoformat(value) if kind == "date" else dt.datetime.fromisoformat(value)
    if stripped.startswith('"'):
        raise QueryError(
            f"INVALID_PARAMETER_USAGE: string execution parameters must be enclosed in single quotes, got {text}"
        )
    raise QueryError(f"COLUMN_NOT_FOUND: line 1:1: Column '{stripped}' cannot be resolved")


def _equality_constraints(tree: exp.Expr, columns: set[str], bound: dict[int, Any]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    where = tree.find(exp.Where)
    if where is None:
        return found
    for eq in where.find_all(exp.EQ):
        left, right = eq.left, eq.right
        if isinstance(right, exp.Column) and not isinstance(left, exp.Column):
            left, right = right, left
        if isinstance(left, exp.Column) and left.name.lower() in columns:
            value = _constant(right, bound)
            if value is not _NOT_CONSTANT:
                found.setdefault(left.name.lower(), []).append(value)
    for in_ in where.find_all(exp.In):
        if isinstance(in_.this, exp.Column) and in_.this.name.lower() in columns:
            values = [_constant(v, bound) for v in in_.expressions]
            if values and all(v is not _NOT_CONSTANT for v in values):
                found.setdefault(in_.this.name.lower(), []).extend(values)
    return found


_NOT_CONSTANT: Final = object()


def _constant(node: exp.Expr, bound: dict[int, Any]) -> Any:
    if isinstance(node, exp.Placeholder):
        return bound.get(id(node), _NOT_CONSTANT)
    if isinstance(node, exp.Literal):
        return node.this if node.is_string else node.to_py()
    return _NOT_CONSTANT


def _split_top(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current.strip())
    return parts


def _duck_type(hive: str) -> str:
    """Hive/Glue column type -> DuckDB type."""
    t = hive.strip()
    lower = t.lower()
    if lower.startswith("array<") and lower.endswith(">"):
        return f"{_duck_type(t[6:-1])}[]"
    if lower.startswith("map<") and lower.endswith(">"):
        key, value = _split_top(t[4:-1])
        return f"MAP({_duck_type(key)}, {_duck_type(value)})"
    if lower.startswith("struct<") and lower.endswith(">"):
        fields = []
        for part in _split_top(t[7:-1]):
            fname, _, ftype = part.partition(":")
            fields.append(f'"{fname.strip().lower()}" {_duck_type(ftype)}')
        return f"STRUCT({', '.join(fields)})"
    if lower.startswith(("decimal", "varchar", "char")):
        return t.upper() if lower.startswith("decimal") else "VARCHAR"
    simple = {
        "string": "VARCHAR",
        "int": "INTEGER",
        "integer": "INTEGER",
        "bigint": "BIGINT",
        "smallint": "SMALLINT",
        "tinyint": "TINYINT",
        "double": "DOUBLE",
        "float": "FLOAT",
        "boolean": "BOOLEAN",
        "date": "DATE",
        "timestamp": "TIMESTAMP",
        "binary": "BLOB",
    }
    if lower not in simple:
        raise QueryError(f"NOT_SUPPORTED: column type {hive}")
    return simple[lower]


def _athena_type(duck: str) -> str:
    upper = duck.upper()
    if upper.endswith("[]") or upper.startswith("LIST"):
        return "array"
    if upper.startswith("STRUCT"):
        return "row"
    if upper.startswith("MAP"):
        return "map"
    if upper.startswith("DECIMAL"):
        return "decimal"
    mapping = {
        "VARCHAR": "varchar",
        "BIGINT": "bigint",
        "HUGEINT": "bigint",
        "INTEGER": "integer",
        "SMALLINT": "smallint",
        "TINYINT": "tinyint",
        "DOUBLE": "double",
        "FLOAT": "real",
        "BOOLEAN": "boolean",
        "DATE": "date",
        "TIMESTAMP": "timestamp",
        "BLOB": "varbinary",
    }
    return mapping.get(upper, "varchar")


def _format(value: Any) -> str | None:
    """Athena's text form of a value in GetQueryResults."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join("null" if v is None else str(_format(v)) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={'null' if v is None else _format(v)}" for k, v in value.items()) + "}"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="milliseconds")
    return str(value)


def _column_info(name: str, athena_type: str) -> dict[str, Any]:
    return {
        "CatalogName": "hive",
        "SchemaName": "",
        "TableName": "",
        "Name": name,
        "Label": name,
        "Type": athena_type,
        "Precision": 2147483647 if athena_type == "varchar" else 19 if athena_type == "bigint" else 0,
        "Scale": 0,
        "Nullable": "UNKNOWN",
        "CaseSensitive": athena_type == "varchar",
    }


def _athena_error(error: Exception) -> str:
    name = type(error).__name__
    prefix = {
        "ParserException": "SYNTAX_ERROR",
        "BinderException": "COLUMN_NOT_FOUND",
        "CatalogException": "TABLE_NOT_FOUND",
        "ConversionException": "INVALID_CAST_ARGUMENT",
        "InvalidInputException": "INVALID_FUNCTION_ARGUMENT",
    }.get(name, "GENERIC_INTERNAL_ERROR")
    return f"{prefix}: {error}"
