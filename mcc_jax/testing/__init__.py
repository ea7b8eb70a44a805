"""Helpers for checking numerical agreement with a reference implementation."""
