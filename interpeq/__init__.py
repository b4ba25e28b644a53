"""interpeq: decide whether two neural networks implement the same mechanistic interpretation."""

__version__ = "0.1.0"
