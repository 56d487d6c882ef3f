"""Exit codes of every ``rvclab`` command, and their text for ``rvclab --help``."""

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_CODES = """exit codes:
  0    success
  1    a check failed (parity outside tolerance) or some files of a batch failed (each listed)
  2    usage, unusable input (missing, empty, wrong format, bad audio) or an output that cannot be
       written (read-only folder, disk full, the input itself); the message names the file
  130  interrupted (Ctrl+C): outputs already finished are complete, a rerun resumes"""
