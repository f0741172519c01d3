"""deploy/ for a real cluster, checked without one: every Kubernetes manifest validated offline
against the API's schemas (kubernetes-validate; KEDA's ScaledObject against its required shape),
compose and Kubernetes giving every dsar process the same settings and secrets from one source,
and the topology itself run as processes (two workers, the mailbox poller, the web app, one
Temporal, a PostgreSQL register, S3 blobs) with the environment the manifests set: a request
mailed to the privacy@ mailbox is answered.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import smtplib
import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import boto3
import httpx
import jsonschema
import kubernetes_validate
import pytest
import yaml
from sqlalchemy import create_engine

from demo.mailserver import PRIVACY_ADDRESS, dovecot_available
from dsar.devstack import BIN, Ports, Stack, _seed, free_port
from dsar.store import CaseStore
from tests.conftest import PG_ADMIN_URL, ROOT
from tests.oidcserver import SCRIPT_CLIENT, OidcProvider
from tests.smtpserver import SmtpServer

DEPLOY = ROOT / "deploy"
KUBERNETES_VERSION = "1.30"
#: The settings that name a place (a host, a port, a path, a URL) rather than a behaviour:
#: only these differ between compose, Kubernetes and the test's processes.
ADDRESSES = {
    "DSAR_TEMPORAL_ADDRESS", "DSAR_S3_ENDPOINT_URL", "DSAR_VAR_DIR", "DSAR_DATAMAP", "DSAR_PUBLIC_URL",
    "DSAR_CONSOLE_URL", "DSAR_TEMPORAL_UI_URL", "DSAR_OIDC_ISSUER", "DSAR_OIDC_API_AUDIENCE",
    "DSAR_SMTP_HOST", "DSAR_SMTP_PORT", "DSAR_IMAP_HOST", "DSAR_IMAP_PORT", "DSAR_IMAP_SSL",
    "DSAR_IMAP_USER", "DSAR_METRICS_HOST", "DSAR_METRICS_PORT", "DSAR_HTTP_HOST", "DSAR_HTTP_PORT",
    "DSAR_TRUSTED_PROXIES",
}  # fmt: skip
#: What every dsar process must share: links, suppression hashes and payloads must agree.
SHARED_SECRETS = {"DSAR_CODEC_KEY", "DSAR_LINK_SECRET", "DSAR_SUPPRESSION_KEY", "DSAR_DATABASE_URL"}

#: KEDA's ScaledObject (a custom resource: not in the API's schemas), the fields KEDA requires
SCALED_OBJECT = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "properties": {
                "scaleTargetRef": {"type": "object", "required": ["name"]},
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "properties": {
                            "metadata": {"type": "object", "additionalProperties": {"type": "string"}}
                        },
                    },
                },
            },
        },
    },
}


def k8s_documents() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / "k8s" / "dsar.yaml").read_text()) if d]


def k8s_config() -> dict[str, str]:
    (config,) = [
        d for d in k8s_documents() if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "dsar-config"
    ]
    return dict(config["data"])


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "docker-compose.yml").read_text()))


def secret_names() -> set[str]:
    lines = (DEPLOY / "secrets.example.env").read_text().splitlines()
    return {line.split("=", 1)[0] for line in lines if line and not line.startswith("#")}


def dsar_containers() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for doc in k8s_documents():
        if doc["kind"] in ("Deployment", "Job"):
            for c in doc["spec"]["template"]["spec"]["containers"]:
                if c["image"].startswith("dsar:"):
                    found.append((f"{doc['kind']}/{doc['metadata']['name']}", c))
    return found


def test_every_kubernetes_manifest_is_valid() -> None:
    kinds = []
    for doc in k8s_documents():
        kinds.append(doc["kind"])
        if doc["apiVersion"].startswith("keda.sh/"):
            jsonschema.validate(doc, SCALED_OBJECT)
        else:  # strict: an unknown field (a misspelt probe) is an error
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    assert {"ConfigMap", "Deployment", "Job", "Service", "Ingress", "ScaledObject"} <= set(kinds)
    # the check itself catches a misspelt field
    worker = next(d for d in k8s_documents() if d["kind"] == "Deployment")
    worker["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(worker, KUBERNETES_VERSION, strict=True)


def test_every_dsar_process_has_the_same_settings_secrets_probes_and_limits() -> None:
    containers = dsar_containers()
    assert {name for name, _ in containers} == {
        "Job/dsar-setup", "Deployment/dsar-worker", "Deployment/dsar-web", "Deployment/dsar-poller"
    }  # fmt: skip
    for name, c in containers:
        sources = [s.get("configMapRef", s.get("secretRef")) for s in c["envFrom"]]
        assert sources == [{"name": "dsar-config"}, {"name": "dsar"}] and "env" not in c, name
        assert {"cpu", "memory"} <= set(c["resources"]["limits"]), name
        if name.startswith("Deployment/"):
            assert "livenessProbe" in c and "readinessProbe" in c, name
        assert c["args"][0] == "dsar", name
    assert secret_names() >= SHARED_SECRETS
    config = k8s_config()
    assert not SHARED_SECRETS & set(config), "secrets belong in the Secret, not the ConfigMap"
    assert config["DSAR_ENVIRONMENT"] == "production" and config["DSAR_BLOB_STORE"] == "s3"

    # compose: the same settings (places aside) and the same secrets file for every dsar service
    doc = compose()
    shared = doc["x-dsar"]["environment"]
    assert {k: v for k, v in shared.items() if k not in ADDRESSES} == {
        k: v for k, v in config.items() if k not in ADDRESSES
    }
    dsar_services = {n: s for n, s in doc["services"].items() if s.get("image", "").startswith("dsar:")}
    assert set(dsar_services) == {"dsar-setup", "worker", "web", "poller"}
    for name, service in dsar_services.items():
        assert service["env_file"] == ["secrets.env"], name
        assert shared.items() <= {**shared, **service.get("environment", shared)}.items(), name
    for name, service in doc["services"].items():
        for needed in service.get("depends_on", {}):
            assert needed in doc["services"], f"{name} depends on unknown {needed}"
    ui = doc["services"]["temporal-ui"]["environment"]
    assert ui["TEMPORAL_AUTH_ENABLED"] == "true" and ui["TEMPORAL_CODEC_PASS_ACCESS_TOKEN"] == "true"
    assert ui["TEMPORAL_CODEC_ENDPOINT"] == shared["DSAR_PUBLIC_URL"] + "/codec"

    # Temporal's own chart: on PostgreSQL, its Web UI signed in and decoding through dsar
    values = yaml.safe_load((DEPLOY / "k8s" / "temporal-values.yaml").read_text())
    stores = values["server"]["config"]["persistence"]
    assert {stores[s]["sql"]["driver"] for s in ("default", "visibility")} == {"postgres12"}
    web_env = {e["name"]: e["value"] for e in values["web"]["additionalEnv"]}
    assert (
        web_env["TEMPORAL_AUTH_ENABLED"] == "true" and web_env["TEMPORAL_CODEC_PASS_ACCESS_TOKEN"] == "true"
    )
    assert web_env["TEMPORAL_CODEC_ENDPOINT"] == config["DSAR_PUBLIC_URL"] + "/codec"
    assert config["DSAR_TEMPORAL_UI_URL"] == web_env["TEMPORAL_CORS_ORIGINS"]
    (scaler,) = [d for d in k8s_documents() if d["kind"] == "ScaledObject"]
    (trigger,) = scaler["spec"]["triggers"]
    assert scaler["spec"]["scaleTargetRef"]["name"] == "dsar-worker" and trigger["type"] == "temporal"
    assert trigger["metadata"]["taskQueue"] == config["DSAR_TASK_QUEUE"]
    assert trigger["metadata"]["endpoint"] == config["DSAR_TEMPORAL_ADDRESS"]


# --- The topology as processes ---------------------------------------------------------------


class TopologyProvider(OidcProvider):
    """The test's OpenID provider; its script client acts for an operator who also reviews."""

    def _config(self) -> dict[str, Any]:
        config = super()._config()
        config["client_roles"] = {SCRIPT_CLIENT: ["operator", "reviewer"]}
        return config


@pytest.fixture
def register_database() -> Iterator[str]:
    """The name of a PostgreSQL database that does not exist yet: ``dsar setup`` creates it."""
    name = f"dsar_topology_{uuid.uuid4().hex[:10]}"
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.mark.e2e
@pytest.mark.postgres
def test_the_manifests_topology_answers_a_request_mailed_to_privacy(
    register_database: str, smtp_server: SmtpServer
) -> None:
    assert dovecot_available(), "dovecot is missing: run `make install`"
    var = Path(tempfile.mkdtemp(prefix="dsar-topology-"))
    ports = Ports(temporal=free_port(), ui=free_port(), http=free_port(), s3=free_port(),
                  imap=free_port(), smtp=free_port())  # fmt: skip
    base = f"http://127.0.0.1:{ports.http}"
    provider = TopologyProvider(base)
    provider.start()
    bucket = f"dsar-topology-{uuid.uuid4().hex[:8]}"
    # The environment the manifests set, with only the places moved to this machine's servers
    # and the secrets made here, as `kubectl create secret --from-env-file` would give them.
    places = {
        "DSAR_TEMPORAL_ADDRESS": f"127.0.0.1:{ports.temporal}",
        "DSAR_S3_ENDPOINT_URL": f"http://127.0.0.1:{ports.s3}",
        "DSAR_VAR_DIR": str(var),
        "DSAR_DATAMAP": str(ROOT / "demo" / "dsar.yaml"),
        "DSAR_PUBLIC_URL": base,
        "DSAR_CONSOLE_URL": base,
        "DSAR_TEMPORAL_UI_URL": "https://temporal-ui.test",
        "DSAR_OIDC_ISSUER": provider.issuer,
        "DSAR_OIDC_API_AUDIENCE": provider.settings()["oidc_api_audience"],
        "DSAR_SMTP_HOST": smtp_server.host,
        "DSAR_SMTP_PORT": str(smtp_server.port),
        "DSAR_METRICS_HOST": "127.0.0.1",
        "DSAR_HTTP_HOST": "127.0.0.1",
        "DSAR_HTTP_PORT": str(ports.http),
        "DSAR_TRUSTED_PROXIES": "[]",
    }  # the IMAP_* places are the stack's own mailbox (Stack.poller_env)
    assert set(places) <= ADDRESSES
    made = {
        "DSAR_CODEC_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "DSAR_LINK_SECRET": secrets.token_urlsafe(32),
        "DSAR_SUPPRESSION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "DSAR_DATABASE_URL": register_database,
        "DSAR_OIDC_CLIENT_SECRET": provider.client_secret,
        "AWS_ACCESS_KEY_ID": "topology",
        "AWS_SECRET_ACCESS_KEY": "topology",
    }
    env = {**k8s_config(), **places, **made, "DSAR_BLOB_BUCKET": bucket, "DSAR_IMAP_POLL_SECONDS": "0.5"}
    metrics_ports = {name: free_port() for name in ("worker-1", "worker-2", "poller")}
    stack = Stack(
        var=var,
        ports=ports,
        ui=False,
        workers=2,
        extra_env=env,
        web_command=[str(BIN / "dsar"), "web"],
        process_env={name: {"DSAR_METRICS_PORT": str(port)} for name, port in metrics_ports.items()},
    )
    _seed(stack)  # the demo company's systems, which the data map searches
    seed_recordings = stack.s3_ready

    def s3_ready(s: Stack) -> None:
        """Before the workers start: the blob bucket, and the set-up Job (`dsar setup`)."""
        assert seed_recordings is not None
        seed_recordings(s)
        s3 = boto3.client("s3", endpoint_url=s.s3_endpoint, region_name=env["DSAR_S3_REGION"],
                          aws_access_key_id="topology", aws_secret_access_key="topology")  # fmt: skip
        s3.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": env["DSAR_S3_REGION"]}
        )
        s._wait_port("temporal", s.ports.temporal, 60)
        _run_setup(s)

    stack.s3_ready = s3_ready
    try:
        stack.start()
        _mail_a_request(stack)
        token = provider.script_token()
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        ref = _opened_by_the_poller(stack)
        nothing_held = {"kind": "nothing_held", "system": "cctv", "reason": "no footage of the person"}
        _answer_by_hand(api, ref, "waiting_for", "search by hand: cctv", nothing_held)
        _answer_by_hand(api, ref, "stage", "reviewing", {"kind": "approve"})
        snap = _wait(api, ref, lambda s: s["stage"] == "responded", stack)

        # every system searched; the records found are on S3, encrypted; the register is PostgreSQL
        assert {s["system"]: s["status"] for s in snap["systems"]}["crm"] == "found"
        s3 = boto3.client("s3", endpoint_url=stack.s3_endpoint, region_name=env["DSAR_S3_REGION"],
                          aws_access_key_id="topology", aws_secret_access_key="topology")  # fmt: skip
        objects = s3.list_objects_v2(Bucket=bucket, Prefix=env["DSAR_BLOB_PREFIX"] + ref).get("Contents", [])
        assert objects, "no blob on S3"
        blob = s3.get_object(Bucket=bucket, Key=objects[0]["Key"])["Body"].read()
        assert b"Margaret" not in blob and b"margaret" not in blob
        store = CaseStore(register_database)
        try:
            row = store.get(ref)
            assert row is not None and row.stage == "responded" and row.channel == "email"
        finally:
            store.close()
        # the letters went out over SMTP, the response's link signed by a worker and opened by
        # the web app (the shared DSAR_LINK_SECRET)
        response = next(m for m in smtp_server.messages if "Our response" in str(m["Subject"]))
        text = response.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        link = next(w for w in text.split() if w.startswith(base + "/d/"))
        assert httpx.get(link, timeout=30).status_code == 200

        # probes: the web app's health, every worker's and the poller's /metrics
        assert httpx.get(base + "/healthz", timeout=10).json() == {"ok": True, "temporal": True}
        searches = 0.0
        for name, port in metrics_ports.items():
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
            assert "process_cpu_seconds_total" in body, name
            searches += sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
                            if line.startswith("dsar_connector_seconds_count{"))  # fmt: skip
        assert searches >= 3  # crm, marketing, recordings: searched by the workers
        assert "dsar_cases{" in httpx.get(base + "/metrics", timeout=10).text

        # the codec endpoint: staff token only, CORS for the Web UI's origin only
        payloads = {"payloads": [{"metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
                                  "data": base64.b64encode(b'"x"').decode()}]}  # fmt: skip
        origin = {"Origin": "https://temporal-ui.test"}
        assert httpx.post(base + "/codec/encode", json=payloads, headers=origin).status_code == 401
        encoded = api.post("/codec/encode", json=payloads, headers=origin)
        assert (
            encoded.status_code == 200 and encoded.headers["access-control-allow-origin"] == origin["Origin"]
        )
        other = api.post("/codec/encode", json=payloads, headers={"Origin": "http://127.0.0.1:8233"})
        assert "access-control-allow-origin" not in other.headers
        api.close()
        stack.check()
    finally:
        stack.stop()
        provider.stop()
        shutil.rmtree(var, ignore_errors=True)


def _run_setup(stack: Stack) -> None:
    """`dsar setup` as the set-up Job runs it, with the same environment: it creates the
    register's database; run again (the next release) it changes nothing."""
    outputs = []
    for _ in range(2):
        done = subprocess.run([str(BIN / "dsar"), "setup"], env=stack.env, capture_output=True, text=True,
                              timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        outputs.append(done.stdout)
    assert "database created" in outputs[0]
    assert "database exists" in outputs[1] and "search attributes: all present" in outputs[1]


def _mail_a_request(stack: Stack) -> None:
    message = EmailMessage()
    message["From"] = "Margaret Ellis <margaret.ellis@example.com>"
    message["To"] = PRIVACY_ADDRESS
    message["Subject"] = "Subject access request"
    message["Message-ID"] = make_msgid(domain="example.com")
    message.set_content(
        "Under Article 15 of the UK GDPR, please send me a copy of the personal data you hold about "
        "me. My phone number is +44 7911 123456 and my postcode is CV3 4LP.\n\nMargaret Ellis\n"
    )
    with smtplib.SMTP("127.0.0.1", stack.ports.smtp, timeout=10) as smtp:
        smtp.send_message(message)


def _opened_by_the_poller(stack: Stack) -> str:
    log = stack.var / "poller.log"
    deadline = time.monotonic() + 30
    while True:
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        for line in lines:
            if line.startswith('{"outcome"') and json.loads(line)["outcome"] == "request":
                return str(json.loads(line)["reference"])
        stack.check()
        assert time.monotonic() < deadline, f"no case opened: {log.read_text()[-2000:]}"
        time.sleep(0.1)


def _wait(api: httpx.Client, ref: str, ready: Any, stack: Stack, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        snap = api.get(f"/api/v1/requests/{ref}").json()
        if ready(snap):
            return dict(snap)
        stack.check()
        assert time.monotonic() < deadline, (
            f"{ref}: {snap.get('stage')}, waiting for {snap.get('waiting_for')}"
        )
        time.sleep(0.1)


def _answer_by_hand(api: httpx.Client, ref: str, field: str, value: str, decision: dict[str, str]) -> None:
    deadline = time.monotonic() + 60
    while True:
        snap = api.get(f"/api/v1/requests/{ref}").json()
        waiting = str(snap.get("waiting_for") or "")
        if value in str(snap.get(field)) and waiting and not waiting.startswith("matching"):
            break
        assert time.monotonic() < deadline, f"{ref}: {snap.get('stage')}, waiting for {waiting}"
        time.sleep(0.1)
    r = api.post(f"/api/v1/requests/{ref}/decisions", json=decision)
    assert r.status_code == 200, r.text
