"""Renderers: each is a small pure module `render(findings, stats) -> str`."""
