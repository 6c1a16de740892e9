"""Measured figures a test wants in the suite's summary (e.g. the e2e alert latency).

`report(line)` prints the line and keeps it; tests/conftest.py lists them all at the end of
the run, so `make test` shows them without -s.
"""

FIGURES: list[str] = []


def report(line: str) -> None:
    print(line)
    FIGURES.append(line.strip())
