"""course_lib: the library behind the GAN notebook course.

Subpackages are layers; each imports only from the layers before it in this list (tests/test_layers.py
checks it, and that there is no import cycle). docs/architecture.md has the diagram.

- `core`: errors, atomic file writes, image conversions, plots, device/paths/fast mode.
- `data`: datasets as uint8 tensors (embedded MNIST, torchvision MNIST, CelebA, image folders) and the batch loader.
- `nn`: networks (DCGAN, MLP GAN, conditional variants), discriminator layers, GAN losses.
- `metrics`: IS, FID, KID, precision/recall and relatives; the feature-extractor registry; the generator evaluator.
- `training`: the config, the trainer, loss terms, callbacks (EMA, FID tracking, diversity controller), presets,
  speed settings, checkpoints.
- `experiment`: variants x seeds, evaluated and reported (`course-lib experiment`).
- `latent`: latent-space tools, shipped pretrained generators, notebook widgets.
- `course`: what only the notebooks need: toy GANs, 1-D/discrete Wasserstein, exercise checks, the environment report.
- `grading`: `course-lib assign/grade`.
- `cli`: the `course-lib` command.
"""

__version__ = "0.1.0"
