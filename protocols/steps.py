"""The process steps of claim 14, each a durable step of the run engine.

``coat``, ``soft_bake`` / ``post_exposure_bake``, ``calibrate_exposure``,
``expose``, ``develop``, ``measure`` and ``transfer`` take quantities with
units, talk to instruments only through the station's roles, record their
setpoints and the measured actuals (time series of spin speed, plate
temperature, irradiance) and return a result the journal keeps.

Steps that change a wafer (coat, bake, expose, develop, transfer) are not
repeatable: interrupted, they quarantine the wafer. Preparing the plate,
calibrating the exposure and measuring are repeatable.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

from labctl.engine import Run, StepContext
from labctl.errors import HardwareStateError, InterlockTrip
from labctl.units import Q_, U

__all__ = [
    "calibrate_exposure",
    "coat",
    "develop",
    "expose",
    "measure",
    "new_wafer",
    "post_exposure_bake",
    "prepare_plate",
    "soft_bake",
    "transfer",
]

#: How often a running step samples its instruments (s).
SAMPLE_PERIOD = 1.0
#: Time allowed for the spinner to reach speed before its interlock arms (s).
SPIN_UP_ALLOWANCE = 3.0
#: Plate stable band before a bake may start (degC) and the longest wait (s).
PLATE_READY_BAND = 1.0
PLATE_READY_LIMIT = 900.0


def _timed(context: StepContext, duration: float, sample: Any) -> float:
    """Wait ``duration`` s on the run's clock, sampling every SAMPLE_PERIOD; return
    the seconds that passed (the last sample's reply included).

    Timed to a deadline, not by adding up sleeps: each sample is a round trip
    to an instrument (milliseconds on a serial line, seconds of bench time on
    a bench served hundreds of times faster than real time), and summed sleeps
    would stretch a 60 s bake by every one of them.
    """
    clock = context.clock
    start = clock.monotonic()
    end = start + duration
    while (remaining := end - clock.monotonic()) > 1e-9:
        clock.sleep(min(SAMPLE_PERIOD, remaining))
        sample()
    return clock.monotonic() - start


def new_wafer(run: Run, wafer: str) -> Any:
    """A new wafer enters the run (from the cassette).

    A replacement wafer's step names the quarantined wafer it ``replaces``: the
    decision is journaled with the step, before the handler takes the wafer.
    """
    replaces = run.replaced_wafer(wafer)

    def action(context: StepContext) -> Any:
        run.handler.new_wafer(wafer)
        context.checkpoint()
        return {"location": "cassette"}

    parameters = {"replaces": replaces} if replaces is not None else None
    return run.step("new wafer", action, wafer=wafer, parameters=parameters)


def transfer(run: Run, wafer: str, to: str) -> Any:
    """Move ``wafer`` to station ``to`` (or ``"cassette"``), by operator or handler."""

    def action(context: StepContext) -> Any:
        # Where the wafer really is (the handler's word, or the journal's):
        # an exit may have parked it since the protocol last moved it.
        origin = run.where(wafer) or run.locations.get(wafer, "cassette")
        if origin != to and origin != "cassette":
            run.handler.unload(origin)
        context.checkpoint()
        if origin != to and to != "cassette":
            run.handler.load(wafer, to)
            run.arrivals[wafer] = (to, context.clock.monotonic())
        return {"from": origin, "to": to, "location": to}

    return run.step("transfer", action, wafer=wafer, parameters={"to": to})


def _sample_speed(context: StepContext) -> float:
    """Read the spin speed (with retries), log it, feed its interlock; return rpm."""
    value = context.read("spin_coater", lambda d: d.speed, "spin speed")
    context.sample("spin_speed", value)
    return float(value.m_as(U.rpm))


def _watched_spin(run: Run, context: StepContext, speed: Any, duration: Any) -> list[float]:
    """Spin at ``speed`` for ``duration`` under the spin-speed interlock; return the readings.

    The interlock arms once the motor has had SPIN_UP_ALLOWANCE to get there.
    The caller stops the spinner (in its own ``finally``).
    """
    context.station["spin_coater"].spin(speed)
    interlock = run.interlocks.get("spin_speed")
    readings: list[float] = []
    try:
        context.clock.sleep(SPIN_UP_ALLOWANCE)
        if interlock is not None:
            interlock.arm(speed.m_as(U.rpm))
        _timed(
            context,
            duration.m_as(U.s) - SPIN_UP_ALLOWANCE,
            lambda: readings.append(_sample_speed(context)),
        )
    finally:
        if interlock is not None:
            interlock.disarm()
    return readings


def coat(
    run: Run, wafer: str, *, spread_speed: Any, spread_time: Any, speed: Any, duration: Any
) -> Any:
    """Dispense resist, spread, spin at ``speed`` for ``duration``, stop. Speed is logged."""
    parameters = {
        "spread_speed": spread_speed,
        "spread_time": spread_time,
        "speed": speed,
        "duration": duration,
    }

    def action(context: StepContext) -> Any:
        spinner = context.station["spin_coater"]
        run.handler.manual("dispense resist")
        try:
            if spread_time.m_as(U.s) > 0 and spread_speed.m_as(U.rpm) > 0:
                spinner.spin(spread_speed)
                _timed(context, spread_time.m_as(U.s), lambda: _sample_speed(context))
            readings = _watched_spin(run, context, speed, duration)
        finally:
            spinner.stop()
        mean = sum(readings) / len(readings) if readings else float("nan")
        spread = (
            math.sqrt(sum((r - mean) ** 2 for r in readings) / len(readings)) if readings else 0.0
        )
        return {
            "speed_set": speed,
            "speed_mean": Q_(mean, U.rpm),
            "speed_sd": Q_(spread, U.rpm),
            "duration": duration,
        }

    return run.step("coat", action, wafer=wafer, parameters=parameters)


def prepare_plate(run: Run, temperature: Any) -> Any:
    """Bring the hotplate to ``temperature`` and wait until it is stable (repeatable)."""

    def action(context: StepContext) -> Any:
        plate = context.station["hotplate"]
        plate.heat_to(temperature)
        if plate.setpoint.m_as(U.degC) != round(temperature.m_as(U.degC), 1):
            raise InterlockTrip(
                "the plate did not take its setpoint", interlock="plate temperature"
            )
        target = temperature.m_as(U.degC)
        waited = 0.0
        while True:
            reading = context.read("hotplate", lambda d: d.plate_temperature, "plate temperature")
            # Recorded, not fed to the plate interlock: it arms once the bake starts.
            context.record("plate_temperature", reading.to(U.degC))
            if abs(reading.m_as(U.degC) - target) <= PLATE_READY_BAND:
                break
            if waited >= PLATE_READY_LIMIT:
                raise InterlockTrip(
                    f"plate at {reading.m_as(U.degC):.1f} degC after {waited:g} s, "
                    f"setpoint {target:g}",
                    interlock="plate temperature",
                )
            context.clock.sleep(SAMPLE_PERIOD * 5)
            waited += SAMPLE_PERIOD * 5
        return {"setpoint": temperature, "reached_after": Q_(waited, U.s)}

    return run.step(
        "prepare plate", action, parameters={"temperature": temperature}, repeatable=True
    )


def _bake(
    run: Run, wafer: str, temperature: Any, duration: Any, name: str, landed: float
) -> Any:
    """The wafer is on the plate: time the bake, watch the plate, take it off.

    The bake is timed from ``landed`` (the run clock's reading when the wafer
    reached the plate), not from when this step began: journaling the step
    takes a disk commit, and the wafer bakes through it - at 1000x on a served
    bench, a 2 ms commit is 2 s more PEB.
    """

    def action(context: StepContext) -> Any:
        interlock = run.interlocks.get("plate_temperature")
        if interlock is not None:
            interlock.arm(temperature.m_as(U.degC))
        readings: list[float] = []

        def sample() -> None:
            value = context.read("hotplate", lambda d: d.plate_temperature, "plate temperature")
            readings.append(value.m_as(U.degC))
            context.sample("plate_temperature", value)

        clock = context.clock
        started = min(landed, clock.monotonic())
        try:
            sample()
            _timed(context, duration.m_as(U.s) - (clock.monotonic() - started), sample)
        finally:
            if interlock is not None:
                interlock.disarm()
        run.handler.unload("hotplate")
        return {
            "temperature_set": temperature,
            "temperature_min": Q_(min(readings), U.degC),
            "temperature_max": Q_(max(readings), U.degC),
            "duration": duration,
            # From the wafer on the plate to the wafer off it, on the run's clock.
            "duration_measured": Q_(clock.monotonic() - started, U.s),
            "location": "cassette",
        }

    return run.step(
        name, action, wafer=wafer, parameters={"temperature": temperature, "duration": duration}
    )


def _landed(run: Run, wafer: str) -> float:
    """When ``wafer`` reached the hotplate on the run clock (now, if that was
    before this process: a replayed transfer, whose wafer a resume handles)."""
    station, at = run.arrivals.get(wafer, ("", math.inf))
    return at if station == "hotplate" else run.clock.monotonic()


def soft_bake(run: Run, wafer: str, temperature: Any, duration: Any) -> Any:
    """Plate ready, wafer on, bake, wafer off (to the cassette)."""
    prepare_plate(run, temperature)
    transfer(run, wafer, "hotplate")
    return _bake(run, wafer, temperature, duration, "soft bake", _landed(run, wafer))


def post_exposure_bake(run: Run, wafer: str, temperature: Any, duration: Any) -> Any:
    """As :func:`soft_bake`, after exposure: the cross-linking bake."""
    prepare_plate(run, temperature)
    transfer(run, wafer, "hotplate")
    return _bake(run, wafer, temperature, duration, "post-exposure bake", _landed(run, wafer))


def calibrate_exposure(run: Run, tool: Any, *, verify: bool = False) -> Any:
    """Measure the irradiance at the wafer plane (repeatable: the beam hits the meter).

    With ``verify``, this is the check after a dose matrix: the irradiance
    interlock compares it with the calibration the doses were computed from,
    so a source that dimmed or failed mid-matrix trips it instead of leaving
    wrong delivered doses in the record.
    """

    def action(context: StepContext) -> Any:
        try:
            calibration = tool.calibrate()
        except HardwareStateError as exc:
            # No light where light should be: the source's power interlock.
            raise InterlockTrip(str(exc), interlock="irradiance drift") from exc
        context.sample("irradiance", calibration.irradiance)
        interlock = run.interlocks.get("irradiance")
        if interlock is not None and interlock.target is None:
            interlock.arm(calibration.irradiance.m_as(U.mW_per_cm2))
        return {
            "irradiance": calibration.irradiance,
            "power": calibration.power,
            "led_current": calibration.led_current,
            "wavelength": calibration.wavelength,
        }

    return run.step("verify exposure" if verify else "calibrate exposure", action, repeatable=True)


def expose(run: Run, wafer: str, tool: Any, dose: Any, x: Any, y: Any, label: str) -> Any:
    """One field: the wafer is on the stage; deliver ``dose`` at (x, y)."""

    def action(context: StepContext) -> Any:
        if tool.calibration is None or not tool.calibration_is_fresh():
            calibration = tool.calibrate()
            context.sample("irradiance", calibration.irradiance)
        # Evidence that the wafer is under the beam, taken just before the shot.
        evidence = run.confirm_at(wafer, "exposure_stage")
        record = tool.expose(dose, x, y, label=label)
        context.checkpoint()  # the field is exposed, the journal does not know yet
        return {
            "field": label,
            "x": record.position[0],
            "y": record.position[1],
            "dose_requested": record.dose_requested,
            "dose_delivered": record.dose_delivered,
            "irradiance": record.irradiance,
            "open_time": record.open_time_programmed,
            "led_current": record.led_current,
            "wafer_on_stage": evidence,
        }

    return run.step(
        "expose", action, wafer=wafer, parameters={"dose": dose, "x": x, "y": y, "field": label}
    )


def develop(
    run: Run, wafer: str, *, duration: Any, rinse: Any, dry_speed: Any, dry_time: Any
) -> Any:
    """Puddle develop on the spinner, rinse, spin dry. The wafer is on the spinner."""
    parameters = {
        "duration": duration,
        "rinse": rinse,
        "dry_speed": dry_speed,
        "dry_time": dry_time,
    }

    def action(context: StepContext) -> Any:
        spinner = context.station["spin_coater"]
        run.handler.manual("dispense developer")
        context.clock.sleep(duration)
        run.handler.manual("rinse")
        spinner.spin(Q_(500, U.rpm))
        context.clock.sleep(rinse)
        try:
            _watched_spin(run, context, dry_speed, dry_time)
        finally:
            spinner.stop()
        run.handler.manual("dry")
        return {"develop_time": duration, "rinse_time": rinse, "dry_speed": dry_speed}

    return run.step("develop", action, wafer=wafer, parameters=parameters)


def measure(
    run: Run,
    wafer: str,
    sites: Sequence[dict[str, Any]],
    *,
    label: str,
    recipe: str = "Resist on Si",
) -> Any:
    """Film thickness at each site (ellipsometer); repeatable. The wafer is on the ellipsometer.

    ``sites`` are dicts with ``site``, ``x``, ``y`` and optionally
    ``dose_requested`` / ``dose_delivered``; each becomes one measurement row
    carrying the formulation hash.
    """

    def action(context: StepContext) -> Any:
        ellipsometer = context.station["ellipsometer"]
        results = []
        for index, site in enumerate(sites):
            ellipsometer.move_to(site["x"], site["y"])
            export = f"{run.run_id}_{wafer}_{label}_{index:03d}"
            fit = context.read(
                "ellipsometer", functools.partial(_fit, recipe=recipe, export=export), "thickness"
            )
            index_6328 = fit.refractive_index(Q_(632.8, U.nm)) if fit.cauchy else None
            row = {
                "run_id": run.run_id,
                "seq": context.seq,
                "wafer_id": wafer,
                "label": label,
                "site": str(site["site"]),
                "x_mm": site["x"].m_as(U.mm),
                "y_mm": site["y"].m_as(U.mm),
                "dose_requested_mJ_cm2": _mj(site.get("dose_requested")),
                "dose_delivered_mJ_cm2": _mj(site.get("dose_delivered")),
                "thickness_nm": fit.thickness.m_as(U.nm),
                "thickness_error_nm": fit.thickness_error.m_as(U.nm),
                "refractive_index": index_6328,
                "mse": fit.mse,
                "formulation_hash": run.formulation_hash,
                # The bench clock's calendar (virtual on --sim); the export gives
                # bench_time and wall_time instead.
                "measured_at": context.clock.now().isoformat(timespec="milliseconds"),
                **context.stamp(),
            }
            context.measurements.append(row)
            results.append({"site": str(site["site"]), "thickness": fit.thickness})
        return {"label": label, "sites": results}

    return run.step(
        "measure",
        action,
        wafer=wafer,
        parameters={"label": label, "sites": [dict(s) for s in sites]},
        repeatable=True,
    )


def _mj(value: Any) -> float | None:
    return None if value is None else float(value.m_as(U.mJ_per_cm2))


def _fit(driver: Any, *, recipe: str, export: str) -> Any:
    return driver.run_recipe(recipe, export)
