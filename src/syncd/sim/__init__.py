"""Simulators syncd is tested against: a faithful Okta Management API, and helpers to serve it.

:mod:`syncd.sim.okta` (the simulator), :mod:`syncd.sim.orgdata` (org files, a generator, the
demo org) and :mod:`syncd.sim.server` (run any ASGI app on 127.0.0.1 in a thread).
"""
