"""Spiking model zoo: neurons, multi-step layers, encoders, registry and backbones."""

from spikeport.models._registry import MODELS, create_model, list_models, register_model

__all__ = ["MODELS", "create_model", "list_models", "register_model"]
