"""Real Envoys as an Istio sidecar sees alstap: an ALS cluster whose endpoints are several alstap
replicas (a Service's pods), round robin. Each Envoy answers HTTP on its own port with a direct
response and logs every request over gRPC ALS."""
import os
import socket
import subprocess
import tempfile
import time
import urllib.request

from conftest import ROOT, require_tool
from test_envoy import wait_envoy_ready

CONFIG = """
node:
  id: sidecar~127.0.0.1~app-{index}.demo~demo.svc.cluster.local
  cluster: app-{index}.demo
  metadata: {{ NAMESPACE: demo, NAME: app-{index}, WORKLOAD_NAME: app-{index} }}
admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: {admin} }} }}
static_resources:
  listeners:
  - name: inbound
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: inbound
          route_config:
            virtual_hosts:
            - name: app
              domains: ["*"]
              routes:
              - match: {{ prefix: "/" }}
                direct_response: {{ status: 200, body: {{ inline_string: "ok" }} }}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
          access_log:
          - name: envoy.access_loggers.http_grpc
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig
              common_config:
                log_name: inbound
                transport_api_version: V3
                buffer_flush_interval: 0.1s
                grpc_service: {{ envoy_grpc: {{ cluster_name: alstap }} }}
  clusters:
  - name: alstap
    type: STATIC
    connect_timeout: 1s
    lb_policy: ROUND_ROBIN
{health}
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{ http2_protocol_options: {{}} }}
    load_assignment:
      cluster_name: alstap
      endpoints:
{endpoints}
"""

# The endpoints' readiness as Kubernetes keeps it for a Service: a replica that fails /readyz
# leaves the endpoints Envoy balances over (here Envoy's own health check plays that part).
HEALTH = """    health_checks:
    - timeout: 0.5s
      interval: 0.2s
      # Envoy checks a cluster it sees as idle once a minute unless told otherwise.
      no_traffic_interval: 0.2s
      no_traffic_healthy_interval: 0.2s
      unhealthy_threshold: 1
      healthy_threshold: 1
      http_health_check: { path: /readyz }
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sidecars:
    """`count` Envoys logging to the alstap replicas `replicas` ((als port, http port) pairs):
    all of them balanced round robin, or with `preferred` each sidecar's first choice another
    replica (sidecar i prefers replica i mod n; the others are its fallbacks, by priority)."""

    def __init__(self, replicas, count=3, health=False, preferred=False):
        envoy = require_tool("envoy")
        self.dir = tempfile.mkdtemp(prefix="sidecars-", dir=os.path.join(ROOT, ".build"))
        self.ports, self.admins, self.procs = [], [], []
        endpoint = ("        - endpoint:\n"
                    "            address: {{ socket_address: {{ address: 127.0.0.1, port_value: {als} }} }}\n"
                    "            health_check_config: {{ port_value: {http} }}\n")
        for index in range(count):
            if preferred:
                order = replicas[index % len(replicas):] + replicas[:index % len(replicas)]
                endpoints = "".join(f"      - priority: {p}\n        lb_endpoints:\n" + endpoint.format(als=als, http=http)
                                    for p, (als, http) in enumerate(order))
            else:
                endpoints = "      - lb_endpoints:\n" + "".join(endpoint.format(als=als, http=http) for als, http in replicas)
            port, admin = free_port(), free_port()
            path = os.path.join(self.dir, f"envoy-{index}.yaml")
            with open(path, "w") as f:
                f.write(CONFIG.format(index=index, port=port, admin=admin, endpoints=endpoints,
                                      health=HEALTH if health else ""))
            self.procs.append(subprocess.Popen(
                [envoy, "-c", path, "--log-level", "warn", "--concurrency", "1", "--base-id", str(7400 + index)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            self.ports.append(port)
            self.admins.append(admin)
        for admin in self.admins:
            wait_envoy_ready(admin)

    def request(self, index, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[index]}{path}", timeout=5) as response:
            assert response.status == 200

    def stat(self, index, name):
        """A counter from an Envoy's admin /stats (0 when it does not exist yet)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admins[index]}/stats?filter={name}", timeout=5) as response:
            for line in response.read().decode().splitlines():
                key, _, value = line.partition(": ")
                if key == name:
                    return int(value)
        return 0

    def total(self, name):
        return sum(self.stat(i, name) for i in range(len(self.procs)))

    def stop(self):
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(timeout=10)


def drive(sidecars, seconds, tag, pause=0.02):
    """Requests round the sidecars for `seconds`; returns how many each got."""
    sent = [0] * len(sidecars.procs)
    deadline = time.time() + seconds
    while time.time() < deadline:
        for index in range(len(sent)):
            sidecars.request(index, f"/{tag}/{index}/{sent[index]}")
            sent[index] += 1
        time.sleep(pause)
    return sent
