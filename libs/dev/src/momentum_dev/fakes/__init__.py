"""Local stand-ins for third-party APIs over real HTTP, shared by the tests and the benchmarks."""
