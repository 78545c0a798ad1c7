"""Signing schemes and parsing helpers shared by every provider adapter."""
