"""Receivers for the site's frameworks, connected only when the framework is installed."""
