"""Demo data and the `commune demo` orchestration."""
