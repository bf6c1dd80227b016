"""deploy/ checked without a cluster or a Docker engine (neither exists here): yamllint on every
file, the kustomize output (kubectl kustomize) and every manifest against the Kubernetes schemas
(kubernetes-validate), both Envoy configs with `envoy --mode validate`, and the Istio and Docker
files for what they must say."""
import glob
import os
import subprocess

import yaml

from conftest import ROOT, require_tool

DEPLOY = os.path.join(ROOT, "deploy")


def run(*args, **kwargs):
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kwargs)


def test_yamllint():
    result = run(require_tool("yamllint"), "-c", os.path.join(DEPLOY, ".yamllint"), "--strict", DEPLOY)
    assert result.returncode == 0, result.stdout + result.stderr


def test_kustomize_output_is_valid_kubernetes(tmp_path):
    built = run(require_tool("kubectl"), "kustomize", os.path.join(DEPLOY, "kubernetes"))
    assert built.returncode == 0, built.stderr
    documents = [d for d in yaml.safe_load_all(built.stdout) if d]
    kinds = sorted(d["kind"] for d in documents)
    assert kinds == ["Deployment", "Namespace", "NetworkPolicy", "Service", "Service", "ServiceAccount"]
    for index, document in enumerate(documents):
        path = tmp_path / f"{index}.yaml"
        path.write_text(yaml.safe_dump(document))
        result = run(require_tool("kubernetes-validate"), "--strict", str(path))
        assert result.returncode == 0 and "passed" in result.stdout, result.stdout + result.stderr
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"requests", "limits"} <= set(container["resources"])
    grace = next(float(e["value"]) for e in container["env"] if e["name"] == "ALSTAP_SHUTDOWN_GRACE")
    assert pod["terminationGracePeriodSeconds"] > grace
    assert container["image"].startswith("ghcr.io/")
    env = {e["name"]: e["value"] for e in container["env"]}
    peers = next(d for d in documents if d["kind"] == "Service" and d["metadata"]["name"] == "alstap-peers")
    assert peers["spec"]["clusterIP"] == "None", "a headless Service: one address per replica"
    assert env["ALSTAP_PEERS"] == f"dns:alstap-peers.{peers['metadata']['namespace']}.svc.cluster.local:9002"
    assert peers["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    service = next(d for d in documents if d["kind"] == "Service" and d["metadata"]["name"] == "alstap")
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert ports["grpc-als"]["appProtocol"] == "grpc" and ports["grpc-als"]["port"] == 9001
    assert ports["http-tap"]["port"] == 9002


def test_every_manifest_validates_alone():
    files = [f for f in glob.glob(os.path.join(DEPLOY, "kubernetes", "*.yaml")) if not f.endswith("kustomization.yaml")]
    result = run(require_tool("kubernetes-validate"), "--strict", *files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == len(files)


def test_envoy_configs_validate():
    for config in glob.glob(os.path.join(DEPLOY, "envoy", "*.yaml")):
        result = run(require_tool("envoy"), "--mode", "validate", "-c", config, "--base-id", "7399")
        assert result.returncode == 0, config + result.stdout + result.stderr


def test_istio_providers_point_at_the_service():
    mesh = yaml.safe_load(open(os.path.join(DEPLOY, "istio", "meshconfig.yaml")))
    providers = {p["name"]: p for p in mesh["spec"]["meshConfig"]["extensionProviders"]}
    service = yaml.safe_load(open(os.path.join(DEPLOY, "kubernetes", "service.yaml")))
    host = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local"
    assert providers["alstap-http"]["envoyHttpAls"] == {"service": host, "port": 9001, "logName": "istio_http"}
    assert providers["alstap-tcp"]["envoyTcpAls"] == {"service": host, "port": 9001, "logName": "istio_tcp"}
    for name in ["telemetry-mesh.yaml", "telemetry-namespace.yaml"]:
        telemetry = yaml.safe_load(open(os.path.join(DEPLOY, "istio", name)))
        assert telemetry["kind"] == "Telemetry"
        used = {p["name"] for p in telemetry["spec"]["accessLogging"][0]["providers"]}
        assert used == set(providers)
    assert yaml.safe_load(open(os.path.join(DEPLOY, "istio", "telemetry-mesh.yaml")))["metadata"]["namespace"] == "istio-system"


def test_dockerfile_says_what_it_must():
    dockerfile = open(os.path.join(DEPLOY, "Dockerfile")).read()
    stages = dockerfile.split("\nFROM ")[1:]
    assert len(stages) == 2, "a build stage and a runtime stage"
    assert "bookworm" in stages[0] and "--static-swift-stdlib" in stages[0]
    runtime = stages[1]
    assert runtime.startswith("debian:12-slim")
    assert "libnghttp2-14 libprotobuf-c1 \\" in runtime
    assert "USER 10001" in runtime and "EXPOSE 9001 9002" in runtime
