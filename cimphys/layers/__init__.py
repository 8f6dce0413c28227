"""Transformer matrix products on CIM tiles: weight mapping, analog tiles, routing, models."""
