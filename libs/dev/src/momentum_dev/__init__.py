"""Local tooling that no image installs: the embedded stack (``embedded``), the ``make dev``
runner (``runner``, also ``python -m momentum_dev``), the demo content (``seed``) and fake third
parties for tests and benchmarks (``fakes``)."""
