"""Commands with a module of their own: each has HELP, arguments(parser) and run(lab)."""
