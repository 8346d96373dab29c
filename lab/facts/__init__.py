"""Facts about a host: the command that shows something, and a pure parser of its output.

Each module pairs command strings with parsers; tests feed the parsers output recorded from
real hosts (tests/unit/fixtures/raw). Checks and provisioning both build on them.
"""
