"""A real Redis Cluster of three primaries on loopback, for tests."""

from __future__ import annotations

import random
import socket
import time
from pathlib import Path

import redis

from src.cache.redis_server import RedisServer

SLOTS = 16384


class LocalRedisCluster:
    """Three ``redis-server`` processes in cluster mode, joined, with all slots served.

    Args:
        workdir: A folder for the nodes' files (one sub-folder each).
        nodes: How many primaries.
    """

    def __init__(self, workdir: Path, nodes: int = 3) -> None:
        self.servers = []
        for i in range(nodes):
            folder = workdir / f"node-{i}"
            folder.mkdir(parents=True, exist_ok=True)
            self.servers.append(RedisServer(folder, port=_cluster_port()))

    @property
    def url(self) -> str:
        """URL of one node; a cluster client discovers the others."""
        return self.servers[0].url

    def start(self, timeout_s: float = 30.0) -> LocalRedisCluster:
        for server in self.servers:
            server.start(
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "2000",
            )  # fmt: skip
        clients = [redis.Redis(port=s.port) for s in self.servers]
        try:
            share = SLOTS // len(clients)
            for i, client in enumerate(clients):
                last = SLOTS - 1 if i == len(clients) - 1 else (i + 1) * share - 1
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", i * share, last)
            for server in self.servers[1:]:
                clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", server.port)
            deadline = time.monotonic() + timeout_s
            while not all(_ready(c, len(clients)) for c in clients):
                if time.monotonic() > deadline:
                    raise RuntimeError("the local Redis Cluster did not form")
                time.sleep(0.1)
        finally:
            for client in clients:
                client.close()
        return self

    def keys_per_node(self) -> list[int]:
        """How many keys each node holds."""
        counts = []
        for server in self.servers:
            client = redis.Redis(port=server.port)
            counts.append(int(client.dbsize()))
            client.close()
        return counts

    def kill(self) -> None:
        for server in self.servers:
            server.kill()


def _ready(client: redis.Redis, nodes: int) -> bool:
    info = client.execute_command("CLUSTER", "INFO").decode()
    fields = dict(line.split(":", 1) for line in info.split() if ":" in line)
    return (
        fields.get("cluster_state") == "ok" and int(fields.get("cluster_known_nodes", 0)) == nodes
    )


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000, at most 65535) is free too."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randint(20_000, 55_000)
        if _free(port) and _free(port + 10_000):
            return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
