"""A run's settings: the command-line options and their defaults (`options`), and the frozen `RunConfig` every
other room reads (`config`)."""
