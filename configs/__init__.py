"""Named experiments: registered config factories, resolved by name from the command line."""

from configs.experiments import EXPERIMENTS, get_config, list_experiments

__all__ = ["EXPERIMENTS", "get_config", "list_experiments"]
