"""What only the notebooks need: toy GANs, Wasserstein by hand, exercise checks, the environment report."""
