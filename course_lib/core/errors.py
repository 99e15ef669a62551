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
