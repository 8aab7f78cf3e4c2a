"""Hostile bytes into the deserializer: only typed errors, no hang, no huge allocation."""
from __future__ import annotations

import struct
import subprocess
import sys
import textwrap
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import models, serde, testing
from schemas.errors import DeserializationError
from schemas.registry import InMemoryRegistry

pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
CTX = serde.SerializationContext("fuzz.topic")


def varint(n: int) -> bytes:
    """Avro long encoding (zig-zag + varint) of n."""
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        b, z = z & 0x7F, z >> 7
        out.append(b | (0x80 if z else 0))
        if not z:
            return bytes(out)


HUGE = [varint(2**62), varint(2**63 - 1), varint(-(2**62)), varint(-1), b"\xff" * 10 + b"\x01"]


@pytest.fixture(scope="module")
def setup():
    reg = InMemoryRegistry()
    ser = serde.AvroSerializer(reg)
    valid = [ser(testing.events(m).example(), CTX) for m in models.EVENT_TYPES.values() for _ in range(3)]
    return reg, valid


def _only_typed_errors(de, data):
    try:
        de(data, CTX)
    except DeserializationError as exc:
        assert exc.code and str(exc).startswith(f"[{exc.code}]")
    # anything else propagates and fails the test


@pytest.mark.timeout(120)
@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300), st.integers(1, 40))
def test_random_bytes_behind_a_valid_header(setup, body, schema_id):
    reg, _ = setup
    de = serde.AvroDeserializer(reg)
    _only_typed_errors(de, body)
    _only_typed_errors(de, struct.pack(">bI", 0, schema_id) + body)


@pytest.mark.timeout(120)
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_valid_payloads(setup, data):
    reg, valid = setup
    original = data.draw(st.sampled_from(valid))
    mutated = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(5, len(mutated)))
        action = data.draw(st.sampled_from(["flip", "insert_huge", "delete", "truncate", "byte"]))
        if action == "flip" and pos < len(mutated):
            mutated[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif action == "byte" and pos < len(mutated):
            mutated[pos] = data.draw(st.integers(0, 255))
        elif action == "insert_huge":
            mutated[pos:pos] = data.draw(st.sampled_from(HUGE))
        elif action == "delete":
            del mutated[pos:pos + data.draw(st.integers(1, 8))]
        elif action == "truncate":
            del mutated[pos:]
    _only_typed_errors(serde.AvroDeserializer(reg), bytes(mutated))


@pytest.mark.timeout(60)
def test_huge_length_prefix_at_every_position_allocates_little(setup):
    """Replace the bytes at each position by a length of 2**62: tracemalloc peak stays small."""
    reg, valid = setup
    de = serde.AvroDeserializer(reg)
    payloads = []
    for data in valid[::3]:
        for pos in range(5, len(data)):
            for huge in HUGE:
                payloads.append(data[:pos] + huge + data[pos:])
                payloads.append(data[:pos] + huge + data[pos + 1:])
    tracemalloc.start()
    try:
        for p in payloads:
            _only_typed_errors(de, p)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.1f} MiB decoding {len(payloads)} hostile payloads"


@pytest.mark.timeout(120)
def test_hostile_payloads_under_an_address_space_limit():
    """In a child process limited to a modest address space, hostile payloads end in typed errors.

    If any length were trusted (a 2**62-byte string, a 2**62-item list), the child would die with MemoryError or
    be killed; it must instead print OK.
    """
    child = textwrap.dedent("""
        import resource, struct, sys
        from schemas import models, serde, testing
        from schemas.errors import DeserializationError
        from schemas.registry import InMemoryRegistry
        from hypothesis import strategies as st
        import warnings; warnings.simplefilter("ignore")
        reg = InMemoryRegistry(); ctx = serde.SerializationContext("t")
        ser = serde.AvroSerializer(reg)
        valid = [ser(testing.events(m).example(), ctx) for m in models.EVENT_TYPES.values()]
        huge = [bytes.fromhex(h) for h in sys.argv[1:]]
        # Limit the address space only now, after imports: 256 MiB more than what is mapped already.
        with open("/proc/self/statm") as f:
            mapped = int(f.read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (mapped + 256 * 2**20, mapped + 256 * 2**20))
        de = serde.AvroDeserializer(reg)
        n = 0
        for data in valid:
            for pos in range(5, len(data)):
                for h in huge:
                    try:
                        de(data[:pos] + h + data[pos:], ctx)
                    except DeserializationError:
                        n += 1
        print("OK", n)
    """)
    result = subprocess.run([sys.executable, "-c", child, *[h.hex() for h in HUGE]], capture_output=True,
                            text=True, timeout=110)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("OK")
