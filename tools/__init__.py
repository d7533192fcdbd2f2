"""Tools around the course, run from the project root (``python -m tools.<name>``), not part of ``utils``."""
