"""Datasets as uint8 image tensors and the batch loader. Imports only `core`."""

from course_lib.data.datasets import (
    CELEBA_HELP,
    DATASETS,
    EMBEDDED_MNIST,
    IMAGE_SUFFIXES,
    PREPROCESS_VERSION,
    ImageData,
    decode_images,
    list_images,
    load_celeba,
    load_dataset,
    load_embedded_mnist,
    load_image_folder,
    load_torchvision_mnist,
    prepare_celeba,
    preprocess_image,
    read_idx,
    resize,
)
from course_lib.data.loader import BatchLoader

__all__ = [
    "CELEBA_HELP",
    "DATASETS",
    "EMBEDDED_MNIST",
    "IMAGE_SUFFIXES",
    "PREPROCESS_VERSION",
    "ImageData",
    "decode_images",
    "list_images",
    "load_celeba",
    "load_dataset",
    "load_embedded_mnist",
    "load_image_folder",
    "load_torchvision_mnist",
    "prepare_celeba",
    "preprocess_image",
    "read_idx",
    "resize",
    "BatchLoader",
]
