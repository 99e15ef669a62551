"""course_lib: the library behind the GAN notebook course.

One module per concept:
- `data`: datasets as uint8 tensors, the embedded MNIST subset, CelebA preprocessing and caching.
- `models`: DCGAN (Radford et al. 2015) and the MLP GAN (Goodfellow et al. 2014).
- `losses`: GAN losses, computed from logits.
- `train`: the trainer (Goodfellow's Algorithm 1 with checkpoints, logging and hooks).
- `checkpoint`: atomic checkpoint files and loading generators back.
- `viz`: sample grids and loss plots.
- `env`: fast mode, data root, device choice.
- `cli`: the `course-lib` command.
"""
__version__ = "0.1.0"
