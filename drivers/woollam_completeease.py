"""J.A. Woollam ellipsometer through CompleteEASE's remote-control socket (TCP).

Wire format (``shared/domain/instruments.md``): a TCP client to the PC running
CompleteEASE, port 4444 by default; ASCII ``Func(args)\\r\\n``; one reply
per command ending in ``\\r\\n``; no echo, no prompt; replies are Latin-1
(they may contain ``±``).

``Status()`` answers ``Acquiring Data``, ``Waiting to Acquire Data`` or
``Initializing ...``; ``ListRecipes()`` answers names separated by ``/``;
``RunRecipe(<recipe>/<file>)`` is synchronous and answers when measurement
and fit are done (minutes: the driver lengthens the timeout for it).

Assumed, because no socket command for results is public (see
``docs/instruments/woollam_completeease.md``):

* ``RunRecipe`` answers the fitted parameters on one line as
  ``name=value±error`` entries separated by ``; `` - the same rows the
  recipe's export file has (``PARAMETER  VALUE  ERROR BAR``), e.g.
  ``MSE=2.35; Thickness # 1 (nm)=850.10±0.05; A=1.5712±0.0004``;
* an error answers a line starting ``Error:``;
* ``MoveTo(x,y)`` (mm) moves the mapping stage and answers ``OK`` when
  there; a recipe that maps by itself needs no ``MoveTo``;
* the socket reports no instrument identity: the station file may give
  ``serial`` and ``model`` settings, recorded as the instrument's identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from pint import DimensionalityError

from labctl.errors import InstrumentError, SetpointError
from labctl.settings import Setting, Settings, quantity, text
from labctl.transport import LinkSettings
from labctl.units import Q_, U, magnitude

from .base import Identity, Instrument, measurement

__all__ = ["EllipsometryResult", "WoollamCompleteEASE", "parse_fit_line"]

_END = b"\r\n"
STATUSES = ("Acquiring Data", "Waiting to Acquire Data", "Initializing")
#: Default patience for RunRecipe (s): a map can take minutes.
RECIPE_TIMEOUT = 600.0
#: Longest patience a station may give RunRecipe (s): a dense map, not a hung PC.
MAX_RECIPE_TIMEOUT = 14400.0
#: Mapping-stage travel assumed for MoveTo (mm, each axis).
STAGE_HALF_TRAVEL = 100.0


@dataclass(frozen=True)
class FitParameter:
    """One fitted parameter and its error bar, as CompleteEASE reports them."""

    value: float
    error: float | None


@dataclass(frozen=True)
class EllipsometryResult:
    """A fitted measurement: thickness (nm), Cauchy A, B (um^2), C (um^4), MSE."""

    thickness: Any
    thickness_error: Any
    mse: float
    cauchy: tuple[float, float, float] | None
    parameters: dict[str, FitParameter] = field(default_factory=dict)

    def refractive_index(self, wavelength: Any) -> float:
        """Cauchy index ``A + B/l^2 + C/l^4`` at ``wavelength`` (l in um)."""
        if self.cauchy is None:
            raise ValueError("the fit has no Cauchy parameters")
        a, b, c = self.cauchy
        lam = magnitude(wavelength.to(U.um), U.um)
        return a + b / lam**2 + c / lam**4


def parse_fit_line(line: str) -> dict[str, FitParameter]:
    """Parse ``name=value±error; ...`` into parameters (error optional)."""
    parameters: dict[str, FitParameter] = {}
    for entry in line.split(";"):
        entry = entry.strip()
        if not entry:
            continue
        name, equals, rest = entry.rpartition("=")
        if not equals or not name:
            raise ValueError(f"entry {entry!r} is not name=value")
        value_text, _, error_text = rest.partition("±")
        parameters[name.strip()] = FitParameter(
            float(value_text), float(error_text) if error_text else None
        )
    return parameters


class WoollamCompleteEASE(Instrument):
    """Spectroscopic ellipsometer via CompleteEASE remote control."""

    maker: ClassVar[str] = "J.A. Woollam"
    model: ClassVar[str] = "CompleteEASE"
    link_defaults: ClassVar[LinkSettings] = LinkSettings(timeout=5.0)
    station_settings: ClassVar[Settings] = Settings(
        Setting("model", text(64), "Model to record as the identity (the socket reports none)."),
        Setting("serial", text(64), "Serial number to record as the identity."),
        Setting(
            "recipe_timeout",
            quantity("s", above=0, high=MAX_RECIPE_TIMEOUT, example="600 s"),
            "Longest wait for one RunRecipe (measurement and fit; a map takes minutes).",
            default=f"{RECIPE_TIMEOUT} s",
        ),
    )

    status = measurement("Status()", "Acquisition status text.", parse=str)

    def _exchange(self, command: str, *, expect_reply: bool = True) -> str:
        raw = self.transport.query(command.encode("latin-1") + _END, _END)
        if not raw.endswith(_END):
            raise self._garbled(f"reply {raw!r} to {command!r} does not end in CR LF")
        text = raw[:-2].decode("latin-1")
        if text.startswith("Error:"):
            raise InstrumentError(text[6:].strip(), instrument=self.name, command=command)
        return text

    def identify(self) -> Identity:
        status = self.status
        if not status.startswith(STATUSES):
            raise self._garbled(f"Status() answered {status!r}, not a CompleteEASE status")
        return Identity(
            self.maker,
            self.settings["model"] or self.model,
            self.settings["serial"] or "unknown",
            "unknown",
        )

    @property
    def busy(self) -> bool:
        """True while acquiring or initializing."""
        return not self.status.startswith("Waiting")

    def recipes(self) -> list[str]:
        """Recipe names CompleteEASE offers (``ListRecipes()``)."""
        return [name for name in self.ask("ListRecipes()").split("/") if name]

    def start_acquisition(self) -> None:
        self.send("StartAcq()")

    def stop_acquisition(self) -> None:
        self.send("StopAcq()")

    def trigger(self) -> None:
        self.send("Trigger()")

    def move_to(self, x: Any, y: Any) -> None:
        """Move the mapping stage to (x, y) in mm (assumed ``MoveTo``)."""
        coordinates = []
        for axis, position in (("x", x), ("y", y)):
            try:
                value = magnitude(position, U.mm)
            except (TypeError, DimensionalityError):
                raise SetpointError(
                    f"{position!r} is not a length", source=self.name, field=f"MoveTo {axis}"
                ) from None
            coordinates.append(value)
        xs, ys = coordinates
        for axis, value in (("x", xs), ("y", ys)):
            if not -STAGE_HALF_TRAVEL <= value <= STAGE_HALF_TRAVEL:
                raise SetpointError(
                    f"{value:g} mm is outside "
                    f"-{STAGE_HALF_TRAVEL:g} mm to {STAGE_HALF_TRAVEL:g} mm",
                    source=self.name,
                    field=f"MoveTo {axis}",
                )
        reply = self.send(f"MoveTo({xs:.3f},{ys:.3f})")
        if reply != "OK":
            raise self._garbled(f"MoveTo answered {reply!r}, expected 'OK'")

    def run_recipe(self, recipe: str, export_file: str) -> EllipsometryResult:
        """Run ``recipe``, exporting to ``export_file``; return the fitted result.

        Synchronous: waits up to the ``recipe_timeout`` setting (default
        600 s).
        """
        if "/" in recipe or any(c in recipe + export_file for c in "()\r\n"):
            raise SetpointError(
                "recipe and file names may not contain '/', '(', ')' or line ends",
                source=self.name,
                field="RunRecipe",
            )
        timeout = self.settings["recipe_timeout"]
        with self.transport.temporary_timeout(timeout):
            reply = self.ask(f"RunRecipe({recipe}/{export_file})")
        try:
            parameters = parse_fit_line(reply)
        except ValueError as exc:
            raise self._garbled(f"RunRecipe answered {reply!r}: {exc}") from None
        thickness = parameters.get("Thickness # 1 (nm)")
        if thickness is None or "MSE" not in parameters:
            raise self._garbled(f"RunRecipe answered {reply!r}: no thickness or MSE")
        cauchy = None
        if all(k in parameters for k in ("A", "B")):
            c = parameters.get("C")
            cauchy = (parameters["A"].value, parameters["B"].value, c.value if c else 0.0)
        return EllipsometryResult(
            thickness=Q_(thickness.value, U.nm),
            thickness_error=Q_(thickness.error or 0.0, U.nm),
            mse=parameters["MSE"].value,
            cauchy=cauchy,
            parameters=parameters,
        )
