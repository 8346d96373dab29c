"""The course: exercises, the quiz, the diagram and the one record of progress."""
