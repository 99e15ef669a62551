"""The exceptions course_lib raises for problems a user can fix.

Each carries a message written for the person at the keyboard: what went wrong, where, and what
to do next. The CLI prints these as one line instead of a traceback.
"""


class CourseLibError(Exception):
    """Base class: a problem with the user's input, data, files or settings."""


class DataError(CourseLibError):
    """A dataset is missing, incomplete or corrupt, or an image array has the wrong form."""


class CheckpointError(CourseLibError):
    """A checkpoint file is missing, truncated, or not one course_lib wrote."""


class ConfigError(CourseLibError):
    """A training or experiment setting is unknown or out of range."""


class TrainingDiverged(CourseLibError):
    """Losses or parameters became NaN/inf; the last good checkpoint was kept."""


def describe_parse_error(path, exc: Exception) -> str:
    """One line for a JSON or YAML file that does not parse: the file, the line and column, what is wrong.

    PyYAML's message spans several lines (the context, the problem, a quoted snippet); json's names the
    position in its own words. Both carry the position as attributes, read here without importing either.
    """
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)  # yaml.MarkedYAMLError
    if mark is not None:
        text = f"cannot parse {path}: line {mark.line + 1}, column {mark.column + 1}: "
        text += getattr(exc, "problem", None) or getattr(exc, "context", None) or type(exc).__name__
        opened = getattr(exc, "context_mark", None)
        if getattr(exc, "problem", None) and getattr(exc, "context", None) and opened is not None:
            text += f" ({exc.context}, from line {opened.line + 1}, column {opened.column + 1})"
        return text
    if hasattr(exc, "lineno") and hasattr(exc, "colno") and hasattr(exc, "msg"):  # json.JSONDecodeError
        return f"cannot parse {path}: line {exc.lineno}, column {exc.colno}: {exc.msg}"
    return f"cannot parse {path}: {' '.join(str(exc).split())}"
