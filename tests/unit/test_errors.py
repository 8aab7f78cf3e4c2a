"""One error root, one errors module per package, retry-or-not said by the type, DLQ codes from one enum."""
from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from schemas import models
from schemas.errors import (ERROR_CLASSES, DlqCode, GplxError, IncompatibleSchema, PermanentError,
                            RegistryUnavailable, SchemaNotFound, TransientError)

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "topology", "producers", "consumers", "deploy.local", "gplx_bus")


@pytest.mark.parametrize("package", PACKAGES)
def test_every_error_of_every_package_is_a_gplx_error(package):
    module = importlib.import_module(f"{package}.errors")
    errors = [v for v in vars(module).values() if isinstance(v, type) and issubclass(v, BaseException)
              and v.__module__ == module.__name__]
    assert errors, f"{package}.errors defines no error"
    assert all(issubclass(e, GplxError) for e in errors), [e for e in errors if not issubclass(e, GplxError)]


def test_no_other_module_is_called_exceptions_or_defines_an_error_outside_the_root():
    assert not [p for p in ROOT.glob("*/**/exceptions.py") if ".venv" not in p.parts]


def test_transient_and_permanent_are_types():
    from producers.errors import BrokerUnavailable, InvalidEvent, RegistryUnreachable

    assert issubclass(RegistryUnavailable, TransientError) and issubclass(BrokerUnavailable, TransientError)
    assert RegistryUnreachable is RegistryUnavailable  # the producers' old name: no twin class
    for permanent in (SchemaNotFound, IncompatibleSchema, InvalidEvent, *ERROR_CLASSES.values()):
        assert issubclass(permanent, PermanentError) and not issubclass(permanent, TransientError)


def test_dlq_codes_are_one_enum_matching_the_contract():
    schema = json.loads((ROOT / "schemas/avro/dlq/DeadLetter.avsc").read_text())
    field = next(f for f in schema["fields"] if f["name"] == "error_code")
    assert [c.value for c in DlqCode] == field["type"]["symbols"]
    assert models.ErrorCode is DlqCode
    assert all(isinstance(cls.code, DlqCode) for cls in ERROR_CLASSES.values())
    assert str(DlqCode.PROCESSING_FAILED) == "PROCESSING_FAILED"
