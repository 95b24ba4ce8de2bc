"""Settings every test module shares: the hypothesis profiles of the fuzz tests.

`ci` (the default) keeps each fuzz test to a bounded, reproducible run: 200
examples drawn from a fixed seed (derandomize), no deadline (the machine is
shared and slow at times), no example database written. `long` is for deeper
runs by hand: `pytest tests/test_fuzz_*.py --hypothesis-profile=long`.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    # Fuzz tests share one rig (a server, a port) across examples on purpose.
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
settings.register_profile(
    "long",
    max_examples=5000,
    deadline=None,
    print_blob=True,
    # Fuzz tests share one rig (a server, a port) across examples on purpose.
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
settings.load_profile("ci")
