"""Networks, discriminator layers and GAN losses. Imports only `core`."""
