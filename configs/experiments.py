"""The project's named experiments: defined in tfprivacy.experiments (the library's registry),
re-exported here for the entry points and scripts that resolve them by name."""

from tfprivacy.experiments import EXPERIMENTS, get_config, list_experiments, register

__all__ = ["EXPERIMENTS", "get_config", "list_experiments", "register"]
