"""Recurrent networks: sequence classifiers, language models and the course's models."""
