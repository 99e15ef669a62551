"""`course-lib experiment`: variants x seeds trained, evaluated at checkpoints and reported.

config (ExperimentConfig, load_experiment) -> runner (run_experiment: train, evaluate with the shared
metrics.GeneratorEvaluator, resume) -> report (summarise, render_markdown, write_figures).
"""

from course_lib.experiment.config import ExperimentConfig, load_experiment
from course_lib.experiment.runner import run_experiment

__all__ = ["ExperimentConfig", "load_experiment", "run_experiment"]
