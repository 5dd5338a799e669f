"""The cluster URL scheme, what a cluster's failover errors count as, and reading keys of several slots."""

from __future__ import annotations

import asyncpg
import pytest
import redis.exceptions
from livenode import Servers

from livecore import outage, redisclient
from livecore.config import Settings, check_settings
from livecore.startup import StartupError


def test_a_cluster_url_names_a_node_of_the_cluster() -> None:
    assert redisclient.names_cluster("redis+cluster://10.0.0.5:7000")
    assert redisclient.names_cluster("rediss+cluster://:pw@h:7000")
    assert not redisclient.names_cluster("redis://10.0.0.5:6379/0")
    assert redisclient.node_url("rediss+cluster://:pw@h:7000") == "rediss://:pw@h:7000"
    assert redisclient.cluster_url("redis://h:6379/0") == "redis+cluster://h:6379/0"


def test_the_setting_takes_a_cluster_url_and_refuses_another_scheme() -> None:
    check_settings(Settings(redis_url="redis+cluster://127.0.0.1:7000"))
    with pytest.raises(StartupError, match="redis\\+cluster://"):
        check_settings(Settings(redis_url="http://127.0.0.1:7000"))


def test_a_cluster_has_only_database_0() -> None:
    with pytest.raises(ValueError, match="database 3"):
        redisclient.connect("redis+cluster://127.0.0.1:7000/3", 4)


@pytest.mark.parametrize("error", [
    redis.exceptions.ClusterDownError("CLUSTERDOWN The cluster is down"),
    redis.exceptions.MasterDownError("MASTERDOWN"),
    redis.exceptions.SlotNotCoveredError('Slot "5" is not covered by the cluster.'),
    redis.exceptions.TryAgainError("TRYAGAIN"),
    redis.exceptions.RedisClusterException("All slots are not covered after query all startup_nodes. 10922 of 16384"),
    redis.exceptions.RedisClusterException("Redis Cluster cannot be connected. Please provide at least one ..."),
])
def test_a_failover_is_the_bus_being_unavailable(error: Exception) -> None:
    assert outage.unreachable_part(error) == "bus"


def test_a_closed_database_connection_is_an_outage_and_misuse_is_a_bug() -> None:
    # What a transaction's rollback raises on its way out when PostgreSQL closed the connection under it.
    assert outage.unreachable_part(asyncpg.InterfaceError("connection is closed")) == "database"
    # The same on a transaction's way out after `pg_ctl stop` ended the session under its query (CI, sound upload).
    assert outage.unreachable_part(asyncpg.InterfaceError(
        "cannot call Transaction.__aexit__(): the underlying connection is closed")) == "database"
    assert outage.unreachable_part(asyncpg.InterfaceError(
        "cannot perform operation: another operation is in progress")) is None


def test_a_cross_slot_command_is_a_bug_not_an_outage() -> None:
    assert outage.unreachable_part(redis.exceptions.RedisClusterException(
        "MGET - all keys must map to the same key slot")) is None
    assert outage.unreachable_part(redis.exceptions.ResponseError(
        "CROSSSLOT Keys in request don't hash to the same slot")) is None


async def test_many_keys_are_read_in_order_on_one_server(servers: Servers) -> None:
    client = redisclient.connect(servers.redis_url, 4, 5)
    try:
        await client.set("lc:test:get-many:a", "1")
        await client.set("lc:test:get-many:c", "3")
        assert await redisclient.get_many(client, ["lc:test:get-many:a", "lc:test:get-many:b",
                                                   "lc:test:get-many:c"]) == [b"1", None, b"3"]
        assert await redisclient.get_many(client, []) == []
    finally:
        await client.aclose()
