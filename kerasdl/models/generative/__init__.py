"""Generative models: autoencoders and VAEs (issue 19); GANs and diffusion follow."""
