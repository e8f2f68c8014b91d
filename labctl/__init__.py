"""labctl: control and record a negative-resist process bench.

The core package knows no instrument model. Its modules:

``units``      the one pint registry
``errors``     the error tree
``clock``      real and virtual clocks
``transport``  the transport contract; pyvisa and pyserial behind it
``station``    station files -> roles -> drivers
``formulation`` formulation files -> composition -> claim checks
``testing``    byte-exact protocol testing (``expected_protocol``)
``cli``        the ``labctl`` command

Importing :mod:`labctl` imports none of them (pint, pyvisa and pandas are
slow to import); import the module you need.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
