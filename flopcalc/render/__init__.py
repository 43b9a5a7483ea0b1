"""Rendering: plain functions from result objects to text (table, json, csv, markdown, junit)."""
