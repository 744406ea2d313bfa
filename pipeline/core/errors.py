"""The one error type a user sees: a single line naming the culprit."""


class PipelineError(Exception):
    """A problem with the user's input or environment, reported as one line, exit code 1."""
