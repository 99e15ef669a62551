"""`course-lib experiment`: variants x seeds trained, evaluated at checkpoints and reported."""
from course_lib.experiment.runner import ExperimentConfig, load_experiment, run_experiment

__all__ = ["ExperimentConfig", "load_experiment", "run_experiment"]
