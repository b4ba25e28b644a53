"""Configs shipped with interpeq, installed as the package data ``interpeq.configs``.

Found at run time through :func:`interpeq.resources.config_path`; the YAML files are
data only (read with ``yaml.safe_load``), nothing here is imported as code.
"""
