"""DAG parse cost, the way Airflow's DAG processor pays it: each file parsed in a fresh fork
of a process that has only Airflow imported. Each of our DAG files is timed against a trivial
one-task DAG in alternating pairs (the machine is noisy: ratios, not absolute times).

    .venv/bin/python benchmarks/dag_parse.py [pairs]

Bytecode is compiled first, as `make run` (scripts/run.sh) and the Docker image do: with
PYTHONDONTWRITEBYTECODE set and no __pycache__, every parse would compile our modules from source.

Last line: JSON {"worst_file": ..., "worst_ratio": ..., "ratios": {...}}. Target: worst <= 1.5.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOME = tempfile.mkdtemp(prefix="dag-parse-")
os.environ.update({
    "AIRFLOW_HOME": HOME,
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME}/airflow.db",
    "MAINTENANCE_CONFIG": str(ROOT / "include" / "config" / "maintenance.yaml"),
})
sys.path.insert(0, str(ROOT / "plugins"))

TRIVIAL = '''
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
with DAG(dag_id="trivial", schedule=None):
    EmptyOperator(task_id="only")
'''


def parse_in_fork(path: str) -> float:
    """Seconds to import one DAG file in a fresh child (as the DAG processor does)."""
    import importlib.util

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        started = time.perf_counter()
        spec = importlib.util.spec_from_file_location(f"dagfile_{Path(path).stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        elapsed = time.perf_counter() - started
        os.write(write, repr(elapsed).encode())
        os._exit(0)
    os.close(write)
    data = b""
    while chunk := os.read(read, 64):
        data += chunk
    os.close(read)
    _, status = os.waitpid(pid, 0)
    if status != 0 or not data:
        raise RuntimeError(f"parsing {path} failed in the child (status {status})")
    return float(data)


def main() -> None:
    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    # What the DAG processor has imported before it forks: Airflow itself, nothing of ours.
    import airflow  # noqa: F401
    import airflow.sdk  # noqa: F401
    from airflow.providers.standard.operators.empty import EmptyOperator  # noqa: F401
    from airflow.sdk.bases.notifier import BaseNotifier  # noqa: F401

    import compileall

    for folder in ("plugins", "dags"):
        compileall.compile_dir(str(ROOT / folder), quiet=1)
    trivial = Path(HOME) / "trivial_dag.py"
    trivial.write_text(TRIVIAL)
    parse_in_fork(str(trivial))   # warm the page cache
    ratios: dict[str, float] = {}
    for dag_file in sorted((ROOT / "dags").glob("*.py")):
        ours, base = [], []
        for _ in range(pairs):
            base.append(parse_in_fork(str(trivial)))
            ours.append(parse_in_fork(str(dag_file)))
        ratios[dag_file.name] = round(statistics.median(ours) / statistics.median(base), 2)
        print(f"{dag_file.name:28s} {statistics.median(ours) * 1000:7.1f} ms  trivial "
              f"{statistics.median(base) * 1000:6.1f} ms  ratio {ratios[dag_file.name]:.2f}")
    worst = max(ratios, key=ratios.get)
    print(json.dumps({"worst_file": worst, "worst_ratio": ratios[worst], "ratios": ratios}))


if __name__ == "__main__":
    main()
