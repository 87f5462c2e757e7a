"""``sse-dist launch --apply | status | logs`` through the real Kubernetes client, against a loopback stand-in.

There is no Kubernetes API server on this machine. The stand-in records the HTTP requests the official Python
client sends (from the kubeconfig, through its REST layer) and answers like an API server would, so these tests
check the calls (method, path, query, body, credentials) that the commands make, not what a cluster then does.
"""

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from sse_dist.cli import main
from sse_dist.config import ExperimentConfig, load
from sse_dist.launch import render

REPO = Path(__file__).resolve().parents[2]
CLUSTER = str(REPO / "configs" / "cluster-4x8.yaml")
TOKEN = "not-a-real-token"
NS = "speech"


class ApiStandIn(BaseHTTPRequestHandler):
    """Answers the few calls the launcher makes; ``server.requests`` records them, ``server.conflict`` makes
    a job create fail with 409 (the job exists)."""

    def _reply(self, code, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        url = urllib.parse.urlsplit(self.path)
        self.server.requests.append(
            {
                "method": self.command,
                "path": url.path,
                "query": dict(urllib.parse.parse_qsl(url.query)),
                "body": body,
                "auth": self.headers.get("Authorization"),
                "content_type": self.headers.get("Content-Type"),
            }
        )
        return url.path, body

    def do_POST(self):
        path, body = self._record()
        if path.endswith("/pytorchjobs") and self.server.conflict:
            return self._reply(409, {"kind": "Status", "code": 409, "reason": "AlreadyExists"})
        self._reply(201, {**body, "metadata": {**body["metadata"], "uid": "uid-1234"}})

    def do_PATCH(self):
        _, body = self._record()
        self._reply(200, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": body["metadata"]})

    def do_GET(self):
        path, _ = self._record()
        if path.endswith("/log"):
            return self._reply(200, b"step 1\nstep 2\n", "text/plain")
        if path.endswith("/pods"):
            pod = {
                "metadata": {"name": "ssl-4x8-train-master-0", "labels": {}},
                "status": {"phase": "Running", "containerStatuses": [_container_status(restarts=1)]},
            }
            return self._reply(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [pod]})
        self._reply(200, {"metadata": {"name": "ssl-4x8-train"}, "status": _job_status()})

    def log_message(self, *args):
        pass


def _container_status(restarts):
    return {"name": "pytorch", "image": "x", "imageID": "", "ready": True, "restartCount": restarts}


def _job_status():
    return {
        "conditions": [
            {"type": "Created", "status": "True", "reason": "PyTorchJobCreated"},
            {"type": "Running", "status": "True", "reason": "PyTorchJobRunning", "message": "running"},
        ],
        "replicaStatuses": {"Master": {"active": 1}, "Worker": {"active": 3}},
    }


@pytest.fixture
def api(tmp_path, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), ApiStandIn)
    server.requests, server.conflict = [], False
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "loopback", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}],
        "users": [{"name": "launcher", "user": {"token": TOKEN}}],
        "contexts": [{"name": "loopback", "context": {"cluster": "loopback", "user": "launcher"}}],
        "current-context": "loopback",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    monkeypatch.setenv("KUBECONFIG", str(path))
    yield server
    server.shutdown()
    server.server_close()


def test_apply_creates_the_config_then_the_job_then_links_them(api, capsys):
    assert main(["launch", "train", "--config", CLUSTER, "--apply"]) == 0
    cm, job = render.render(load(ExperimentConfig, [CLUSTER]), "train")
    create_cm, create_job, own = api.requests
    assert (create_cm["method"], create_cm["path"]) == ("POST", f"/api/v1/namespaces/{NS}/configmaps")
    assert create_cm["body"] == cm
    assert (create_job["method"], create_job["path"]) == (
        "POST",
        f"/apis/kubeflow.org/v1/namespaces/{NS}/pytorchjobs",
    )
    assert create_job["body"] == job
    assert (own["method"], own["path"]) == (
        "PATCH",
        f"/api/v1/namespaces/{NS}/configmaps/ssl-4x8-train-config",
    )
    assert own["body"]["metadata"]["ownerReferences"] == [
        {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "name": "ssl-4x8-train", "uid": "uid-1234"}
    ]
    assert all(r["auth"] == f"Bearer {TOKEN}" for r in api.requests)
    out = capsys.readouterr()
    assert "PyTorchJob speech/ssl-4x8-train" in out.out and TOKEN not in out.out + out.err


def test_apply_preprocess_posts_a_rayjob(api):
    assert main(["launch", "preprocess", "--config", CLUSTER, "--apply"]) == 0
    paths = [(r["method"], r["path"]) for r in api.requests]
    assert ("POST", f"/apis/ray.io/v1/namespaces/{NS}/rayjobs") in paths
    rayjob = next(r["body"] for r in api.requests if r["path"].endswith("/rayjobs"))
    assert rayjob["spec"]["entrypoint"].startswith("sse-dist preprocess --config ")


def test_an_existing_job_is_never_replaced(api, capsys):
    api.conflict = True
    assert main(["launch", "train", "--config", CLUSTER, "--apply"]) == 1
    assert "PyTorchJob speech/ssl-4x8-train already exists" in capsys.readouterr().err
    assert [r["method"] for r in api.requests] == ["POST", "POST"]  # no replace, no delete


def test_status_reads_the_job_and_its_pods(api, capsys):
    assert main(["launch", "status", "train", "--config", CLUSTER]) == 0
    get_job, list_pods = api.requests
    assert get_job["path"] == f"/apis/kubeflow.org/v1/namespaces/{NS}/pytorchjobs/ssl-4x8-train"
    assert list_pods["path"] == f"/api/v1/namespaces/{NS}/pods"
    assert list_pods["query"] == {"labelSelector": "app.kubernetes.io/instance=ssl-4x8-train"}
    summary = json.loads(capsys.readouterr().out)
    assert summary["state"] == "Running" and summary["replicas"]["Worker"] == {"active": 3}
    assert summary["pods"] == [{"name": "ssl-4x8-train-master-0", "phase": "Running", "restarts": 1}]


def test_logs_stream_the_first_training_pod(api, capsys):
    assert main(["launch", "logs", "train", "--config", CLUSTER, "--follow"]) == 0
    log = api.requests[-1]
    assert log["path"] == f"/api/v1/namespaces/{NS}/pods/ssl-4x8-train-master-0/log"
    assert log["query"] == {"container": "pytorch", "follow": "true"}
    assert capsys.readouterr().out.startswith("step 1\nstep 2\n")
