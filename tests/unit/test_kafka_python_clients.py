"""kafka-python clients whose bootstrap fails leave no network thread behind (topology/kafka_python.py)."""
import threading

import pytest
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.errors import KafkaError

from topology.kafka_python import new_client

CLOSED = "127.0.0.1:1"  # nothing listens on port 1


def _io_threads() -> int:
    """This test's clients' network threads (kafka-io-<client_id>), not those of other tests in the process."""
    return sum(1 for t in threading.enumerate() if t.name == "kafka-io-t-leak")


@pytest.mark.parametrize("cls, configs", [(KafkaAdminClient, {}), (KafkaConsumer, {"group_id": None})])
def test_a_failed_bootstrap_leaves_no_network_thread(cls, configs):
    before = _io_threads()
    for _ in range(3):
        with pytest.raises(KafkaError):
            new_client(cls, bootstrap_servers=CLOSED, bootstrap_timeout_ms=200, client_id="t-leak", **configs)
    assert _io_threads() == before


def test_kafka_python_itself_still_leaks_one_thread_per_failed_bootstrap():
    """Pins the reason for new_client: when this fails, kafka-python no longer leaks and new_client can go."""
    before = _io_threads()
    with pytest.raises(KafkaError):
        KafkaAdminClient(bootstrap_servers=CLOSED, bootstrap_timeout_ms=200, client_id="t-leak")
    assert _io_threads() == before + 1
