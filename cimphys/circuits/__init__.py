"""Circuits: crossbar nodal analysis with wire resistance, and the periphery around it.

Importing this package registers the circuit-card models.
"""
