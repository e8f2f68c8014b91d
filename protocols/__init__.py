"""Process steps and standard experiments (coat, bake, expose, develop, measure).

Protocols talk to instruments through a station's roles, never by opening
resources. The steps arrive with the run engine (issue 5); this package is
empty until then.
"""
