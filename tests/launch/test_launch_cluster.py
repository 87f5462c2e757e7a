"""``sse-dist launch --apply [--server-dry-run] | status | logs`` through the real Kubernetes client, against a
loopback stand-in.

There is no Kubernetes API server on this machine. The stand-in is a real HTTP peer on loopback: it records the
requests the official Python client sends (from the kubeconfig, through its REST layer), keeps what a create
without ``dryRun`` would persist, and answers like an API server would. These tests check the calls (method,
path, query, body, credentials) that the commands make, not what a cluster then does.
"""

import json
import socket
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
    """Answers the few calls the launcher makes; ``server.requests`` records them, ``server.stored`` holds what
    was created for real (not under ``dryRun=All``), ``server.conflict`` makes a job create fail with 409."""

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
        if path.endswith("/trainjobs") and self.server.missing:  # no such CRD on this server
            return self._reply(404, {"kind": "Status", "code": 404, "reason": "NotFound"})
        if path.endswith("/trainjobs") and self.server.invalid:  # what a CRD schema or webhook refuses
            return self._reply(422, {"kind": "Status", "code": 422, "reason": "Invalid", "message": INVALID})
        if path.endswith(("/pytorchjobs", "/trainjobs")) and self.server.conflict:
            return self._reply(409, {"kind": "Status", "code": 409, "reason": "AlreadyExists"})
        if self.server.requests[-1]["query"].get("dryRun") != "All":
            self.server.stored.append(path)
        self._reply(201, {**body, "metadata": {**body["metadata"], "uid": "uid-1234"}})

    def do_PATCH(self):
        _, body = self._record()
        self._reply(200, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": body["metadata"]})

    def do_GET(self):
        path, _ = self._record()
        if path.endswith("/log"):
            return self._reply(200, b"step 1\nstep 2\n", "text/plain")
        if path.endswith("/pods"):
            items = [_pod(name, created, restarts) for name, created, restarts in self.server.pods]
            return self._reply(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
        if "/jobsets/" in path:
            return self._reply(200, {"metadata": {"name": "ssl-4x8-train"}, "status": JOBSET_STATUS})
        status = TRAINJOB_STATUS if "/trainjobs/" in path else PYTORCHJOB_STATUS
        self._reply(200, {"metadata": {"name": "ssl-4x8-train"}, "status": status})

    def log_message(self, *args):
        pass


def _pod(name, created, restarts):
    status = {"name": "node", "image": "x", "imageID": "", "ready": True, "restartCount": restarts}
    return {
        "metadata": {"name": name, "labels": {}, "creationTimestamp": created},
        "status": {"phase": "Running", "containerStatuses": [status]},
    }


PYTORCHJOB_STATUS = {
    "conditions": [
        {"type": "Created", "status": "True", "reason": "PyTorchJobCreated"},
        {"type": "Running", "status": "True", "reason": "PyTorchJobRunning", "message": "running"},
    ],
    "replicaStatuses": {"Master": {"active": 1}, "Worker": {"active": 3}},
}
JOBS = [{"name": "node", "ready": 1, "succeeded": 0, "failed": 0, "active": 1, "suspended": 0}]
TRAINJOB_STATUS = {
    "conditions": [{"type": "Suspended", "status": "False", "reason": "Resumed", "message": "resumed"}],
    "jobsStatus": JOBS,
}
JOBSET_STATUS = {"restarts": 1, "replicatedJobsStatus": JOBS, "conditions": []}
# After one JobSet restart: the node-0 pod of the first attempt and the one of the second.
TRAINJOB_PODS = [
    ("ssl-4x8-train-node-0-0-abcde", "2026-11-30T01:00:00Z", 0),
    ("ssl-4x8-train-node-0-0-fghij", "2026-11-30T02:00:00Z", 0),
    ("ssl-4x8-train-node-0-1-klmno", "2026-11-30T02:00:00Z", 2),
]
PYTORCHJOB = "--set=launch.train_api=pytorchjob"
INVALID = (
    'TrainJob.trainer.kubeflow.org "ssl-4x8-train" is invalid: spec.runtimeRef: Invalid value:\n'
    '"sse-dist-torch": specified trainingRuntime must be created before the TrainJob is created'
)


def _kubeconfig(folder, server):
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "loopback", "cluster": {"server": server}}],
        "users": [{"name": "launcher", "user": {"token": TOKEN}}],
        "contexts": [{"name": "loopback", "context": {"cluster": "loopback", "user": "launcher"}}],
        "current-context": "loopback",
    }
    path = folder / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    return path


@pytest.fixture
def api(tmp_path, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), ApiStandIn)
    server.requests, server.stored, server.conflict = [], [], False
    server.pods = [("ssl-4x8-train-master-0", "2026-11-30T01:00:00Z", 1)]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.missing = server.invalid = False
    monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path, f"http://127.0.0.1:{server.server_port}")))
    yield server
    server.shutdown()
    server.server_close()


def test_apply_creates_the_config_then_the_trainjob_then_links_them(api, capsys):
    assert main(["launch", "train", "--config", CLUSTER, "--apply"]) == 0
    cm, job = render.render(load(ExperimentConfig, [CLUSTER]), "train")
    create_cm, create_job, own = api.requests
    assert (create_cm["method"], create_cm["path"]) == ("POST", f"/api/v1/namespaces/{NS}/configmaps")
    assert create_cm["body"] == cm
    assert (create_job["method"], create_job["path"]) == (
        "POST",
        f"/apis/trainer.kubeflow.org/v1alpha1/namespaces/{NS}/trainjobs",
    )
    assert create_job["body"] == job and job["kind"] == "TrainJob"
    assert (own["method"], own["path"]) == (
        "PATCH",
        f"/api/v1/namespaces/{NS}/configmaps/ssl-4x8-train-config",
    )
    assert own["body"]["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "trainer.kubeflow.org/v1alpha1",
            "kind": "TrainJob",
            "name": "ssl-4x8-train",
            "uid": "uid-1234",
        }
    ]
    assert all(r["auth"] == f"Bearer {TOKEN}" for r in api.requests)
    assert all("dryRun" not in r["query"] for r in api.requests)
    out = capsys.readouterr()
    assert "TrainJob speech/ssl-4x8-train" in out.out and TOKEN not in out.out + out.err


def test_apply_posts_a_pytorchjob_for_a_v1_operator_cluster(api):
    assert main(["launch", "train", "--config", CLUSTER, "--apply", PYTORCHJOB]) == 0
    create_job = api.requests[1]
    assert create_job["path"] == f"/apis/kubeflow.org/v1/namespaces/{NS}/pytorchjobs"
    assert create_job["body"]["kind"] == "PyTorchJob"
    assert api.requests[2]["body"]["metadata"]["ownerReferences"][0]["kind"] == "PyTorchJob"


@pytest.mark.parametrize(
    ("stage", "extra", "plural"),
    [("train", [], "trainjobs"), ("train", [PYTORCHJOB], "pytorchjobs"), ("preprocess", [], "rayjobs")],
)
def test_server_dry_run_sends_dry_run_all_and_creates_nothing(api, capsys, stage, extra, plural):
    argv = ["launch", stage, "--config", CLUSTER, "--apply", "--server-dry-run", *extra]
    assert main(argv) == 0
    assert [(r["method"], r["path"].rsplit("/", 1)[-1]) for r in api.requests] == [
        ("POST", "configmaps"),
        ("POST", plural),
    ]  # no owner patch: the dry-run objects do not exist
    assert all(r["query"] == {"dryRun": "All"} for r in api.requests)
    assert api.stored == []  # the stand-in persisted nothing, as an API server under dryRun=All
    overrides = [e.removeprefix("--set=") for e in extra]
    assert api.requests[1]["body"] == render.render(load(ExperimentConfig, [CLUSTER], overrides), stage)[1]
    summary = json.loads(capsys.readouterr().out)
    assert "created" not in summary and len(summary["accepted_by_server_dry_run"]) == 2


def test_server_dry_run_goes_with_apply(api, capsys):
    assert main(["launch", "train", "--config", CLUSTER, "--server-dry-run"]) == 1
    assert "--server-dry-run goes with --apply" in capsys.readouterr().err
    assert api.requests == []


def test_an_unreachable_cluster_is_one_clear_line(tmp_path, monkeypatch, capsys):
    with socket.socket() as s:  # a loopback port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path, f"https://127.0.0.1:{port}")))
    assert main(["launch", "train", "--config", CLUSTER, "--apply", "--server-dry-run"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(
        f"sse-dist launch: error: no Kubernetes API server reachable at https://127.0.0.1:{port}"
    )


def test_no_kubeconfig_and_no_pod_is_one_clear_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert main(["launch", "status", "train", "--config", CLUSTER]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no Kubernetes cluster configured" in err, err


def test_a_missing_crd_names_the_operator_to_install(api, capsys):
    api.missing = True
    assert main(["launch", "train", "--config", CLUSTER, "--apply"]) == 1
    err = capsys.readouterr().err
    assert "does not serve trainer.kubeflow.org/v1alpha1 trainjobs" in err and err.count("\n") == 1


def test_what_the_server_refuses_is_one_line_with_its_reason(api, capsys):
    api.invalid = True
    assert main(["launch", "train", "--config", CLUSTER, "--apply", "--server-dry-run"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "the API server answered 422: TrainJob.trainer.kubeflow.org" in err
    assert 'Invalid value: "sse-dist-torch": specified trainingRuntime must be created' in err


def test_apply_preprocess_posts_a_rayjob(api):
    assert main(["launch", "preprocess", "--config", CLUSTER, "--apply"]) == 0
    paths = [(r["method"], r["path"]) for r in api.requests]
    assert ("POST", f"/apis/ray.io/v1/namespaces/{NS}/rayjobs") in paths
    rayjob = next(r["body"] for r in api.requests if r["path"].endswith("/rayjobs"))
    assert rayjob["spec"]["entrypoint"].startswith("sse-dist preprocess --config ")


@pytest.mark.parametrize(("extra", "kind"), [([], "TrainJob"), ([PYTORCHJOB], "PyTorchJob")])
def test_an_existing_job_is_never_replaced(api, capsys, extra, kind):
    api.conflict = True
    assert main(["launch", "train", "--config", CLUSTER, "--apply", *extra]) == 1
    assert f"{kind} speech/ssl-4x8-train already exists" in capsys.readouterr().err
    assert [r["method"] for r in api.requests] == ["POST", "POST"]  # no replace, no delete


def test_status_reads_the_pytorchjob_and_its_pods(api, capsys):
    assert main(["launch", "status", "train", "--config", CLUSTER, PYTORCHJOB]) == 0
    get_job, list_pods = api.requests
    assert get_job["path"] == f"/apis/kubeflow.org/v1/namespaces/{NS}/pytorchjobs/ssl-4x8-train"
    assert list_pods["path"] == f"/api/v1/namespaces/{NS}/pods"
    assert list_pods["query"] == {"labelSelector": "app.kubernetes.io/instance=ssl-4x8-train"}
    summary = json.loads(capsys.readouterr().out)
    assert summary["state"] == "Running" and summary["replicas"]["Worker"] == {"active": 3}
    assert summary["pods"] == [{"name": "ssl-4x8-train-master-0", "phase": "Running", "restarts": 1}]


def test_status_reads_the_trainjob_its_jobset_and_its_pods(api, capsys):
    api.pods = TRAINJOB_PODS
    assert main(["launch", "status", "train", "--config", CLUSTER]) == 0
    get_job, get_jobset, list_pods = api.requests
    assert get_job["path"] == f"/apis/trainer.kubeflow.org/v1alpha1/namespaces/{NS}/trainjobs/ssl-4x8-train"
    assert get_jobset["path"] == f"/apis/jobset.x-k8s.io/v1alpha2/namespaces/{NS}/jobsets/ssl-4x8-train"
    assert list_pods["query"] == {"labelSelector": "app.kubernetes.io/instance=ssl-4x8-train"}
    summary = json.loads(capsys.readouterr().out)
    assert summary["job"] == f"TrainJob {NS}/ssl-4x8-train"
    assert (
        summary["state"] == "Running"
    )  # no condition is True (not suspended, complete or failed), a Job runs
    assert summary["jobs"] == JOBS and summary["jobset"]["restarts"] == 1
    assert [p["name"] for p in summary["pods"]] == [name for name, _, _ in TRAINJOB_PODS]


def test_logs_stream_the_first_pytorchjob_pod(api, capsys):
    assert main(["launch", "logs", "train", "--config", CLUSTER, "--follow", PYTORCHJOB]) == 0
    log = api.requests[-1]
    assert log["path"] == f"/api/v1/namespaces/{NS}/pods/ssl-4x8-train-master-0/log"
    assert log["query"] == {"container": "pytorch", "follow": "true"}
    assert capsys.readouterr().out.startswith("step 1\nstep 2\n")


def test_logs_stream_the_live_node_0_pod_of_a_trainjob(api, capsys):
    api.pods = TRAINJOB_PODS
    assert main(["launch", "logs", "train", "--config", CLUSTER]) == 0
    log = api.requests[-1]
    assert log["path"] == f"/api/v1/namespaces/{NS}/pods/ssl-4x8-train-node-0-0-fghij/log"
    assert log["query"] == {"container": "node", "follow": "false"}
    assert capsys.readouterr().out.startswith("step 1\nstep 2\n")


def test_logs_of_a_trainjob_without_pods_say_so(api, capsys):
    api.pods = []
    assert main(["launch", "logs", "train", "--config", CLUSTER]) == 1
    assert "TrainJob ssl-4x8-train: no pod of node 0 yet" in capsys.readouterr().err
