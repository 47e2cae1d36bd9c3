"""Stand-ins for the outside world, for tests, benchmarks and the demo:
never imported by the pipelines themselves."""
