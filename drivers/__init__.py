"""Instrument drivers: one module per instrument protocol, plus composites.

=====================  ==============================================
``base``               the declarative driver base (``control``, ...)
``scpi``               framing shared by SCPI instruments
``intras_sck300p``     Intras SCK-300P spin coater
``torrey_pines_sc``    Torrey Pines SC-series hotplate
``thorlabs_dc2200``    Thorlabs DC2200 LED driver (exposure source)
``thorlabs_sc10``      Thorlabs SC10 shutter controller
``thorlabs_pm100d``    Thorlabs PM100D power meter (dose meter)
``newport_esp300``     Newport ESP300/301 motion controller (stage)
``woollam_completeease`` J.A. Woollam CompleteEASE remote (ellipsometer)
``exposure``           the exposure tool: source + shutter + meter + stage
=====================  ==============================================

Drivers import from :mod:`labctl` only; protocols import drivers, never the
other way round.
"""
