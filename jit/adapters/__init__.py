"""Adapters at the edge: Azure Table Storage, Azure Queue Storage, Microsoft Graph, notifiers."""
