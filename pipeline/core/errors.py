"""The one error type a user sees: a single line naming the culprit."""


class PipelineError(Exception):
    """A problem with the user's input or environment, reported as one line, exit code 1."""


def first_line(exc: BaseException) -> str:
    """An exception as one line: its type and its message's first line (a library's may run on)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
