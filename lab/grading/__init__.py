"""Grading a class: assignments, submissions, one isolated lab per student, and the gradebook."""
