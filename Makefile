# Two commands: `make run` (start Airflow locally) and `make test` (the whole suite).
# Both create .venv when it is missing or out of date: requirements.txt is what runs (the Docker
# image installs only that); requirements-dev.txt adds what only the tests and benchmarks import.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8080
export AIRFLOW_HOME ?= $(CURDIR)/.airflow

.PHONY: install run test benchmark clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version.split()[0]'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	# plugins/ on the venv's path, so `python -m maintenance ...` works outside Airflow too
	$(PY) -c 'import sysconfig, pathlib; pathlib.Path(sysconfig.get_paths()["purelib"], "maintenance-plugins.pth").write_text("$(CURDIR)/plugins\n")'
	touch $@

install: $(VENV)/.installed

run: install
	PORT=$(PORT) PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash scripts/run.sh

test: install
	$(PY) -m pytest

benchmark: install   # programs, not tests: each prints ratios and ends with one JSON line
	$(PY) benchmarks/uptime_sweep.py
	$(PY) benchmarks/backup_verify.py
	$(PY) benchmarks/status_page.py
	$(PY) benchmarks/status_page_today.py
	$(PY) benchmarks/dependency_scan.py
	$(PY) benchmarks/dag_parse.py
	$(PY) benchmarks/footprint.py    # starts `make run` on a free port: idle memory, one uptime_monitor run, one Ctrl-C
	$(PY) benchmarks/time_to_alert.py   # `make run` with the uptime watcher, ~17 min: outages to Slack, flapping, steady cost
	$(PY) benchmarks/post_deploy.py  # starts `make run` with Vercel/Sentry/Slack stand-ins: 5 deploys, READY -> verdict

clean:
	rm -rf .airflow .pytest_cache
