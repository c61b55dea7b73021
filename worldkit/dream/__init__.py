"""Dreaming: the WorldModel protocol, latent episodes, and batched imagination rollouts."""
