"""meetnow's benchmarks: ``python -m benchmarks.run`` (see docs/benchmarks.md)."""
