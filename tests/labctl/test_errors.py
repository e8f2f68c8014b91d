"""The error tree and the mapping of every pyvisa / pyserial exception into it."""

from __future__ import annotations

import inspect

import pytest
import pyvisa.constants
import pyvisa.errors
import serial
import serial.serialutil

from labctl import errors
from labctl.errors import (
    CommunicationError,
    GarbledReply,
    InputError,
    InstrumentError,
    InstrumentTimeout,
    LabctlError,
    LinkLost,
)
from labctl.transport import EXCEPTION_MAP, map_exception


def _exception_classes(module: object) -> list[type[BaseException]]:
    return [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, BaseException)
        and obj.__module__ == module.__name__  # type: ignore[attr-defined]
    ]


@pytest.mark.parametrize("module", [pyvisa.errors, serial.serialutil], ids=["pyvisa", "pyserial"])
def test_every_library_exception_class_is_mapped(module: object) -> None:
    classes = _exception_classes(module)
    assert classes, "the library defines exception classes"
    unmapped = [c.__qualname__ for c in classes if c not in EXCEPTION_MAP]
    assert unmapped == []


def _instance(klass: type[BaseException]) -> BaseException:
    if issubclass(klass, pyvisa.errors.VisaIOError):
        return klass(pyvisa.constants.StatusCode.error_io)
    if klass is pyvisa.errors.VisaIOWarning:
        return klass(pyvisa.constants.StatusCode.success_max_count_read)
    for args in ((), ("message",), ("a", "b"), ("a", "b", "c")):
        try:
            return klass(*args)
        except TypeError:
            continue
    raise AssertionError(f"cannot build {klass}")


@pytest.mark.parametrize(
    "klass",
    _exception_classes(pyvisa.errors) + _exception_classes(serial.serialutil),
    ids=lambda k: k.__qualname__,
)
def test_every_mapped_exception_becomes_a_communication_error(klass: type[BaseException]) -> None:
    mapped = map_exception(_instance(klass), "hotplate")
    assert isinstance(mapped, CommunicationError)
    assert mapped.instrument == "hotplate"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (pyvisa.constants.StatusCode.error_timeout, InstrumentTimeout),
        (pyvisa.constants.StatusCode.error_connection_lost, LinkLost),
        (pyvisa.constants.StatusCode.error_resource_not_found, LinkLost),
        (pyvisa.constants.StatusCode.error_serial_framing, GarbledReply),
        (pyvisa.constants.StatusCode.error_serial_parity, GarbledReply),
        (pyvisa.constants.StatusCode.error_invalid_setup, CommunicationError),
    ],
)
def test_visa_status_codes_refine_the_mapping(code: int, expected: type) -> None:
    mapped = map_exception(pyvisa.errors.VisaIOError(code))
    assert type(mapped) is expected


def test_os_level_errors_are_mapped() -> None:
    assert type(map_exception(serial.SerialTimeoutException("write timeout"))) is InstrumentTimeout
    assert type(map_exception(ConnectionResetError(104, "reset"))) is LinkLost
    assert type(map_exception(TimeoutError())) is InstrumentTimeout


def test_the_tree_has_one_root_and_is_drawn_in_the_docstring() -> None:
    classes = [
        c
        for c in vars(errors).values()
        if inspect.isclass(c) and issubclass(c, Exception) and c.__module__ == errors.__name__
    ]
    assert all(issubclass(c, LabctlError) for c in classes)
    for klass in classes:
        assert klass.__name__ in (errors.__doc__ or "")


def test_input_errors_are_one_line_naming_file_and_field() -> None:
    error = InputError(
        "3.5 is not 1 or 2", source="bench.toml", field="roles.hotplate.link.stop_bits"
    )
    assert str(error) == "bench.toml: roles.hotplate.link.stop_bits: 3.5 is not 1 or 2"
    assert "\n" not in str(error)


def test_instrument_error_carries_code_and_command() -> None:
    error = InstrumentError(
        "bad parameter", instrument="spin_coater", code=2, command="SetPWM,1001"
    )
    assert (error.code, error.command) == (2, "SetPWM,1001")
    assert str(error) == "spin_coater: error reply to 'SetPWM,1001' (code 2): bad parameter"
