"""webstack lab: three hosts, a reference build of the distributed web infrastructure, a grader."""

__version__ = "0.1.0"
