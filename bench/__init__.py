"""Benchmarks that print their figures; run them as modules from the project's root, e.g.
`.venv/bin/python -m bench.bench_engine`. `bench.serving` starts and stops the service for
them and for the tests."""
