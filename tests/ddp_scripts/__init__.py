"""Scripts that tests launch as separate (multi-process) programs, and the launcher."""
