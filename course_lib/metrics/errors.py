"""Errors raised by course_lib.metrics: each says what went wrong and what to do about it."""

from course_lib.core.errors import CourseLibError, DataError


class MetricInputError(DataError):
    """Images given to a metric are empty, the wrong shape or type, NaN, or outside their declared range."""


class WeightsNotFound(CourseLibError):
    """A feature extractor's weights cannot be found, downloaded, or are the wrong file."""


class HeadMissing(WeightsNotFound):
    """The Inception weights found have no 1008-way classifier head, which the Inception Score needs."""
