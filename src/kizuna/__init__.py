"""Kizuna: customer data hub and marketing automation for e-commerce and D2C brands."""

__version__ = "0.1.0"

__all__ = ["__version__"]
