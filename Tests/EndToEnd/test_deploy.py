"""deploy/ checked without a cluster or a Docker engine (neither exists here): yamllint on every
file, the kustomize output (kubectl kustomize) and every manifest against the Kubernetes schemas
(kubernetes-validate), every Envoy config with `envoy --mode validate`, the Istio files against
Istio's API (istio_schemas.json, a strict JSON Schema transcribed from istio/api) and for what they
must say, the OTLP attribute set the same in AccessAttribute.swift, envoy-otlp.yaml and the Istio
provider, and the Docker file for what it must say."""
import glob
import json
import os
import re
import subprocess

import jsonschema
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
    assert kinds == ["Deployment", "Namespace", "NetworkPolicy", "PodDisruptionBudget", "Service", "Service",
                     "ServiceAccount"]
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
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep" and pod["terminationGracePeriodSeconds"] > float(pre_stop[1]) + grace
    assert deployment["spec"]["replicas"] >= 2 and deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    budget = next(d for d in documents if d["kind"] == "PodDisruptionBudget")
    assert budget["spec"]["selector"] == deployment["spec"]["selector"] and budget["spec"]["maxUnavailable"] == 1
    assert container["image"].startswith("ghcr.io/")
    env = {e["name"]: e["value"] for e in container["env"]}
    peers = next(d for d in documents if d["kind"] == "Service" and d["metadata"]["name"] == "alstap-peers")
    assert peers["spec"]["clusterIP"] == "None", "a headless Service: one address per replica"
    assert peers["spec"]["publishNotReadyAddresses"] is True, "a draining replica's last entries still reach cluster taps"
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


ISTIO = os.path.join(DEPLOY, "istio")
ALS_TELEMETRIES = ["telemetry-mesh.yaml", "telemetry-namespace.yaml"]


def load_istio(name):
    return yaml.safe_load(open(os.path.join(ISTIO, name)))


def test_istio_files_match_istios_api():
    schemas = json.load(open(os.path.join(ROOT, "Tests", "EndToEnd", "istio_schemas.json")))
    jsonschema.validate(load_istio("meshconfig.yaml"), schemas["meshConfig"])
    telemetries = sorted(os.path.basename(f) for f in glob.glob(os.path.join(ISTIO, "telemetry-*.yaml")))
    assert telemetries == sorted(ALS_TELEMETRIES + ["telemetry-otel.yaml"])
    for name in telemetries:
        jsonschema.validate(load_istio(name), schemas["telemetry"])


def test_istio_schemas_reject_what_istio_does_not_define():
    schemas = json.load(open(os.path.join(ROOT, "Tests", "EndToEnd", "istio_schemas.json")))
    mesh = load_istio("meshconfig.yaml")
    mesh["spec"]["meshConfig"]["extensionProviders"][2]["envoyOtelAls"]["headers"] = {"authorization": "x"}
    try:
        jsonschema.validate(mesh, schemas["meshConfig"])
        raise AssertionError("an envoyOtelAls field Istio does not define was accepted")
    except jsonschema.ValidationError:
        pass


def test_istio_providers_point_at_the_service():
    mesh = load_istio("meshconfig.yaml")
    providers = {p["name"]: p for p in mesh["spec"]["meshConfig"]["extensionProviders"]}
    service = yaml.safe_load(open(os.path.join(DEPLOY, "kubernetes", "service.yaml")))
    host = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local"
    assert providers["alstap-http"]["envoyHttpAls"] == {"service": host, "port": 9001, "logName": "istio_http"}
    assert providers["alstap-tcp"]["envoyTcpAls"] == {"service": host, "port": 9001, "logName": "istio_tcp"}
    otel = providers["alstap-otel"]["envoyOtelAls"]
    assert (otel["service"], otel["port"], otel["logName"]) == (host, 9001, "istio_otel")
    assert set(otel) == {"service", "port", "logName", "logFormat"}
    for name in ALS_TELEMETRIES:
        telemetry = load_istio(name)
        used = {p["name"] for p in telemetry["spec"]["accessLogging"][0]["providers"]}
        assert used == {"alstap-http", "alstap-tcp"}
    otel_telemetry = load_istio("telemetry-otel.yaml")
    assert {p["name"] for p in otel_telemetry["spec"]["accessLogging"][0]["providers"]} == {"alstap-otel"}
    # The same name and namespace as the mesh-wide ALS Telemetry: applying one replaces the other.
    mesh_wide = load_istio("telemetry-mesh.yaml")
    assert mesh_wide["metadata"]["namespace"] == "istio-system"
    assert otel_telemetry["metadata"] == mesh_wide["metadata"]


def access_attributes():
    """AccessAttribute.swift: every attribute's name, the Envoy format string of those that have
    one, and the recommended set (`isRecommended`)."""
    source = open(os.path.join(ROOT, "Sources", "ALSTapOTLP", "AccessAttribute.swift")).read()
    names = dict(re.findall(r'^\s*case (\w+) = "([^"]+)"$', source, re.M))
    formats = dict(re.findall(r'^\s*case \.(\w+): "([^"]+)"$', source, re.M))
    recommended_block = source.split("package var isRecommended")[1].split("true")[0]
    recommended = re.findall(r"\.(\w+)", recommended_block)
    assert len(names) > 50 and len(formats) > 30 and set(formats) <= set(names)
    assert 15 <= len(recommended) < len(formats) and set(recommended) <= set(formats)
    return (set(names.values()), {names[case]: format for case, format in formats.items()},
            {names[case]: formats[case] for case in recommended})


def test_otlp_attribute_set_is_the_same_everywhere():
    names, formats, recommended = access_attributes()
    envoy = yaml.safe_load(open(os.path.join(DEPLOY, "envoy", "envoy-otlp.yaml")))
    hcm = envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    loggers = {a["typed_config"]["log_name"]: a["typed_config"] for a in hcm["access_log"]
               if a["name"] == "envoy.access_loggers.open_telemetry"}
    # The gRPC logger sends the recommended set, the HTTP one every attribute alstap reads.
    for log_name, expected in [("otlp_grpc", recommended), ("otlp_http", formats)]:
        attributes = {kv["key"]: kv["value"]["string_value"] for kv in loggers[log_name]["attributes"]["values"]}
        # The demo's own logged header comes on top of alstap's set.
        assert attributes.pop("http.request.header.x-demo") == "%REQ(X-DEMO)%"
        assert attributes == expected, log_name
    assert "attributes" not in loggers["otlp_text"]
    mesh = load_istio("meshconfig.yaml")
    otel = next(p for p in mesh["spec"]["meshConfig"]["extensionProviders"] if p["name"] == "alstap-otel")
    labels = otel["envoyOtelAls"]["logFormat"]["labels"]
    assert set(labels) <= names, set(labels) - names
    assert {k: v for k, v in labels.items() if k in formats} == recommended
    rest = {k: v for k, v in labels.items() if k not in formats}
    assert rest == {
        "envoy.node_id": "%CEL(xds.node.id)%",
        "envoy.log_name": "istio_otel",
        "k8s.deployment.name": "%ENVIRONMENT(ISTIO_META_WORKLOAD_NAME)%",
        **{f"envoy.{side}_peer.{field}": f"%CEL(filter_state.{side}_peer.{field})%"
           for side in ["upstream", "downstream"] for field in ["workload", "namespace"]},
    }


def test_istio_labels_are_formats_envoy_accepts(tmp_path):
    """The Istio provider's labels as an Envoy 1.40 OpenTelemetry logger's attributes (what istiod
    generates from them): every command operator must exist (`--mode validate` rejects unknown ones)."""
    mesh = load_istio("meshconfig.yaml")
    otel = next(p for p in mesh["spec"]["meshConfig"]["extensionProviders"] if p["name"] == "alstap-otel")
    labels = otel["envoyOtelAls"]["logFormat"]["labels"]
    envoy = yaml.safe_load(open(os.path.join(DEPLOY, "envoy", "envoy-otlp.yaml")))
    hcm = envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    logger = hcm["access_log"][0]["typed_config"]
    logger["attributes"] = {"values": [{"key": k, "value": {"string_value": v}} for k, v in labels.items()]}
    logger["disable_builtin_labels"] = True
    path = tmp_path / "istio-labels.yaml"
    path.write_text(yaml.safe_dump(envoy))
    result = run(require_tool("envoy"), "--mode", "validate", "-c", str(path), "--base-id", "7398")
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_says_what_it_must():
    dockerfile = open(os.path.join(DEPLOY, "Dockerfile")).read()
    stages = dockerfile.split("\nFROM ")[1:]
    assert len(stages) == 2, "a build stage and a runtime stage"
    assert "bookworm" in stages[0] and "--static-swift-stdlib" in stages[0]
    runtime = stages[1]
    assert runtime.startswith("debian:12-slim")
    assert "libnghttp2-14 libprotobuf-c1 \\" in runtime
    assert "USER 10001" in runtime and "EXPOSE 9001 9002" in runtime
