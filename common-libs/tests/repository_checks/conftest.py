"""A small service repository in tmp_path, laid out as the fleet's are, for the repository kit."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from fastapi import FastAPI

from common_libs.testing.repository import Repository
from common_libs.testing.workflow import render_workflow

SERVICE = "demo-service"
# The service's app: /health always, /ready once its settings came through (as the fleet's do).
APP = """
import os
from pathlib import Path

from fastapi import FastAPI


def create_app() -> FastAPI:
    app = FastAPI()
    secrets = Path(os.environ.get("SECRETS_DIR", "/run/secrets"))
    database_url = (secrets / "DEMO_DATABASE_URL").read_text()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    def ready() -> dict[str, str]:
        return {"status": "ok", "database": database_url.split("@")[-1]}

    return app
"""
DOCKERFILE = """
FROM python:3.11-slim-bookworm AS build
RUN python -m venv /opt/venv

FROM python:3.11-slim-bookworm
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv
COPY app.py ./
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 GREETING="costs \\$5"
USER 10001:10001
EXPOSE 8000
CMD ["uvicorn", "app:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000", \\
     "--timeout-graceful-shutdown", "5"]
"""
KUSTOMIZATION = """
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: fleet
resources:
  - configmap.yaml
  - service.yaml
  - migration-job.yaml
  - deployment.yaml
  - networkpolicy.yaml
"""
AVAILABILITY = """
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
resources:
  - hpa.yaml
  - pdb.yaml
"""
HPA = """
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: demo-service
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: demo-service
  minReplicas: 2
  maxReplicas: 4
"""
PDB = """
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: demo-service
spec:
  maxUnavailable: 1
  selector:
    matchLabels:
      app: demo-service
"""
DIGEST = "sha256:" + "ab" * 32
OVERLAY = """
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: fleet
resources:
  - ../../base
{extra}
images:
  - name: demo-service
    newName: ghcr.io/example-org/demo-service
    newTag: "0.1.0"
{pin}
"""
OVERLAYS = {
    "dev": OVERLAY.format(extra="replicas:\n  - name: demo-service\n    count: 1", pin=""),
    "staging": OVERLAY.format(extra="components:\n  - ../../components/availability", pin=""),
    "prod": OVERLAY.format(
        extra="components:\n  - ../../components/availability",
        pin=f"    digest: {DIGEST}",
    ),
}
CONFIGMAP = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: demo-settings
data:
  ENVIRONMENT: production
  LOG_LEVEL: info
  OTEL_SERVICE_NAME: demo-service
  OTEL_EXPORTER_OTLP_ENDPOINT: http://otel-collector.observability.svc.cluster.local:4318
  OTEL_EXPORTER_OTLP_PROTOCOL: http/protobuf
  OTEL_TRACES_SAMPLER: parentbased_traceidratio
  OTEL_TRACES_SAMPLER_ARG: "0.1"
"""
NETWORK_POLICY = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: demo-service
spec:
  podSelector:
    matchLabels:
      app: demo-service
  policyTypes:
    - Egress
  egress:
    - to:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: observability
      ports:
        - protocol: TCP
          port: 4318
"""
SERVICE_MANIFEST = """
apiVersion: v1
kind: Service
metadata:
  name: demo-service
spec:
  selector:
    app: demo-service
  ports:
    - name: http
      port: 80
      targetPort: http
"""
CONTAINER_ENV = """
          envFrom:
            - configMapRef:
                name: demo-settings
              prefix: DEMO_
            # The OpenTelemetry SDK's own variables, unprefixed.
            - configMapRef:
                name: demo-settings
          env:
            - name: DEMO_LOG_LEVEL
              valueFrom:
                configMapKeyRef:
                  name: demo-settings
                  key: LOG_LEVEL
            - name: FORWARDED_ALLOW_IPS
              value: "*"
          volumeMounts:
            - name: secrets
              mountPath: /run/secrets
              readOnly: true
      volumes:
        - name: secrets
          secret:
            secretName: demo-secrets
"""
JOB = """
apiVersion: batch/v1
kind: Job
metadata:
  name: demo-service-migrate
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: demo-service
          command:
            - python
            - -c
            - import os; assert os.environ["DEMO_ENVIRONMENT"] == "production"
{env}
"""
DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: demo-service
spec:
  selector:
    matchLabels:
      app: demo-service
  template:
    metadata:
      labels:
        app: demo-service
        app.kubernetes.io/name: demo-service
    spec:
      terminationGracePeriodSeconds: 15
      containers:
        - name: api
          image: demo-service
          ports:
            - name: http
              containerPort: 8000
          startupProbe:
            httpGet:
              path: /health
              port: http
          livenessProbe:
            httpGet:
              path: /health
              port: 8000
          readinessProbe:
            httpGet:
              path: /ready
              port: http
          lifecycle:
            preStop:
              sleep:
                seconds: 5
{env}
"""


def write(path: Path, text: str) -> None:
    """Write ``text`` (dedented, without its first newline) to ``path``, folders included."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))


def build_repository(root: Path) -> Repository:
    """Write the demo service's repository under ``root``."""
    write(root / "src" / "pyproject.toml", f'[project]\nname = "{SERVICE}"\nversion = "0.1.0"\n')
    write(root / "src" / "app.py", APP)
    write(root / "src" / "Dockerfile", DOCKERFILE)
    deployment = root / "deployment" / "base"
    write(deployment / "kustomization.yaml", KUSTOMIZATION)
    write(deployment / "configmap.yaml", CONFIGMAP)
    write(deployment / "service.yaml", SERVICE_MANIFEST)
    write(deployment / "migration-job.yaml", JOB.format(env=CONTAINER_ENV))
    write(deployment / "deployment.yaml", DEPLOYMENT.format(env=CONTAINER_ENV))
    write(deployment / "networkpolicy.yaml", NETWORK_POLICY)
    availability = root / "deployment" / "components" / "availability"
    write(availability / "kustomization.yaml", AVAILABILITY)
    write(availability / "hpa.yaml", HPA)
    write(availability / "pdb.yaml", PDB)
    for name, kustomization in OVERLAYS.items():
        write(root / "deployment" / "overlays" / name / "kustomization.yaml", kustomization)
    write(root / "cicd" / "ci-cd.yml", render_workflow(SERVICE))
    return Repository.at(root)


@pytest.fixture
def repository(tmp_path: Path) -> Repository:
    """A fresh demo repository that passes every check."""
    return build_repository(tmp_path / "demo-service")


@pytest.fixture
def offline_app() -> FastAPI:
    """The demo service's routes, as a suite's ``offline_app`` fixture provides its app."""
    app = FastAPI()
    app.add_api_route("/health", lambda: {"status": "ok"})
    app.add_api_route("/ready", lambda: {"status": "ok"})
    return app
