"""Helper programs the harness starts as child processes (python -m harness.helpers.NAME): the fake
platform daemon, the SSH bridge into a boot's network namespace, the package egress proxy's bridge."""
