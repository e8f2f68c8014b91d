"""What the transport and driver layers cost per query, measured in one run.

Prints two ratios (goals from issue 2):

1. a driver query (``ThorlabsPM100D.power``: framing, parsing, a pint
   quantity) against a bare pyvisa ``query`` of the same command on the same
   pyvisa-sim resource - goal <= 1.15x;
2. a driver query over a pseudo-terminal (``TorreyPinesHotplate.plate_temperature``
   through :class:`labctl.transport.SerialTransport`) against the floor of raw
   ``os.write`` / ``os.read`` on the same pty and the same responder - goal
   <= 2x. pyserial's own ``readline`` is printed for reference.

The pty responder runs in a separate process so it does not compete with the
client for the GIL. Each figure is the median of several interleaved rounds.

    python benchmarks/transport_overhead.py [--rounds 7] [--queries 2000]
"""

from __future__ import annotations

import argparse
import os
import select
import statistics
import subprocess
import sys
import time
import tty
from collections.abc import Callable
from pathlib import Path

RESPONDER = r"""
import os, select, sys, tty
master, slave = os.openpty()
tty.setraw(slave)
print(os.ttyname(slave), flush=True)
buffer = b""
while True:
    ready, _, _ = select.select([master, sys.stdin], [], [])
    if sys.stdin in ready:
        break
    data = os.read(master, 4096)
    buffer += data
    while b"\r" in buffer:
        line, _, buffer = buffer.partition(b"\r")
        os.write(master, b"25.0\r\n" if line == b"p" else b"e\r\n")
"""


def per_query(function: Callable[[], object], count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        function()
    return (time.perf_counter() - start) / count


def interleaved(
    candidates: dict[str, Callable[[], object]], rounds: int, count: int
) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for function in candidates.values():  # warm up
        per_query(function, max(10, count // 20))
    for _ in range(rounds):
        for name, function in candidates.items():
            samples[name].append(per_query(function, count))
    return {name: statistics.median(values) for name, values in samples.items()}


def visa_figures(rounds: int, count: int) -> dict[str, float]:
    import pyvisa

    import sim_instruments
    from drivers.thorlabs_pm100d import ThorlabsPM100D
    from labctl.transport import LinkSettings, VisaTransport, resource_manager

    definitions = sim_instruments.definition_path("thorlabs_pm100d.yaml")
    backend = f"{definitions}@sim"
    resource_name = "USB0::0x1313::0x8078::P0009084::INSTR"
    transport = VisaTransport(resource_name, LinkSettings(timeout=2.0), backend=backend)
    meter = ThorlabsPM100D(transport)
    transport.open()
    bare = resource_manager(backend).open_resource(resource_name)
    bare.read_termination = "\n"
    bare.write_termination = "\n"
    bare.timeout = 2000
    assert isinstance(bare, pyvisa.resources.MessageBasedResource)

    def driver_query() -> object:
        return meter.power

    def bare_query() -> object:
        return bare.query("MEAS:POW?")

    result = interleaved({"driver": driver_query, "bare pyvisa": bare_query}, rounds, count)
    transport.close()
    bare.close()
    return result


def serial_figures(rounds: int, count: int) -> dict[str, float]:
    import serial

    from drivers.torrey_pines_sc import TorreyPinesHotplate
    from labctl.transport import LinkSettings, SerialTransport

    responder = subprocess.Popen(
        [sys.executable, "-c", RESPONDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert responder.stdout is not None
        port = responder.stdout.readline().decode().strip()

        fd = os.open(port, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(fd)

        def raw_query() -> bytes:
            os.write(fd, b"p\r")
            reply = b""
            while not reply.endswith(b"\r\n"):
                select.select([fd], [], [], 2.0)
                reply += os.read(fd, 4096)
            return reply

        transport = SerialTransport(port, LinkSettings(baud_rate=9600, timeout=2.0))
        plate = TorreyPinesHotplate(transport)
        transport.open()
        pyserial_port = serial.Serial(port, 9600, timeout=2.0)

        def driver_query() -> object:
            return plate.plate_temperature

        def pyserial_readline() -> bytes:
            pyserial_port.write(b"p\r")
            return bytes(pyserial_port.readline())

        result = interleaved(
            {
                "driver": driver_query,
                "raw os.read": raw_query,
                "pyserial readline": pyserial_readline,
            },
            rounds,
            count,
        )
        transport.close()
        pyserial_port.close()
        os.close(fd)
        return result
    finally:
        assert responder.stdin is not None
        responder.stdin.close()
        responder.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--queries", type=int, default=2000)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

    visa = visa_figures(args.rounds, args.queries // 4)
    serial_ = serial_figures(args.rounds, args.queries)

    rows = [
        ("pyvisa-sim PM100D  bare pyvisa query(MEAS:POW?)", visa["bare pyvisa"]),
        ("pyvisa-sim PM100D  ThorlabsPM100D.power", visa["driver"]),
        ("pty hotplate       raw os.write/os.read floor", serial_["raw os.read"]),
        ("pty hotplate       pyserial write + readline", serial_["pyserial readline"]),
        ("pty hotplate       TorreyPinesHotplate.plate_temperature", serial_["driver"]),
    ]
    print(f"{'measurement':58s} {'per query':>12s}")
    for label, seconds in rows:
        print(f"{label:58s} {seconds * 1e6:9.1f} us")
    for label, ratio, goal in (
        ("driver / bare pyvisa  ", visa["driver"] / visa["bare pyvisa"], 1.15),
        ("driver / raw pty floor", serial_["driver"] / serial_["raw os.read"], 2.0),
    ):
        verdict = "met" if ratio <= goal else "MISSED"
        print(f"{label} = {ratio:.3f}x  (goal <= {goal:g}x) {verdict}")


if __name__ == "__main__":
    main()
