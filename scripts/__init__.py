"""Command-line tools behind the make targets (run as files: `python scripts/<name>.py`)."""
