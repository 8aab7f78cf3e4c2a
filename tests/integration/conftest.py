"""Fixtures shared by the integration tests of the case processor (the broker fixtures are in tests/conftest.py)."""
from __future__ import annotations

import pytest

from tests.processor_harness import ProcessorBus


@pytest.fixture
def pbus(kafka_bootstrap, schema_registry_url):
    """A private deployment of the bus (prefixed topics, producer, readers) on the session's broker."""
    bus = ProcessorBus(kafka_bootstrap, schema_registry_url)
    yield bus
    bus.close()
