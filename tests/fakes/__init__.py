"""Real local stand-ins for remote services used by the tests and benchmarks (Azurite launcher, proxies, fakes)."""
