# Airflow image for the maintenance orchestration project.
#
# Extends the official image with the project's pinned dependencies, as the docker-stack
# docs recommend (https://airflow.apache.org/docs/docker-stack/build.html), instead of
# _PIP_ADDITIONAL_REQUIREMENTS, which would reinstall them on every container start.
# dags/, plugins/ and include/ are baked in too, for Kubernetes (deploy/helm/values.yaml);
# docker-compose.yaml mounts the working tree's over them for development.
FROM apache/airflow:3.3.2-python3.11

# The base image already runs as `airflow`; pip must install into its environment.
USER airflow

COPY requirements.txt /requirements.txt

# Naming apache-airflow at the base image's own version stops the resolver from moving
# Airflow core while it installs providers and SDKs.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /requirements.txt

COPY --chown=airflow:0 dags /opt/airflow/dags
COPY --chown=airflow:0 plugins /opt/airflow/plugins
COPY --chown=airflow:0 include /opt/airflow/include
# Precompiled bytecode: the DAG processor parses every DAG file in a fresh process, and without
# __pycache__ (a read-only or PYTHONDONTWRITEBYTECODE deployment) each parse compiles our
# operator modules from source again (benchmarks/dag_parse.py: about 1.9x a trivial DAG, not 1.4x).
RUN python -m compileall -q /opt/airflow/plugins /opt/airflow/dags

# Airflow puts plugins/ on sys.path itself, but only inside Airflow processes; this makes
# `python -m maintenance ...` (e.g. validate-config) work in the container as well.
ENV PYTHONPATH="/opt/airflow/plugins${PYTHONPATH:+:${PYTHONPATH}}" \
    MAINTENANCE_CONFIG=/opt/airflow/include/config/maintenance.yaml
