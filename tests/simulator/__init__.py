"""Tests for the Microsoft Graph simulator (devstack/graph_simulator)."""
