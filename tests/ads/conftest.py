"""The ads tests post videos and read feeds with the feeds tests' helpers (tests/feeds/feedclient.py)."""

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "feeds"))

from livenode import Servers


@pytest.fixture(autouse=True)
async def no_campaign_outlives_its_test(servers: Servers) -> AsyncIterator[None]:
    """Campaigns share the database with every other test: pause them after each test, so other tests' For You
    pages have no ads they do not expect."""
    yield
    conn = await asyncpg.connect(servers.database_url)
    try:
        await conn.execute("UPDATE ad_campaigns SET state = 'paused' WHERE state = 'active'")
    except asyncpg.UndefinedTableError:
        pass  # no node has migrated the shared database yet: no campaign either
    finally:
        await conn.close()
